"""Profit shares on DynamoDB (shared.payments.profit_sharing.ProfitShareStore): one item per share,
conditional on its version; the open ones and those finance must see in sparse indexes (no scan)."""

from __future__ import annotations

import json

from pynamodb.exceptions import PutError

from shared.data.items.profit_sharing import ProfitShareItem
from shared.data.transactions import condition_failed, translated
from shared.kernel.clock import iso
from shared.payments import profit_sharing_model as ps

OPEN_QUEUE = "PROFITSHARES#OPEN"
ATTENTION_QUEUE = "PROFITSHARES#ATTENTION"


class DynamoProfitShares:
    def get(self, order_id: str, out_order_no: str) -> ps.ProfitShare | None:
        with translated():
            try:
                item = ProfitShareItem.get(*ProfitShareItem.key(order_id, out_order_no), consistent_read=True)
            except ProfitShareItem.DoesNotExist:
                return None
        return _share(item)

    def open(self, share: ps.ProfitShare) -> ps.ProfitShare:
        with translated():
            try:
                _item(share).save(condition=ProfitShareItem.pk.does_not_exist())
                return share
            except PutError as exc:
                if not condition_failed(exc):
                    raise
        return self.get(share.order_id, share.out_order_no) or share  # a retry: the first one stands

    def change(self, before: ps.ProfitShare, after: ps.ProfitShare) -> ps.ProfitShare | None:
        with translated():
            try:
                _item(after).save(condition=ProfitShareItem.version == before.version)
            except PutError as exc:
                if condition_failed(exc):
                    return None
                raise
        return after

    def due(self, now_ms: int, limit: int) -> list[ps.ProfitShare]:
        with translated():
            found = ProfitShareItem.gsi2.query(OPEN_QUEUE, ProfitShareItem.gsi2sk <= f"{iso(now_ms)}#~", limit=limit)
            return [_share(item) for item in found if isinstance(item, ProfitShareItem)]

    def needing_attention(self, limit: int) -> list[ps.ProfitShare]:
        with translated():
            found = ProfitShareItem.gsi1.query(ATTENTION_QUEUE, scan_index_forward=False, limit=limit)
            return [_share(item) for item in found if isinstance(item, ProfitShareItem)]


def _item(share: ps.ProfitShare) -> ProfitShareItem:
    pk, sk = ProfitShareItem.key(share.order_id, share.out_order_no)
    check = share.next_check_at_ms or share.updated_at_ms
    open_, attention = share.is_open, share.needs_attention
    return ProfitShareItem(
        pk,
        sk,
        order_id=share.order_id,
        out_order_no=share.out_order_no,
        status=share.status,
        version=share.version,
        created_at=share.created_at_ms,
        doc=json.dumps(ps.share_to_dict(share), ensure_ascii=False, separators=(",", ":")),
        gsi2pk=OPEN_QUEUE if open_ else None,
        gsi2sk=f"{iso(check)}#{share.out_order_no}" if open_ else None,
        gsi1pk=ATTENTION_QUEUE if attention else None,
        gsi1sk=f"{iso(share.updated_at_ms)}#{share.out_order_no}" if attention else None,
    )


def _share(item: ProfitShareItem) -> ps.ProfitShare:
    return ps.share_from_dict(json.loads(item.doc))
