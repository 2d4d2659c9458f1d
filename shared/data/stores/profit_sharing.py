"""Profit shares on DynamoDB (shared.payments.profit_sharing.ProfitShareStore): one item per share,
conditional on its version; the open ones and those finance must see in sparse indexes (no scan)."""

from __future__ import annotations

import json

from pynamodb.exceptions import PutError

from shared.data.items.commission import LedgerEntryItem
from shared.data.items.profit_sharing import ProfitShareItem
from shared.data.transactions import Transaction, TransactionCancelled, condition_failed, translated
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
        claims = sorted(after.claimed_entries - before.claimed_entries)
        releases = sorted(before.claimed_entries - after.claimed_entries)
        if claims or releases:
            return self._change_with_claims(before, after, claims, releases)
        with translated():
            try:
                _item(after).save(condition=ProfitShareItem.version == before.version)
            except PutError as exc:
                if condition_failed(exc):
                    return None
                raise
        return after

    def _change_with_claims(
        self, before: ps.ProfitShare, after: ps.ProfitShare, claims: list[str], releases: list[str]
    ) -> ps.ProfitShare | None:
        """The share and its claims on the ledger's entries in ONE transaction (at most 99 entries
        an order: DynamoDB's 100 items a transaction). A claim holds only on a SETTLEABLE entry no
        channel claimed: the same attribute a settlement run's payment is conditional on."""
        tx = Transaction()
        tx.put(_item(after), "share", ProfitShareItem.version == before.version)
        for n, entry_id in enumerate(claims):
            tx.update(
                LedgerEntryItem,
                LedgerEntryItem.key(after.order_id, entry_id),
                [LedgerEntryItem.payout.set(after.claim)],
                f"claim {n}",
                condition=(LedgerEntryItem.status == "SETTLEABLE") & LedgerEntryItem.payout.does_not_exist(),
            )
        for n, entry_id in enumerate(releases):
            tx.update(
                LedgerEntryItem,
                LedgerEntryItem.key(after.order_id, entry_id),
                [LedgerEntryItem.payout.remove()],
                f"release {n}",
                condition=LedgerEntryItem.payout == after.claim,
            )
        try:
            tx.commit()
        except TransactionCancelled as exc:
            if "share" in exc.failed:
                return None
            raise ps.EntryTaken(f"an entry of order {after.order_id} moved meanwhile: {exc.failed}") from exc
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
