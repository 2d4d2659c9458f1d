from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class MemberItem(BaseItem, discriminator="Member"):
    """pk `MEMBER#<customer sub>`, sk `MEMBER`. The customer is a member (member prices apply)
    while this item exists and `until` has not passed; checkout reads it by key in the same
    BatchGetItem as the cart.

    Paid membership (docs/membership.md) writes it: `discount_bp` (optional, 0..10,000, null = 0)
    is a discount off the merchandise in basis points on top of member prices; `member_price`
    (optional, null = true: seed data) false for a plan that gives only the discount; `until` (optional,
    epoch ms, null = no end) is when the membership ends: at or after it the item means nothing
    (no member price, no discount), as if absent. The level's benefits (the membership rules) and
    this item's combine as the best of each: docs/pricing.md, "Member benefits"."""

    customer_sub = UnicodeAttribute()
    tier = UnicodeAttribute(null=True)
    discount_bp = NumberAttribute(null=True)
    member_price = BooleanAttribute(null=True)
    until = NumberAttribute(null=True)
    # The paid benefit schedule (optional; null = `tier`/`discount_bp`/`member_price` until `until`):
    # [[start_ms, end_ms, tier, rank, discount_bp, member_price], ...] from every ACTIVE term;
    # checkout applies the segment covering now, none: no paid benefit.
    schedule = JSONAttribute(null=True)

    @staticmethod
    def key(customer_sub: str) -> tuple[str, str]:
        return f"MEMBER#{customer_sub}", "MEMBER"
