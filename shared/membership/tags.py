"""Recency, frequency and monetary tags (docs/membership.md, "Tags and segments").

A member's `Activity` is kept from the order events by the membership consumer, in the same write
as its points (one transaction with the consumer's mark): OrderPaid counts an order and its paid
amount, RefundIssued takes the refund off the amount. The tags are not stored: each is a range of
one index ordering (first order, last order, amount), so a member moves in or out of `active` or
`dormant` as time passes without any job rewriting tags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from shared.kernel.clock import iso
from shared.membership.model import DAY_MS, TagRules

AMOUNT_DIGITS = 15  # fen, zero-padded so the index orders amounts as numbers


class Tag(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    DORMANT = "dormant"
    HIGH_VALUE = "high_value"


class Ordering(StrEnum):
    """The index orderings a tag is a range of."""

    FIRST = "first"  # by the first paid order's time
    LAST = "last"  # by the last paid order's time
    AMOUNT = "amount"  # by the paid amount net of refunds


@dataclass(frozen=True)
class Activity:
    customer_sub: str
    first_order_ms: int
    last_order_ms: int
    orders: int = 0
    monetary_fen: int = 0  # paid line amounts, net of refunds
    store_id: str | None = None  # of the last paid order
    version: int = 0  # 0: not stored yet

    @classmethod
    def none_yet(cls, customer_sub: str, at_ms: int) -> Activity:
        return cls(customer_sub, at_ms, at_ms)

    def paid(self, at_ms: int, paid_fen: int, store_id: str | None) -> Activity:
        return replace(
            self,
            first_order_ms=min(self.first_order_ms, at_ms) if self.orders else at_ms,
            last_order_ms=max(self.last_order_ms, at_ms) if self.orders else at_ms,
            orders=self.orders + 1,
            monetary_fen=self.monetary_fen + paid_fen,
            store_id=store_id or self.store_id,
        )

    def refunded(self, amount_fen: int) -> Activity:
        return replace(self, monetary_fen=max(0, self.monetary_fen - amount_fen))

    def sort_key(self, ordering: Ordering) -> str:
        """The member's position in an ordering (the customer id breaks ties)."""
        if ordering is Ordering.FIRST:
            return f"{iso(self.first_order_ms)}#{self.customer_sub}"
        if ordering is Ordering.LAST:
            return f"{iso(self.last_order_ms)}#{self.customer_sub}"
        return f"{self.monetary_fen:0{AMOUNT_DIGITS}d}#{self.customer_sub}"

    def tags(self, now_ms: int, rules: TagRules) -> list[Tag]:
        return [tag for tag in Tag if TagRange.of(tag, now_ms, rules).admits(self)]

    def view(self, now_ms: int, rules: TagRules) -> dict[str, Any]:
        return {
            "customer_id": self.customer_sub,
            "tags": [str(t) for t in self.tags(now_ms, rules)],
            "orders": self.orders,
            "monetary_fen": self.monetary_fen,
            "first_order_at": iso(self.first_order_ms),
            "last_order_at": iso(self.last_order_ms),
            "store_id": self.store_id,
        }


@dataclass(frozen=True)
class TagRange:
    """A tag as one range of one ordering: positions from `low` (inclusive) to `high` (exclusive),
    None for open; members with fewer than `min_orders` orders are left out (a filter, not a key)."""

    ordering: Ordering
    low: str | None = None
    high: str | None = None
    min_orders: int = 1

    @classmethod
    def of(cls, tag: Tag, now_ms: int, rules: TagRules) -> TagRange:
        if tag is Tag.NEW:
            return cls(Ordering.FIRST, low=iso(now_ms - rules.new_days * DAY_MS))
        if tag is Tag.ACTIVE:
            return cls(Ordering.LAST, low=iso(now_ms - rules.active_days * DAY_MS))
        if tag is Tag.DORMANT:
            return cls(Ordering.LAST, high=iso(now_ms - rules.dormant_days * DAY_MS))
        return cls(
            Ordering.AMOUNT, low=f"{rules.high_value_fen:0{AMOUNT_DIGITS}d}", min_orders=rules.high_value_min_orders
        )

    def admits(self, activity: Activity) -> bool:
        key = activity.sort_key(self.ordering)
        return (
            activity.orders >= self.min_orders
            and (self.low is None or key >= self.low)
            and (self.high is None or key < self.high)
        )

    def view(self) -> dict[str, Any]:
        return {"ordering": str(self.ordering), "low": self.low, "high": self.high, "min_orders": self.min_orders}

    @classmethod
    def of_view(cls, body: dict[str, Any]) -> TagRange:
        return cls(Ordering(body["ordering"]), body.get("low"), body.get("high"), int(body.get("min_orders", 1)))
