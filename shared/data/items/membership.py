"""Members, their points and the merchant's membership rules (shared/data/stores/membership.py;
docs/data-model.md, "Members"). A member's items share its partition `MEMBER#<sub>`, beside the
`MEMBER` item that grants member prices (shared/data/items/member.py)."""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


def member_partition(customer_sub: str) -> str:
    return f"MEMBER#{customer_sub}"


class MembershipRulesItem(BaseItem, discriminator="MembershipRules"):
    """pk `MEMBERSHIP_RULES`, sk `CURRENT`: the level table and points rule, saved conditional on `version`."""

    version = NumberAttribute()
    body = JSONAttribute()

    @staticmethod
    def key() -> tuple[str, str]:
        return "MEMBERSHIP_RULES", "CURRENT"


class MemberProfileItem(BaseItem, discriminator="MemberProfile"):
    """pk `MEMBER#<sub>`, sk `PROFILE`: level and growth, written conditional on `version`."""

    customer_sub = UnicodeAttribute()
    level = NumberAttribute()
    growth_fen = NumberAttribute()
    level_changed_at = NumberAttribute(null=True)  # epoch ms
    version = NumberAttribute()

    @staticmethod
    def key(customer_sub: str) -> tuple[str, str]:
        return member_partition(customer_sub), "PROFILE"


class PointsBalanceItem(BaseItem, discriminator="PointsBalance"):
    """pk `MEMBER#<sub>`, sk `POINTS`: the balance. Every write is conditional (on `version`, or for
    a spend on `available >= points`) and in the transaction of its ledger entry; every write adds
    1 to `version`."""

    customer_sub = UnicodeAttribute()
    available = NumberAttribute()
    frozen = NumberAttribute()
    reserved = NumberAttribute()
    debt = NumberAttribute()
    released_total = NumberAttribute()
    version = NumberAttribute()

    @staticmethod
    def key(customer_sub: str) -> tuple[str, str]:
        return member_partition(customer_sub), "POINTS"


class OrderPointsItem(BaseItem, discriminator="OrderPoints"):
    """pk `MEMBER#<sub>`, sk `PORDER#<order_id>`: one order's points (the lot), conditional on
    `version`. gsi2 `POINTS#FROZEN#<shard>` / `<due iso>#<sub>#<order>` while FROZEN, then
    `POINTS#RELEASED#<shard>` / `<expires iso>#<sub>#<order>` while its points may still expire
    (sparse: the release and expiry schedules' queues)."""

    customer_sub = UnicodeAttribute()
    order_id = UnicodeAttribute()
    state = UnicodeAttribute()
    version = NumberAttribute()
    body = JSONAttribute()

    @staticmethod
    def key(customer_sub: str, order_id: str) -> tuple[str, str]:
        return member_partition(customer_sub), f"PORDER#{order_id}"


class PointsEntryItem(BaseItem, discriminator="PointsEntry"):
    """pk `MEMBER#<sub>`, sk `PL#<at iso>#<entry_id>`: one ledger entry (`GET /me/points` reads the
    partition's `PL#` range backwards: newest first)."""

    kind = UnicodeAttribute()
    order_id = UnicodeAttribute()
    at = NumberAttribute()  # epoch ms
    available = NumberAttribute()
    frozen = NumberAttribute()
    reserved = NumberAttribute()
    debt = NumberAttribute()
    refund_id = UnicodeAttribute(null=True)

    @staticmethod
    def key(customer_sub: str, at_iso: str, entry_id: str) -> tuple[str, str]:
        return member_partition(customer_sub), f"PL#{at_iso}#{entry_id}"


class PointsHoldItem(BaseItem, discriminator="PointsHold"):
    """pk `MEMBER#<sub>`, sk `PHOLD#<order_id>`: the points an order holds: HELD, then SPENT or
    RETURNED. Spent at checkout (written by the order's transaction, SPENT at once): `paid_fen`
    and `version` 1, then what came back (`returned`, `refunded_fen`, `refunds`), conditional on
    `version`."""

    order_id = UnicodeAttribute()
    points = NumberAttribute()
    status = UnicodeAttribute()
    paid_fen = NumberAttribute(null=True)
    refunded_fen = NumberAttribute(null=True)
    returned = NumberAttribute(null=True)
    refunds = JSONAttribute(null=True)
    version = NumberAttribute(null=True)

    @staticmethod
    def key(customer_sub: str, order_id: str) -> tuple[str, str]:
        return member_partition(customer_sub), f"PHOLD#{order_id}"


class MemberActivityItem(BaseItem, discriminator="MemberActivity"):
    """pk `MEMBER#<sub>`, sk `ACTIVITY`: orders, paid amount, first and last order (the tags,
    shared/membership/tags.py), conditional on `version`. gsi1 `MTAG#LAST#<shard>` /
    `<last order iso>#<sub>` and gsi2 `MTAG#AMOUNT#<shard>` / `<amount, 15 digits>#<sub>`: the
    `active`, `dormant` and `high_value` ranges."""

    customer_sub = UnicodeAttribute()
    first_order_at = NumberAttribute()  # epoch ms
    last_order_at = NumberAttribute()
    orders = NumberAttribute()
    monetary_fen = NumberAttribute()
    store_id = UnicodeAttribute(null=True)
    version = NumberAttribute()

    @staticmethod
    def key(customer_sub: str) -> tuple[str, str]:
        return member_partition(customer_sub), "ACTIVITY"


class MemberFirstOrderItem(BaseItem, discriminator="MemberFirstOrder"):
    """pk `MEMBER#<sub>`, sk `FIRST_ORDER`: written once, with the first paid order's activity.
    gsi1 `MTAG#FIRST#<shard>` / `<first order iso>#<sub>`: the `new` range (the activity item has
    both its index slots taken)."""

    customer_sub = UnicodeAttribute()

    @staticmethod
    def key(customer_sub: str) -> tuple[str, str]:
        return member_partition(customer_sub), "FIRST_ORDER"


class SegmentIssueItem(BaseItem, discriminator="SegmentIssue"):
    """pk `SEGISSUE#<job_id>`, sk `JOB`: a coupon issued to a segment (shared/membership/segments.py),
    written conditional on `version`. gsi2 `SEGISSUE#RUNNING` / `<created iso>#<job_id>` while
    RUNNING (sparse: the schedule's queue)."""

    version = NumberAttribute()
    body = JSONAttribute()

    @staticmethod
    def key(job_id: str) -> tuple[str, str]:
        return f"SEGISSUE#{job_id}", "JOB"
