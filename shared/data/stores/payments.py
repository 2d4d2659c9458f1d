"""The payments capability's stores (shared.payments.ports): WeChat Pay prepays beside their order."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from shared.data.items.payments import PrepayItem
from shared.data.transactions import condition_failed, translated
from shared.payments.model import Prepay


class DynamoPrepays:
    def get(self, order_id: str) -> Prepay | None:
        with translated():
            try:
                item = PrepayItem.get(*PrepayItem.key(order_id), consistent_read=True)
            except PrepayItem.DoesNotExist:
                return None
        return _prepay(item)

    def keep(self, prepay: Prepay, replacing: Prepay | None) -> Prepay:
        pk, sk = PrepayItem.key(prepay.order_id)
        item = PrepayItem(
            pk,
            sk,
            order_id=prepay.order_id,
            openid=prepay.openid,
            prepay_id=prepay.prepay_id,
            pay_timestamp=prepay.timestamp,
            pay_nonce=prepay.nonce,
            created_at=prepay.created_at_ms,
        )
        condition = (
            PrepayItem.pk.does_not_exist() if replacing is None else PrepayItem.created_at == replacing.created_at_ms
        )
        with translated():
            try:
                item.save(condition=condition)
            except PutError as exc:
                if not condition_failed(exc):
                    raise
                kept = self.get(prepay.order_id)  # another request stored its prepay first: that one stands
                return kept or prepay
        return prepay


def _prepay(item: PrepayItem) -> Prepay:
    return Prepay(
        order_id=item.order_id,
        openid=item.openid,
        prepay_id=item.prepay_id,
        created_at_ms=int(item.created_at or 0),
        timestamp=item.pay_timestamp,
        nonce=item.pay_nonce,
    )
