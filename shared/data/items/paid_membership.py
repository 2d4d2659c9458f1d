"""A member's paid terms and current paid membership (shared/data/stores/paid_membership.py;
docs/data-model.md, "Paid membership"). Both live in the member's partition `MEMBER#<sub>`, beside
the `MEMBER` item checkout reads (shared/data/items/member.py), which the same transaction sets."""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.items.membership import member_partition
from shared.data.table import BaseItem

TERMS_BOUGHT = "PAIDTERM#BOUGHT"  # gsi2: terms by purchase time (the reports)
TERMS_ENDING = "PAIDTERM#END"  # gsi1: terms by the end of their last segment
MEMBERS_ENDING = "PAIDMEMBER#END"  # gsi2: paid memberships by their end (the expiry job)


class PaidTermItem(BaseItem, discriminator="PaidTerm"):
    """pk `MEMBER#<sub>`, sk `PTERM#<order_id>`: one purchase of a plan, put once
    (`attribute_not_exists`), then changed (an upgrade moving it, a refund ending it) conditional
    on `version`. gsi2 `PAIDTERM#BOUGHT` / `<bought iso>#<order>`; gsi1 `PAIDTERM#END` /
    `<end iso of its last segment>#<order>`."""

    customer_sub = UnicodeAttribute()
    order_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    tier = UnicodeAttribute()
    rank = NumberAttribute()
    days = NumberAttribute()
    kind = UnicodeAttribute()  # new | renewal | upgrade
    store_id = UnicodeAttribute(null=True)
    guide_id = UnicodeAttribute(null=True)
    paid_fen = NumberAttribute()
    bought_at_ms = NumberAttribute()
    segments = JSONAttribute()  # [[start_ms, end_ms], ...]
    status = UnicodeAttribute()  # ACTIVE | REFUNDED
    refunded_at_ms = NumberAttribute(null=True)
    discount_bp = NumberAttribute()
    member_price = BooleanAttribute()
    refund_full_within_days = NumberAttribute()
    version = NumberAttribute()

    @staticmethod
    def key(customer_sub: str, order_id: str) -> tuple[str, str]:
        return member_partition(customer_sub), f"PTERM#{order_id}"


class PaidMemberItem(BaseItem, discriminator="PaidMember"):
    """pk `MEMBER#<sub>`, sk `PAIDMEMBER`: the current paid membership (the tier running now, its
    benefits, `until_ms` the end of everything bought). Every write is conditional on `version`
    (or on not existing); gsi2 `PAIDMEMBER#END` / `<until iso>#<sub>` moves with `until_ms`. The
    expiry job (shared/membership/paid_expiry*.py) sets `status` EXPIRED and its own marks."""

    customer_sub = UnicodeAttribute()
    tier = UnicodeAttribute()
    rank = NumberAttribute()
    discount_bp = NumberAttribute()
    member_price = BooleanAttribute()
    until_ms = NumberAttribute()
    store_id = UnicodeAttribute(null=True)
    guide_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()  # ACTIVE | EXPIRED
    reminded_for_ms = NumberAttribute(null=True)  # the expiry job's marks
    expired_for_ms = NumberAttribute(null=True)
    # which tier's benefits when: [[start_ms, end_ms, tier, rank, discount_bp, member_price], ...]
    # (paid_terms.benefit_schedule; null: written before schedules)
    schedule = JSONAttribute(null=True)
    version = NumberAttribute()

    @staticmethod
    def key(customer_sub: str) -> tuple[str, str]:
        return member_partition(customer_sub), "PAIDMEMBER"
