"""Orders, payments and refunds in DynamoDB (keys on the item classes in items/orders.py).

Mapping between the domain `Order` and `OrderItem` is explicit here; the item never leaves.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from shared.data.items import OrderItem, PaymentItem, RefundItem
from shared.data.stores import idempotency as idempotency_store
from shared.data.transactions import Transaction, TransactionCancelled, translated
from shared.kernel.clock import iso
from shared.kernel.errors import IdempotencyKeyReused
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.model import GiftTerms, HistoryEntry, Order, PricedLine, Status, order_id_for
from shared.ordering.ports import PaymentRecord, Refund

ORDER_LABEL = "order"
PAYMENT_LABEL = "payment"
# The expiry queue (gsi2) takes an entry per placement: a flash sale's 20,000 orders/s over 40
# partitions is 500 index writes/s each, half a partition's 1,000 (docs/data-model.md, orders). The
# sweeper queries every partition each run: 40 queries a minute in AWS, ~70 ms of emulator CPU locally.
DUE_SHARDS = 40


def refund_label(refund_id: str) -> str:
    return f"refund:{refund_id}"


def due_partition(order_id: str) -> str:
    return f"DUE#{zlib.crc32(order_id.encode()) % DUE_SHARDS}"


def _to_item(order: Order) -> OrderItem:
    pk, sk = OrderItem.key(order.order_id)
    pending = order.status is Status.PENDING_PAYMENT
    return OrderItem(
        pk,
        sk,
        order_id=order.order_id,
        customer_id=order.customer_id,
        status=order.status.value,
        version=order.version,
        expires_at=order.expires_at_ms,
        location=order.location,
        flash_sale_id=order.flash_sale_id,
        total_fen=order.total_fen,
        created_at=order.created_at_ms,
        gsi1pk=f"CUSTOMER#{order.customer_id}",
        gsi1sk=f"{iso(order.created_at_ms)}#{order.order_id}",
        gsi2pk=due_partition(order.order_id) if pending else None,
        gsi2sk=f"{iso(order.expires_at_ms)}#{order.order_id}" if pending else None,
        request_hash=_short(order.request_hash),
        body=_without_defaults(
            {
                "lines": [
                    {"sku": x.sku, "qty": x.qty, "unit": x.unit_price_fen, "disc": x.discount_fen, "pay": x.payable_fen}
                    for x in order.lines
                ],
                "subtotal_fen": order.subtotal_fen,
                "discount_fen": order.discount_fen,
                "shipping_fen": order.shipping_fen,
                "applied": list(order.applied),
                "fulfilment": order.fulfilment,
                "history": [
                    [h.at_ms, h.status, h.action, h.by, *([h.note] if h.note is not None else [])]
                    for h in order.history
                ],
                "cancel_reason": order.cancel_reason,
                "transaction_id": order.transaction_id,
                "paid_at_ms": order.paid_at_ms,
                "tracking_number": order.tracking_number,
                "pickup_code": order.pickup_code,
                "pickup_attempts": order.pickup_attempts,
                "refunded_qty": order.refunded_qty,
                "refunded_fen": order.refunded_fen,
                "credited": order.credited,
                "refund_requested_qty": order.refund_requested_qty,
                **({"provider_paid_at": order.provider_paid_at} if order.provider_paid_at is not None else {}),
                **({"gifts": [g.to_record() for g in order.gifts]} if order.gifts else {}),
                **({"gift_charges": order.gift_charges} if order.gift_charges else {}),
                **({"membership": order.membership} if order.membership is not None else {}),
            }
        ),
    )


# Body fields left out while at these values (what `_to_domain` reads for a missing one): a new
# order carries none of them, and its item stays under 1 KB (docs/data-model.md, "Orders").
BODY_DEFAULTS: dict[str, Any] = {
    "cancel_reason": None,
    "transaction_id": None,
    "paid_at_ms": None,
    "tracking_number": None,
    "pickup_code": None,
    "pickup_attempts": 0,
    "refunded_qty": {},
    "refunded_fen": 0,
    "credited": None,
    "refund_requested_qty": {},
}


def _without_defaults(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in BODY_DEFAULTS or v != BODY_DEFAULTS[k]}


# The fingerprint an order keeps: the first 16 bytes of the request's SHA-256, base64url (22
# characters, not 64 hex): 128 bits, so two bodies under one key cannot pass for each other.
FINGERPRINT_BYTES = 16


def _short(fingerprint: str | None) -> str | None:
    if fingerprint is None or len(fingerprint) != 64:
        return fingerprint  # None, or shortened already
    return base64.urlsafe_b64encode(bytes.fromhex(fingerprint)[:FINGERPRINT_BYTES]).rstrip(b"=").decode()


def _same_request(kept: str, request: IdempotentRequest) -> bool:
    """Does the fingerprint an order keeps name this request? Orders placed before the fingerprint
    was shortened keep all 64 hex characters."""
    return kept in (request.fingerprint, _short(request.fingerprint))


# For another item that carries its creating request's idempotency the same way (a coupon).
short_fingerprint = _short


def image_of(order: Order) -> dict[str, Any]:
    """The order's item in DynamoDB's attribute-value form, as a stream record's image shows it."""
    return _to_item(order).serialize()


def order_of_image(image: dict[str, Any]) -> Order:
    """The order a stream image (or a raw item) shows. A `response` (the copy of the first answer
    that orders placed before 1 KB orders kept) is left out: a Lambda stream record gives binary
    values base64-encoded, and nothing reads it."""
    return _to_domain(OrderItem.from_raw_data({k: v for k, v in image.items() if k != "response"}))


def _to_domain(item: OrderItem) -> Order:
    body: dict[str, Any] = item.body
    return Order(
        order_id=item.order_id,
        customer_id=item.customer_id,
        status=Status(item.status),
        version=int(item.version),
        lines=tuple(PricedLine(x["sku"], x["qty"], x["unit"], x["disc"], x["pay"]) for x in body["lines"]),
        subtotal_fen=body["subtotal_fen"],
        discount_fen=body["discount_fen"],
        shipping_fen=body["shipping_fen"],
        total_fen=int(item.total_fen),
        applied=tuple(body["applied"]),
        fulfilment=body["fulfilment"],
        location=item.location,
        created_at_ms=int(item.created_at or 0),
        expires_at_ms=int(item.expires_at),
        history=tuple(HistoryEntry(*h) for h in body["history"]),
        flash_sale_id=item.flash_sale_id,
        cancel_reason=body.get("cancel_reason"),
        transaction_id=body.get("transaction_id"),
        paid_at_ms=body.get("paid_at_ms"),
        tracking_number=body.get("tracking_number"),
        pickup_code=body.get("pickup_code"),
        pickup_attempts=body.get("pickup_attempts", 0),
        refunded_qty=body.get("refunded_qty") or {},
        refunded_fen=body.get("refunded_fen", 0),
        credited=body.get("credited"),
        refund_requested_qty=body.get("refund_requested_qty") or {},
        provider_paid_at=body.get("provider_paid_at"),
        gifts=tuple(GiftTerms.of_record(g) for g in body.get("gifts") or ()),
        gift_charges=body.get("gift_charges") or {},
        membership=body.get("membership"),
        request_hash=item.request_hash,
    )


def add_new(tx: Transaction, order: Order) -> None:
    tx.put(_to_item(order), ORDER_LABEL, condition=OrderItem.pk.does_not_exist())


def first_answer(order: Order | None, request: IdempotentRequest) -> StoredResponse | None:
    """The answer the request that placed `order` was given (the order as placed, rebuilt from the
    order: `Order.first_answer`), if `request` is a replay of it; IdempotencyKeyReused if the key
    came then with another body; None if the order carries no request."""
    return carried_answer(order, request)


class CarriesRequest(Protocol):
    """An item's domain value that carries the request which created it (an order, a coupon)."""

    @property
    def request_hash(self) -> str | None: ...

    def first_answer(self) -> StoredResponse: ...


def carried_answer(carrier: CarriesRequest | None, request: IdempotentRequest) -> StoredResponse | None:
    """`carrier.first_answer()` flagged as a replay if `request` is the one it carries;
    IdempotencyKeyReused if it carries the key with another body; None if it carries no request."""
    if carrier is None or carrier.request_hash is None:
        return None
    if not _same_request(carrier.request_hash, request):
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request body", idempotency_key=request.key
        )
    return replace(carrier.first_answer(), replayed=True)


def replayed_order(cancelled: TransactionCancelled, request: IdempotentRequest) -> StoredResponse | None:
    """A new order's put refused because its (derived) id exists: the first answer, when the order
    there carries this request's key (see `first_answer`)."""
    raw = cancelled.items.get(ORDER_LABEL) if ORDER_LABEL in cancelled.failed else None
    if not raw or "request_hash" not in raw:
        return None
    return first_answer(_to_domain(OrderItem.from_raw_data(raw)), request)


def replace_if_unchanged(tx: Transaction, before: Order, after: Order) -> None:
    """Write `after` only if the stored order is still `before` (same status and version)."""
    condition: Condition = (OrderItem.status == before.status.value) & (OrderItem.version == before.version)
    tx.put(_to_item(after), ORDER_LABEL, condition=condition)


# -- payments ----------------------------------------------------------------------------------
NEEDS_REFUND = "NEEDS_REFUND"
NEEDS_REFUND_QUEUE = f"PAYMENTS#{NEEDS_REFUND}"


def record_payment(tx: Transaction, payment: PaymentRecord) -> None:
    tx.put(_payment_item(payment, PaymentItem.key(payment.transaction_id)), PAYMENT_LABEL, condition=_unrecorded())


def record_clashing_payment(tx: Transaction, payment: PaymentRecord) -> None:
    """Beside the payment that holds its transaction id, once per order (the same label: a second
    time is PaymentAlreadyRecorded)."""
    key = PaymentItem.clash_key(payment.transaction_id, payment.order_id)
    tx.put(_payment_item(payment, key), PAYMENT_LABEL, condition=_unrecorded())


def _unrecorded() -> Condition:
    return PaymentItem.pk.does_not_exist()


def _payment_item(payment: PaymentRecord, key: tuple[str, str]) -> PaymentItem:
    queued = payment.status == NEEDS_REFUND
    return PaymentItem(
        *key,
        transaction_id=payment.transaction_id,
        order_id=payment.order_id,
        amount_fen=payment.amount_fen,
        paid_at=payment.paid_at,
        status=payment.status,
        reason=payment.reason,
        provider=payment.provider if payment.provider != "hmac" else None,
        created_at=payment.recorded_at_ms,
        order_part=_compact(payment.order_part) if payment.order_part is not None else None,
        gsi1pk=NEEDS_REFUND_QUEUE if queued else None,
        gsi1sk=f"{iso(payment.recorded_at_ms)}#{payment.transaction_id}#{payment.order_id}" if queued else None,
    )


def _payment_record(item: PaymentItem) -> PaymentRecord:
    return PaymentRecord(
        transaction_id=item.transaction_id,
        order_id=item.order_id,
        amount_fen=int(item.amount_fen),
        paid_at=item.paid_at,
        status=item.status,
        reason=item.reason,
        recorded_at_ms=int(item.created_at or 0),
        provider=item.provider or "hmac",
        refunded_by=item.refunded_by,
        refunded_at_ms=int(item.refunded_at) if item.refunded_at is not None else None,
        refund_note=item.refund_note,
        order_part=json.loads(item.order_part) if item.order_part else None,
    )


def payment_of_image(image: dict[str, Any]) -> PaymentRecord:
    """The payment a stream image (or a raw item) shows, with the order part it carries."""
    return _payment_record(PaymentItem.from_raw_data(image))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- refunds -----------------------------------------------------------------------------------
def _refund_dict(item: RefundItem) -> Refund:
    return {
        "refund_id": item.refund_id,
        "order_id": item.order_id,
        "customer_id": item.customer_id,
        "status": item.status,
        "lines": item.lines,
        "amount_fen": int(item.amount_fen),
        "reason": item.reason,
        "restock": item.restock,
        "created_at": iso(int(item.created_at or 0)),
        **({"payout_status": item.payout_status} if item.payout_status else {}),
    }


def add_refund(tx: Transaction, refund: Refund, now_ms: int, carrying: IdempotentRequest | None = None) -> None:
    """A new refund request; `carrying`: the request it was made with, whose key its id is derived
    from (the refund keeps its fingerprint: the put's condition is the idempotency check)."""
    pk, sk = RefundItem.key(refund["order_id"], refund["refund_id"])
    item = RefundItem(
        pk,
        sk,
        refund_id=refund["refund_id"],
        order_id=refund["order_id"],
        customer_id=refund["customer_id"],
        status=refund["status"],
        lines=refund["lines"],
        amount_fen=refund["amount_fen"],
        reason=refund["reason"],
        restock=refund.get("restock"),
        created_at=now_ms,
        request_hash=_short(carrying.fingerprint) if carrying is not None else None,
        gsi1pk=f"REFUNDS#{refund['status']}",
        gsi1sk=f"{iso(now_ms)}#{refund['refund_id']}",
    )
    tx.put(item, refund_label(refund["refund_id"]), condition=RefundItem.pk.does_not_exist())


def decide_refund(tx: Transaction, refund: Refund, status: str, restock: bool) -> None:
    """Move a REQUESTED refund to ISSUED or REJECTED; conditional, so it is decided once. An
    issued refund keeps the lines and amount it was issued with (a gift's deduction can differ from
    the request's, docs/pricing.md)."""
    actions: list[Action] = [
        RefundItem.status.set(status),
        RefundItem.restock.set("yes" if restock else "no"),
        RefundItem.gsi1pk.set(f"REFUNDS#{status}"),
    ]
    if status == "ISSUED":
        actions += [RefundItem.lines.set(refund["lines"]), RefundItem.amount_fen.set(refund["amount_fen"])]
        if "asked_lines" in refund:
            actions.append(RefundItem.asked_lines.set(refund["asked_lines"]))
        if "order_part" in refund:
            actions += [
                RefundItem.order_part.set(_compact(refund["order_part"])),
                RefundItem.decided_at.set(refund["decided_at_ms"]),
            ]
    tx.update(
        RefundItem,
        RefundItem.key(refund["order_id"], refund["refund_id"]),
        actions,
        refund_label(refund["refund_id"]),
        condition=RefundItem.status == "REQUESTED",
    )


@dataclass(frozen=True)
class _RequestedRefund:
    """A refund as the request that made it was answered (`carried_answer` reads it)."""

    request_hash: str | None
    answer: StoredResponse

    def first_answer(self) -> StoredResponse:
        return self.answer


def _requested(item: RefundItem) -> _RequestedRefund:
    """The first answer, rebuilt from the refund: REQUESTED, with the lines asked for."""
    lines = item.asked_lines if item.asked_lines is not None else item.lines
    body = {
        "refund_id": item.refund_id,
        "order_id": item.order_id,
        "customer_id": item.customer_id,
        "status": "REQUESTED",
        "lines": lines,
        "amount_fen": sum(int(line["amount_fen"]) for line in lines),
        "reason": item.reason,
    }
    return _RequestedRefund(item.request_hash, StoredResponse(201, body))


def replayed_refund(cancelled: TransactionCancelled, label: str, request: IdempotentRequest) -> StoredResponse | None:
    """A refund's put refused because its (derived) id exists: the first answer, when the refund
    there carries this request's key."""
    raw = cancelled.items.get(label) if label in cancelled.failed else None
    if not raw or "request_hash" not in raw:
        return None
    return carried_answer(_requested(RefundItem.from_raw_data(raw)), request)


def issued_refund_of_image(old: dict[str, Any], new: dict[str, Any]) -> Refund | None:
    """The refund a stream record shows being issued (REQUESTED -> ISSUED) with the order part it
    carries, as `announcements.refund_issued` reads it; None for any other change of a refund (a
    rejection, a payout's progress, one issued before refunds carried their order part)."""
    before, after = RefundItem.from_raw_data(old), RefundItem.from_raw_data(new)
    if before.status != "REQUESTED" or after.status != "ISSUED" or not after.order_part:
        return None
    return {
        **_refund_dict(after),
        "order_part": json.loads(after.order_part),
        "decided_at_ms": int(after.decided_at or 0),
    }


class DynamoOrders:
    """The order reads of `shared.ordering.ports.OrderReads` on the table. `id_secret` is the key
    the placement derives order ids with (`shared.ordering.placement.OrderPlacement`)."""

    def __init__(self, id_secret: bytes | None = None) -> None:
        self._id_secret = id_secret

    def get(self, order_id: str, consistent: bool = True) -> Order | None:
        pk, sk = OrderItem.key(order_id)
        with translated():
            try:
                return _to_domain(OrderItem.get(pk, sk, consistent_read=consistent))
            except OrderItem.DoesNotExist:
                return None

    def list_for_customer(
        self, customer_id: str, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[Order], dict[str, Any] | None]:
        with translated():
            result = OrderItem.gsi1.query(
                f"CUSTOMER#{customer_id}", scan_index_forward=False, limit=limit, last_evaluated_key=cursor
            )
            orders = [_to_domain(item) for item in result if isinstance(item, OrderItem)]
            return orders, result.last_evaluated_key

    def due_orders(self, now_ms: int, per_shard: int = 100) -> Iterator[Order]:
        """PENDING_PAYMENT orders whose payment window has passed, oldest first in each shard."""
        bound = f"{iso(now_ms)}#~"
        with translated():
            for shard in range(DUE_SHARDS):
                for item in OrderItem.gsi2.query(f"DUE#{shard}", OrderItem.gsi2sk <= bound, limit=per_shard):
                    if isinstance(item, OrderItem):
                        yield _to_domain(item)

    def get_payment(self, transaction_id: str) -> PaymentRecord | None:
        pk, sk = PaymentItem.key(transaction_id)
        with translated():
            try:
                item = PaymentItem.get(pk, sk, consistent_read=True)
            except PaymentItem.DoesNotExist:
                return None
        return _payment_record(item)

    def payments_needing_refund(
        self, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[PaymentRecord], dict[str, Any] | None]:
        """NEEDS_REFUND payments, newest first, from the sparse gsi1 queue (no scan)."""
        with translated():
            result = PaymentItem.gsi1.query(
                NEEDS_REFUND_QUEUE, scan_index_forward=False, limit=limit, last_evaluated_key=cursor
            )
            found = [_payment_record(item) for item in result if isinstance(item, PaymentItem)]
            return found, result.last_evaluated_key

    def refunds_of(self, order_id: str) -> list[Refund]:
        """Oldest first: by the time asked for (ids derived from a key do not sort by it)."""
        with translated():
            items = list(
                RefundItem.query(f"ORDER#{order_id}", RefundItem.sk.startswith("REFUND#"), consistent_read=True)
            )
        items.sort(key=lambda item: (int(item.created_at or 0), item.refund_id))
        return [_refund_dict(item) for item in items]

    def get_refund(self, order_id: str, refund_id: str) -> Refund | None:
        pk, sk = RefundItem.key(order_id, refund_id)
        with translated():
            try:
                return _refund_dict(RefundItem.get(pk, sk, consistent_read=True))
            except RefundItem.DoesNotExist:
                return None

    def replay(self, request: IdempotentRequest) -> StoredResponse | None:
        return idempotency_store.replay(request)

    def replay_refund(self, order_id: str, refund_id: str, request: IdempotentRequest) -> StoredResponse | None:
        """The refund asked for under the key (`refund_id`, derived from it) carries the answer; a
        separate record is what requests made before refunds carried their keys left."""
        pk, sk = RefundItem.key(order_id, refund_id)
        with translated():
            try:
                found: _RequestedRefund | None = _requested(RefundItem.get(pk, sk, consistent_read=True))
            except RefundItem.DoesNotExist:
                found = None
        stored = carried_answer(found, request)
        return stored if stored is not None else idempotency_store.replay(request)

    def replay_placed(self, request: IdempotentRequest) -> StoredResponse | None:
        """The order placed under the key carries the answer; a separate record is what requests
        placed before orders carried their keys left."""
        stored = first_answer(self.get(order_id_for(request, self._id_secret)), request)
        return stored if stored is not None else idempotency_store.replay(request)
