"""Domain events: what the suite announces when state changes.

An event is written in the same DynamoDB transaction as the change it announces (the outbox item,
`shared.data.outbox.emit`); the table's stream carries it to the relay, which sends it to one
queue per consumer. Delivery is at least once: consumers are idempotent per `event_id`.

Payloads are plain JSON (ids, integer fen, ISO times) and carry what consumers need without a
read-back: the customer, the fulfilling store, the lines and amounts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.kernel.clock import now_iso


class EventType(StrEnum):
    ORDER_PLACED = "OrderPlaced"
    ORDER_PAID = "OrderPaid"
    ORDER_CANCELLED = "OrderCancelled"
    ORDER_EXPIRED = "OrderExpired"
    ORDER_FULFILLED = "OrderFulfilled"  # shipped, or ready for pickup: payload["how"]
    ORDER_COMPLETED = "OrderCompleted"
    REFUND_ISSUED = "RefundIssued"
    PAYMENT_NEEDS_REFUND = "PaymentNeedsRefund"
    LOW_STOCK = "LowStock"
    COUPON_CLAIMED = "CouponClaimed"
    COUPON_REDEEMED_OFFLINE = "CouponRedeemedOffline"
    COUPON_REDEMPTION_REVERSED = "CouponRedemptionReversed"
    COUPON_USED = "CouponUsed"  # the order holding it was paid
    COUPON_RETURNED = "CouponReturned"  # the unpaid order was cancelled or expired: AVAILABLE or EXPIRED
    COUPON_EXPIRING = "CouponExpiring"  # an AVAILABLE coupon's use window ends within a day (once per coupon)
    SETTLEMENT_SHARD_DUE = "SettlementShardDue"  # a settlement run's shard to settle (docs/commission.md)
    COMMISSION_RECORDED = "CommissionRecorded"  # what a ledger write booked (docs/commission.md, "Reports")
    MEMBER_LEVEL_CHANGED = "MemberLevelChanged"  # growth moved a member to another level (docs/membership.md)
    MEMBERSHIP_EXPIRING = "MembershipExpiring"  # a paid membership ends in N days (once per member and end)
    MEMBERSHIP_EXPIRED = "MembershipExpired"  # a paid membership ran to its end (docs/membership.md)


@dataclass(frozen=True)
class DomainEvent:
    type: EventType
    aggregate_id: str  # the order id, "<sku>@<location>" for stock, the coupon id for coupons
    payload: dict[str, Any]
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: now_iso())

    def to_message(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": str(self.type),
            "aggregate_id": self.aggregate_id,
            "occurred_at": self.occurred_at,
            "payload": self.payload,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> DomainEvent:
        return cls(
            type=EventType(message["type"]),
            aggregate_id=message["aggregate_id"],
            payload=message["payload"],
            event_id=message["event_id"],
            occurred_at=message["occurred_at"],
        )
