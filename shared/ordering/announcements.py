"""The events an order's own change announces, derived from the order before and after it
(docs/events.md, "Events derived from state items").

The relay reads the table's stream and calls `announced(before, after)` with the images of an
order item, so these events are not written as outbox items: the order item is the outbox. The
event id is fixed by the order's key, its version and the event type, so a redelivered stream
record announces the same event id and the consumers' per-id idempotency holds; `occurred_at` is
the time the order itself records for the change, so a re-derived event is identical.

Which transition a change is comes from the statuses before and after and, where two actions lead
to the same status (cancel or expire, ship or ready for pickup, hand over or complete), from the
action of the history entry the change added.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.kernel.clock import iso
from shared.kernel.events import DomainEvent, EventType
from shared.ordering.model import Action, Order, Status
from shared.ordering.ports import PaymentRecord, Refund

ORDER_EVENT_NAMESPACE = uuid.UUID("3a0f6c2e-8d41-4b6f-9f0e-5c7d2a1b9e84")


def event_id(order_id: str, version: int, event_type: EventType) -> str:
    return str(uuid.uuid5(ORDER_EVENT_NAMESPACE, f"ORDER#{order_id}|ORDER|{version}|{event_type}"))


def placed(order: Order) -> DomainEvent:
    """OrderPlaced: the payload the placement announced when it wrote the event itself."""
    payload = order.event_payload(expires_at=iso(order.expires_at_ms))
    return DomainEvent(
        EventType.ORDER_PLACED,
        order.order_id,
        payload,
        event_id=event_id(order.order_id, order.version, EventType.ORDER_PLACED),
        occurred_at=iso(order.created_at_ms),
    )


def paid(order: Order) -> DomainEvent:
    """OrderPaid: the paid order, its transaction id and the provider's time of payment."""
    payload = order.event_payload(transaction_id=order.transaction_id, paid_at=order.provider_paid_at)
    return DomainEvent(
        EventType.ORDER_PAID,
        order.order_id,
        payload,
        event_id=event_id(order.order_id, order.version, EventType.ORDER_PAID),
        occurred_at=iso(order.paid_at_ms or order.created_at_ms),
    )


def _announcement(order: Order, event_type: EventType, **extra: Any) -> DomainEvent:
    """A transition's event as the lifecycle wrote it to the outbox: the order after the change,
    `extra` in its payload, at the time of the history entry the transition added."""
    return DomainEvent(
        event_type,
        order.order_id,
        order.event_payload(**extra),
        event_id=event_id(order.order_id, order.version, event_type),
        occurred_at=iso(order.history[-1].at_ms),
    )


def transitioned(order: Order) -> list[DomainEvent]:
    """The event of the transition that made `order` (its last history entry): OrderCancelled,
    OrderExpired, OrderFulfilled (shipped or ready for pickup), OrderCompleted (picked up or
    delivered); nothing for a transition no event announces here (a refund's, whose RefundIssued
    the refund's decision writes)."""
    action = order.history[-1].action if order.history else None
    if order.status is Status.CANCELLED and action == Action.CANCEL:
        return [_announcement(order, EventType.ORDER_CANCELLED)]
    if order.status is Status.CANCELLED and action == Action.EXPIRE:
        return [_announcement(order, EventType.ORDER_EXPIRED)]
    if order.status is Status.FULFILLING and action == Action.SHIP:
        return [_announcement(order, EventType.ORDER_FULFILLED, how="shipped", tracking_number=order.tracking_number)]
    if order.status is Status.FULFILLING and action == Action.READY_FOR_PICKUP:
        how = {"how": "ready_for_pickup", "pickup_code": order.pickup_code}
        return [_announcement(order, EventType.ORDER_FULFILLED, **how)]
    if order.status is Status.COMPLETED and action == Action.HAND_OVER:
        return [_announcement(order, EventType.ORDER_COMPLETED, how="picked_up")]
    if order.status is Status.COMPLETED and action == Action.COMPLETE:
        return [_announcement(order, EventType.ORDER_COMPLETED, how="delivered")]
    if order.status is Status.COMPLETED and action == Action.ACTIVATE:
        return [_announcement(order, EventType.ORDER_COMPLETED, how="activated")]
    return []


def announced(before: Order | None, after: Order) -> list[DomainEvent]:
    """What this change of the order announces: OrderPlaced for a new order, OrderPaid for
    PENDING_PAYMENT -> PAID, and the events of cancel, expiry, fulfilment and completion
    (`transitioned`); nothing for a change that is not one of these transitions (an attribute set
    without a status change, a note, a write that did not change the version)."""
    if before is None:
        return [placed(after)] if after.status is Status.PENDING_PAYMENT else []
    if after.version <= before.version or after.status is before.status:
        return []
    if before.status is Status.PENDING_PAYMENT and after.status is Status.PAID:
        return [paid(after)]
    return transitioned(after)


def refund_event_id(order_id: str, refund_id: str) -> str:
    """A refund is issued once (its decision is conditional on REQUESTED): its key names the event."""
    key = f"ORDER#{order_id}|REFUND#{refund_id}|ISSUED|{EventType.REFUND_ISSUED}"
    return str(uuid.uuid5(ORDER_EVENT_NAMESPACE, key))


def refund_issued(refund: Refund) -> DomainEvent:
    """RefundIssued from the issued refund as its item keeps it: the order after the refund
    (`order_part`, its `event_payload()`), then the refund's id, amount, lines as issued and whether
    the units went back on the shelf, at the time of the decision (`decided_at_ms`): the payload,
    key for key, that `Order.event_payload(refund_id=, amount_fen=, refund_lines=, restocked=)` gave."""
    payload = {
        **refund["order_part"],
        "refund_id": refund["refund_id"],
        "amount_fen": refund["amount_fen"],
        "refund_lines": refund["lines"],
        "restocked": refund["restock"] == "yes",
    }
    return DomainEvent(
        EventType.REFUND_ISSUED,
        refund["order_id"],
        payload,
        event_id=refund_event_id(refund["order_id"], refund["refund_id"]),
        occurred_at=iso(refund["decided_at_ms"]),
    )


def payment_order_part(order: Order | None, order_id: str) -> dict[str, Any]:
    """What a NEEDS_REFUND payment's event says of its order: the order after the change that
    flagged the payment, or only the id the payment named when there is no order of ours (a
    clashing payment's event names no customer either: finance acts on it, docs/orders.md)."""
    return order.event_payload() if order is not None else {"order_id": order_id}


def payment_event_id(transaction_id: str, order_id: str) -> str:
    """A NEEDS_REFUND payment is recorded once per (transaction id, order id): they name its event."""
    key = f"PAYMENT#{transaction_id}|{order_id}|{EventType.PAYMENT_NEEDS_REFUND}"
    return str(uuid.uuid5(ORDER_EVENT_NAMESPACE, key))


def payment_needs_refund(payment: PaymentRecord) -> DomainEvent | None:
    """PaymentNeedsRefund from a payment recorded NEEDS_REFUND that carries its order part; None
    for any other (an applied payment; one recorded before payments carried it, whose event was an
    outbox item)."""
    if payment.status != "NEEDS_REFUND" or payment.order_part is None:
        return None
    payload = {
        **payment.order_part,
        "transaction_id": payment.transaction_id,
        "amount_fen": payment.amount_fen,
        "reason": payment.reason,
    }
    return DomainEvent(
        EventType.PAYMENT_NEEDS_REFUND,
        payment.order_id,
        payload,
        event_id=payment_event_id(payment.transaction_id, payment.order_id),
        occurred_at=iso(payment.recorded_at_ms),
    )
