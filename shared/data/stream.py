"""DynamoDB stream records, read into what the relay needs (shared.messaging.ports.StreamChange).

These changes matter: an outbox Event item inserted (to forward its body), an Order item
inserted or modified (the events its change announces, `shared.ordering.announcements`), a Refund
item issued (RefundIssued) and a Payment item inserted NEEDS_REFUND (PaymentNeedsRefund), a Coupon
item inserted (its CouponClaimed, `shared.coupons.claims.claimed_event`), and a Stock item
modified (to see `available` cross its threshold). Everything else in the stream
(idempotency records, consumer marks, TTL deletions) is ignored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.coupons.claims import claimed_event
from shared.data.stores.coupons import coupon_of_image
from shared.data.stores.orders import issued_refund_of_image, order_of_image, payment_of_image
from shared.data.stores.paid_expiry import ending_of_image
from shared.kernel.events import DomainEvent
from shared.membership import paid_end
from shared.messaging.ports import EventToForward, StockSnapshot, StreamChange
from shared.ordering import announcements

EVENT_ENTITY = "Event"
STOCK_ENTITY = "Stock"
ORDER_ENTITY = "Order"
COUPON_ENTITY = "Coupon"
PAID_MEMBER_ENTITY = "PaidMember"
REFUND_ENTITY = "Refund"
PAYMENT_ENTITY = "Payment"


def decode(record: dict[str, Any]) -> StreamChange:
    data = record.get("dynamodb", {})
    new, old = data.get("NewImage") or {}, data.get("OldImage") or {}
    entity = _string(new or old, "entity")
    change = StreamChange(
        sequence_number=str(data.get("SequenceNumber", "")),
        record_id=str(record.get("eventID", "")),
        at=_iso(data.get("ApproximateCreationDateTime")),
    )
    name = record.get("eventName")
    if entity == EVENT_ENTITY and name == "INSERT":
        return change.with_event(
            EventToForward(
                event_id=_string(new, "event_id") or "",
                event_type=_string(new, "event_type") or "",
                body=_string(new, "body") or "",
            )
        )
    if entity == STOCK_ENTITY and name == "MODIFY":
        return change.with_stock(_stock(old), _stock(new))
    if entity == ORDER_ENTITY and name in ("INSERT", "MODIFY") and new:
        before = order_of_image(old) if name == "MODIFY" and old else None
        events = announcements.announced(before, order_of_image(new))
        return change.with_derived(tuple(_forwarded(event) for event in events))
    if entity == COUPON_ENTITY and name == "INSERT" and new:
        return change.with_derived((_forwarded(claimed_event(coupon_of_image(new))),))
    if entity == PAID_MEMBER_ENTITY and name == "MODIFY" and new and old:
        # MembershipExpired / MembershipExpiring, from the paid membership's change (docs/events.md)
        events = paid_end.announced(ending_of_image(old), ending_of_image(new))
        return change.with_derived(tuple(_forwarded(event) for event in events))
    if entity == REFUND_ENTITY and name == "MODIFY" and new and old:
        issued = issued_refund_of_image(old, new)
        return change.with_derived((_forwarded(announcements.refund_issued(issued)),) if issued else ())
    if entity == PAYMENT_ENTITY and name == "INSERT" and new:
        flagged = announcements.payment_needs_refund(payment_of_image(new))
        return change.with_derived((_forwarded(flagged),) if flagged else ())
    return change


def _forwarded(event: DomainEvent) -> EventToForward:
    """As the outbox writes it: the body is the message JSON the consumers receive."""
    body = json.dumps(event.to_message(), ensure_ascii=False)
    return EventToForward(event_id=event.event_id, event_type=str(event.type), body=body)


def _stock(image: dict[str, Any]) -> StockSnapshot:
    return StockSnapshot(
        sku=_string(image, "sku") or "",
        location=_string(image, "location") or "",
        on_hand=_number(image, "on_hand") or 0,
        available=_number(image, "available") or 0,
        threshold=_number(image, "low_stock_threshold"),
    )


def _string(image: dict[str, Any], name: str) -> str | None:
    value = image.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _number(image: dict[str, Any], name: str) -> int | None:
    value = image.get(name)
    if not isinstance(value, dict) or "N" not in value:
        return None
    return int(value["N"])


def _iso(approximate: Any) -> str:
    """Lambda gives epoch seconds (a number); keep the record's own time so a re-derived event is
    identical on redelivery."""
    if isinstance(approximate, int | float):
        return datetime.fromtimestamp(approximate, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return ""
