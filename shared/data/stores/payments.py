"""The payments capability's stores (shared.payments.ports): WeChat Pay prepays beside their order, and
the refunds paid back through WeChat Pay (docs/payments.md, "Refunds")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pynamodb.exceptions import PutError
from pynamodb.expressions.update import Action

from shared.data.items.orders import PaymentItem, RefundItem
from shared.data.items.payments import PrepayItem, ProviderRefundItem
from shared.data.stores.orders import DynamoOrders
from shared.data.transactions import Transaction, TransactionCancelled, condition_failed, translated
from shared.kernel.clock import iso
from shared.payments.model import FOR_REFUND, NEEDS_ATTENTION, SUCCESS, Prepay, ProviderRefund
from shared.payments.ports import RecordedPayment

OPEN_QUEUE = "PAYOUTS#OPEN"
ATTENTION_QUEUE = "PAYOUTS#ATTENTION"
NEEDS_REFUND = "NEEDS_REFUND"


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


# -- refunds through WeChat Pay ----------------------------------------------------------------------
class DynamoRecordedPayments:
    """The payments the order lifecycle recorded (shared.data.stores.orders), as the payments capability reads them."""

    def __init__(self, orders: DynamoOrders | None = None) -> None:
        self._orders = orders or DynamoOrders()

    def paying(self, order_id: str) -> RecordedPayment | None:
        order = self._orders.get(order_id)
        if order is None or not order.transaction_id:
            return None
        return self.recorded(order.transaction_id, order_id)

    def recorded(self, transaction_id: str, order_id: str) -> RecordedPayment | None:
        found = _payment_item(transaction_id, order_id)
        return None if found is None else _recorded(found)


def _payment_item(transaction_id: str, order_id: str) -> PaymentItem | None:
    """The payment of this transaction id recorded for this order: the first one under its key, or a
    clashing one beside it (`CLASH#<order_id>`)."""
    with translated():
        for key in (PaymentItem.key(transaction_id), PaymentItem.clash_key(transaction_id, order_id)):
            try:
                item = PaymentItem.get(*key, consistent_read=True)
            except PaymentItem.DoesNotExist:
                continue
            if item.order_id == order_id:
                return item
    return None


class DynamoProviderRefunds:
    def get(self, order_id: str, out_refund_no: str) -> ProviderRefund | None:
        with translated():
            try:
                item = ProviderRefundItem.get(*ProviderRefundItem.key(order_id, out_refund_no), consistent_read=True)
            except ProviderRefundItem.DoesNotExist:
                return None
        return _provider_refund(item)

    def open(self, refund: ProviderRefund) -> ProviderRefund:
        with translated():
            try:
                _provider_refund_item(refund).save(condition=ProviderRefundItem.pk.does_not_exist())
                return refund
            except PutError as exc:
                if not condition_failed(exc):
                    raise
        stored = self.get(refund.order_id, refund.out_refund_no)  # a retry: the first one stands
        return stored or refund

    def change(self, before: ProviderRefund, after: ProviderRefund) -> ProviderRefund | None:
        """One transaction: the refund (conditional on the version read) and its mark on what it pays
        back: the order refund's payout status, or the NEEDS_REFUND payment REFUNDED once SUCCESS (if it
        is still waiting: finance may have marked it by hand after an ABNORMAL end)."""
        tx = Transaction()
        tx.put(_provider_refund_item(after), "payout", condition=ProviderRefundItem.version == before.version)
        if after.status != before.status and after.source == FOR_REFUND:
            tx.update(
                RefundItem,
                RefundItem.key(after.order_id, after.source_id),
                [RefundItem.payout_status.set(after.status)],
                "refund",
                condition=RefundItem.pk.exists(),
            )
        elif after.status == SUCCESS and before.status != SUCCESS:
            payment = _payment_item(after.source_id, after.order_id)
            if payment is not None and payment.status == NEEDS_REFUND:
                by = f"wechatpay:{after.provider_refund_id or after.out_refund_no}"
                _mark_refunded(tx, payment, by, after.updated_at_ms, None)
        try:
            tx.commit()
        except TransactionCancelled as exc:
            if "payout" in exc.failed:
                return None
            if "payment" in exc.failed:  # marked by hand meanwhile: the refund's end is still written
                return self.change(before, after)
            raise
        return after

    def due(self, now_ms: int, limit: int) -> list[ProviderRefund]:
        with translated():
            found = ProviderRefundItem.gsi2.query(
                OPEN_QUEUE, ProviderRefundItem.gsi2sk <= f"{iso(now_ms)}#~", limit=limit
            )
            return [_provider_refund(item) for item in found if isinstance(item, ProviderRefundItem)]

    def needing_attention(
        self, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[ProviderRefund], dict[str, Any] | None]:
        with translated():
            result = ProviderRefundItem.gsi1.query(
                ATTENTION_QUEUE, scan_index_forward=False, limit=limit, last_evaluated_key=cursor
            )
            found = [_provider_refund(item) for item in result if isinstance(item, ProviderRefundItem)]
            return found, result.last_evaluated_key

    def mark_payment_refunded(
        self, payment: RecordedPayment, by: str, at_ms: int, note: str | None
    ) -> RecordedPayment | None:
        item = _payment_item(payment.transaction_id, payment.order_id)
        if item is None or item.status != NEEDS_REFUND:
            return None
        tx = Transaction()
        _mark_refunded(tx, item, by, at_ms, note)
        try:
            tx.commit()
        except TransactionCancelled as exc:
            if "payment" in exc.failed:
                return None
            raise
        return replace(payment, status="REFUNDED", refunded_by=by, refunded_at_ms=at_ms, refund_note=note)


def _mark_refunded(tx: Transaction, payment: PaymentItem, by: str, at_ms: int, note: str | None) -> None:
    """NEEDS_REFUND -> REFUNDED (conditional), out of finance's queue (its gsi1 keys removed)."""
    actions: list[Action] = [
        PaymentItem.status.set("REFUNDED"),
        PaymentItem.refunded_by.set(by),
        PaymentItem.refunded_at.set(at_ms),
        PaymentItem.gsi1pk.remove(),
        PaymentItem.gsi1sk.remove(),
    ]
    if note:
        actions.append(PaymentItem.refund_note.set(note))
    tx.update(PaymentItem, (payment.pk, payment.sk), actions, "payment", condition=PaymentItem.status == NEEDS_REFUND)


def _recorded(item: PaymentItem) -> RecordedPayment:
    return RecordedPayment(
        order_id=item.order_id,
        transaction_id=item.transaction_id,
        amount_fen=int(item.amount_fen),
        provider=item.provider or "hmac",
        status=item.status,
        reason=item.reason,
        refunded_by=item.refunded_by,
        refunded_at_ms=int(item.refunded_at) if item.refunded_at is not None else None,
        refund_note=item.refund_note,
        recorded_at_ms=int(item.created_at or 0),
        paid_at=item.paid_at,
        clash=item.sk.startswith("CLASH#"),
    )


def _provider_refund_item(refund: ProviderRefund) -> ProviderRefundItem:
    pk, sk = ProviderRefundItem.key(refund.order_id, refund.out_refund_no)
    attention = refund.status in NEEDS_ATTENTION
    return ProviderRefundItem(
        pk,
        sk,
        out_refund_no=refund.out_refund_no,
        order_id=refund.order_id,
        source=refund.source,
        source_id=refund.source_id,
        transaction_id=refund.transaction_id,
        refund_fen=refund.refund_fen,
        total_fen=refund.total_fen,
        reason=refund.reason,
        status=refund.status,
        version=refund.version,
        created_at=refund.created_at_ms,
        updated_at=refund.updated_at_ms,
        next_check_at=refund.next_check_ms,
        provider_refund_id=refund.provider_refund_id,
        provider_code=refund.provider_code,
        success_time=refund.success_time,
        received_account=refund.received_account,
        gsi2pk=OPEN_QUEUE if refund.is_open else None,
        gsi2sk=f"{iso(refund.next_check_ms)}#{refund.out_refund_no}" if refund.is_open else None,
        gsi1pk=ATTENTION_QUEUE if attention else None,
        gsi1sk=f"{iso(refund.updated_at_ms)}#{refund.out_refund_no}" if attention else None,
    )


def _provider_refund(item: ProviderRefundItem) -> ProviderRefund:
    return ProviderRefund(
        out_refund_no=item.out_refund_no,
        order_id=item.order_id,
        source=item.source,
        source_id=item.source_id,
        transaction_id=item.transaction_id,
        refund_fen=int(item.refund_fen),
        total_fen=int(item.total_fen),
        reason=item.reason,
        status=item.status,
        created_at_ms=int(item.created_at or 0),
        updated_at_ms=int(item.updated_at),
        next_check_ms=int(item.next_check_at),
        version=int(item.version),
        provider_refund_id=item.provider_refund_id,
        provider_code=item.provider_code,
        success_time=item.success_time,
        received_account=item.received_account,
    )
