"""Members, levels and points: the pure rules (docs/membership.md).

Integer arithmetic throughout: growth is fen, points are whole points. Every change of a member's
points is a `LedgerEntry` whose deltas move the `PointsBalance`; the functions here compute the
entries and the items after, the stores write them all or nothing.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from shared.kernel.clock import iso
from shared.kernel.errors import Conflict, InsufficientPoints, RuleViolation
from shared.kernel.events import DomainEvent, EventType

DAY_MS = 86_400_000
POINTS_SHARDS = 4  # the release and expiry queues of the index, by customer
BP = 10_000
MAX_LEVELS = 20
MAX_REDEEM_POINTS_PER_YUAN = 1_000_000
# Points never pay a whole order's merchandise: what is left is what refunds return points against.
MAX_REDEEM_CAP_BP = 9_900

__all__ = ["InsufficientPoints"]  # defined in the kernel: checkout refuses with it too


class PointsAlreadyHeld(Conflict):
    """The order already holds points (a different amount, or already spent or returned)."""

    code = "POINTS_ALREADY_HELD"


class PointsNotHeld(Conflict):
    """The order holds no such points to spend or give back."""

    code = "POINTS_NOT_HELD"


# -- merchant settings ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Level:
    level: int
    name: str
    min_growth_fen: int
    member_price: bool = False  # members of this level pay the products' member_price_fen
    discount_bp: int = 0  # off the order's merchandise, in basis points (500 = 5% off)
    points_multiplier_bp: int = BP  # 10,000 = x1

    def view(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "name": self.name,
            "min_growth_fen": self.min_growth_fen,
            "member_price": self.member_price,
            "discount_bp": self.discount_bp,
            "points_multiplier_bp": self.points_multiplier_bp,
        }


@dataclass(frozen=True)
class TagRules:
    """The thresholds of the recency, frequency and monetary tags (docs/membership.md, "Tags")."""

    new_days: int = 30  # first paid order at most this many days ago
    active_days: int = 90  # last paid order at most this many days ago
    dormant_days: int = 180  # last paid order more than this many days ago
    high_value_fen: int = 100_000  # paid, net of refunds, at least this much
    high_value_min_orders: int = 1  # and at least this many paid orders

    def __post_init__(self) -> None:
        if min(self.new_days, self.active_days, self.high_value_min_orders) < 1 or self.high_value_fen < 0:
            raise RuleViolation("tag days and orders are at least 1, high_value_fen not negative")
        if self.dormant_days < self.active_days:
            raise RuleViolation("dormant_days is at least active_days", dormant_days=self.dormant_days)

    def view(self) -> dict[str, int]:
        return {
            "new_days": self.new_days,
            "active_days": self.active_days,
            "dormant_days": self.dormant_days,
            "high_value_fen": self.high_value_fen,
            "high_value_min_orders": self.high_value_min_orders,
        }


@dataclass(frozen=True)
class MembershipRules:
    """The merchant's level table and points rule (`PUT /admin/membership-rules`). Version 0: the
    defaults, never saved."""

    levels: tuple[Level, ...]
    points_per_yuan: int = 1
    points_expire_after_days: int = 365  # 0: points never expire
    tags: TagRules = field(default_factory=TagRules)
    birthday_coupon_template_id: str | None = None  # issued with the birthday greeting, once a year
    # Spending at checkout (docs/membership.md, "Spending at checkout"): how many points take one
    # yuan off (0: points cannot be spent), and the cap per order, in basis points of the
    # merchandise payable after promotions and coupons and (if above 0) in fen.
    redeem_points_per_yuan: int = 0
    redeem_cap_bp: int = 0
    redeem_cap_fen: int = 0
    version: int = 0

    def __post_init__(self) -> None:
        if not self.levels or len(self.levels) > MAX_LEVELS:
            raise RuleViolation(f"between 1 and {MAX_LEVELS} levels", levels=len(self.levels))
        for n, level in enumerate(self.levels):
            if level.level != n:
                raise RuleViolation("levels are numbered 0, 1, 2 ... in order", level=level.level, expected=n)
            if n == 0 and level.min_growth_fen != 0:
                raise RuleViolation("level 0 starts at growth 0", min_growth_fen=level.min_growth_fen)
            if n > 0 and level.min_growth_fen <= self.levels[n - 1].min_growth_fen:
                raise RuleViolation("each level needs more growth than the one below", level=n)
            if not 0 <= level.discount_bp <= BP or not 0 <= level.points_multiplier_bp <= 10 * BP:
                raise RuleViolation("discount_bp 0..10000, points_multiplier_bp 0..100000", level=n)
        if self.points_per_yuan < 0 or self.points_expire_after_days < 0:
            raise RuleViolation("points_per_yuan and points_expire_after_days are not negative")
        self._check_spending()

    def _check_spending(self) -> None:
        if not 0 <= self.redeem_points_per_yuan <= MAX_REDEEM_POINTS_PER_YUAN:
            raise RuleViolation(
                f"redeem_points_per_yuan 0..{MAX_REDEEM_POINTS_PER_YUAN}",
                redeem_points_per_yuan=self.redeem_points_per_yuan,
            )
        if not 0 <= self.redeem_cap_bp <= MAX_REDEEM_CAP_BP or self.redeem_cap_fen < 0:
            raise RuleViolation(
                f"redeem_cap_bp 0..{MAX_REDEEM_CAP_BP}, redeem_cap_fen not negative", redeem_cap_bp=self.redeem_cap_bp
            )
        if self.redeem_points_per_yuan and not self.redeem_cap_bp:
            raise RuleViolation("spending points needs redeem_cap_bp above 0", redeem_cap_bp=self.redeem_cap_bp)

    def level_for(self, growth_fen: int) -> Level:
        """The highest level whose threshold the growth reaches."""
        found = self.levels[0]
        for level in self.levels:
            if growth_fen >= level.min_growth_fen:
                found = level
        return found

    def level(self, number: int) -> Level:
        """Level `number`; a level the merchant has since removed reads as the highest one left."""
        return self.levels[min(max(number, 0), len(self.levels) - 1)]

    def next_level(self, number: int) -> Level | None:
        return self.levels[number + 1] if number + 1 < len(self.levels) else None

    def points_for(self, paid_fen: int, level: int) -> int:
        """Points an order earns: points per yuan paid times the level's multiplier, rounded down
        once (paid_fen x points_per_yuan x multiplier_bp // (100 x 10,000))."""
        return paid_fen * self.points_per_yuan * self.level(level).points_multiplier_bp // (100 * BP)

    def expires_at(self, available_at_ms: int) -> int | None:
        days = self.points_expire_after_days
        return available_at_ms + days * DAY_MS if days > 0 else None

    def next_version(self) -> MembershipRules:
        return replace(self, version=self.version + 1)

    def view(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "levels": [level.view() for level in self.levels],
            "points_per_yuan": self.points_per_yuan,
            "points_expire_after_days": self.points_expire_after_days,
            "tags": self.tags.view(),
            "birthday_coupon_template_id": self.birthday_coupon_template_id,
            "redeem_points_per_yuan": self.redeem_points_per_yuan,
            "redeem_cap_bp": self.redeem_cap_bp,
            "redeem_cap_fen": self.redeem_cap_fen,
        }

    @classmethod
    def of(cls, body: dict[str, Any], version: int = 0) -> MembershipRules:
        levels = tuple(
            Level(
                level=int(raw["level"]),
                name=str(raw["name"]),
                min_growth_fen=int(raw["min_growth_fen"]),
                member_price=bool(raw.get("member_price", False)),
                discount_bp=int(raw.get("discount_bp", 0)),
                points_multiplier_bp=int(raw.get("points_multiplier_bp", BP)),
            )
            for raw in body["levels"]
        )
        return cls(
            levels,
            points_per_yuan=int(body.get("points_per_yuan", 1)),
            points_expire_after_days=int(body.get("points_expire_after_days", 365)),
            tags=TagRules(**{k: int(v) for k, v in (body.get("tags") or {}).items()}),
            birthday_coupon_template_id=body.get("birthday_coupon_template_id") or None,
            redeem_points_per_yuan=int(body.get("redeem_points_per_yuan", 0)),
            redeem_cap_bp=int(body.get("redeem_cap_bp", 0)),
            redeem_cap_fen=int(body.get("redeem_cap_fen", 0)),
            version=version,
        )


DEFAULT_RULES = MembershipRules((Level(0, "会员", 0),))


@dataclass(frozen=True)
class Benefits:
    """What a customer's membership does at checkout: member prices, and a discount in basis points
    off its unit prices (docs/pricing.md, "Member benefits")."""

    member_price: bool = False
    discount_bp: int = 0


def checkout_benefits(level: Level, paid: Benefits | None) -> Benefits:
    """The best of the member's level and its paid membership (None: none running), each benefit
    on its own: member prices if either gives them, the larger discount. They never add up."""
    if paid is None:
        return Benefits(level.member_price, level.discount_bp)
    return Benefits(level.member_price or paid.member_price, max(level.discount_bp, paid.discount_bp))


# -- the member --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    customer_sub: str
    created_at_ms: int
    level: int = 0
    growth_fen: int = 0  # paid line amounts of completed orders, net of refunds
    level_changed_at_ms: int | None = None
    version: int = 0  # 0: not stored yet

    def grown(self, delta_fen: int, rules: MembershipRules, at_ms: int) -> Member:
        growth = max(0, self.growth_fen + delta_fen)
        level = rules.level_for(growth).level
        changed = at_ms if level != self.level else self.level_changed_at_ms
        return replace(self, growth_fen=growth, level=level, level_changed_at_ms=changed)


def level_changed(before: Member, after: Member, cause: DomainEvent) -> DomainEvent | None:
    """MemberLevelChanged, announced in the write that changed the level. Its id comes from the
    cause, so a write replayed past its consumer's mark announces once."""
    if before.level == after.level:
        return None
    payload = {
        "customer_id": after.customer_sub,
        "from_level": before.level,
        "to_level": after.level,
        "growth_fen": after.growth_fen,
        "order_id": str(cause.payload.get("order_id", "")),
        "cause_event_id": cause.event_id,
    }
    return DomainEvent(
        EventType.MEMBER_LEVEL_CHANGED,
        after.customer_sub,
        payload,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"member-level:{cause.event_id}")),
        occurred_at=cause.occurred_at,
    )


# -- the points ledger -----------------------------------------------------------------------------
class EntryKind(StrEnum):
    EARNED = "earned"  # an order completed: frozen until the after-sale window closes
    RELEASED = "released"  # the window closed: frozen -> available (paying any debt first)
    REFUND_RETURNED = "refund_returned"  # a refund took back its share: frozen, else available or debt
    EXPIRED = "expired"  # available points past their time
    HELD = "held"  # an order holds points to spend: available -> reserved
    SPENT = "spent"  # the order was paid: reserved points are gone
    HOLD_RETURNED = "hold_returned"  # the unpaid order ended: reserved -> available (paying any debt first)
    # Spending at checkout: the order's transaction takes the points (SPENT, available down);
    SPEND_RETURNED = "spend_returned"  # the unpaid order was cancelled or expired: all back (debt first)
    SPEND_REFUNDED = "spend_refunded"  # a refund of the paid order: its pro-rata share back (debt first)


@dataclass(frozen=True)
class LedgerEntry:
    """One change of a member's points; its deltas sum, over the ledger, to the balance."""

    kind: EntryKind
    customer_sub: str
    order_id: str
    at_ms: int
    available: int = 0
    frozen: int = 0
    reserved: int = 0
    debt: int = 0
    refund_id: str | None = None

    @property
    def entry_id(self) -> str:
        """Deterministic: one entry of a kind per order (per refund), so none is written twice."""
        return f"{self.kind.value}:{self.order_id}" + (f":{self.refund_id}" if self.refund_id else "")

    @property
    def points(self) -> int:
        """What the member's own points (available and frozen) moved by."""
        return self.available + self.frozen

    def view(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "kind": self.kind.value,
            "points": self.points,
            "available": self.available,
            "frozen": self.frozen,
            "reserved": self.reserved,
            "debt": self.debt,
            "order_id": self.order_id,
            "refund_id": self.refund_id,
            "at": iso(self.at_ms),
        }


@dataclass(frozen=True)
class PointsBalance:
    """A member's points. `released_total` counts every point ever credited to available by a
    release: with it, `released_total - available` is how many of them have been used, which is
    how expiry finds a lot's unused points first in, first out (`expire`)."""

    customer_sub: str
    available: int = 0
    frozen: int = 0
    reserved: int = 0
    debt: int = 0
    released_total: int = 0
    version: int = 0  # 0: not stored yet

    def applied(self, entry: LedgerEntry) -> PointsBalance:
        after = replace(
            self,
            available=self.available + entry.available,
            frozen=self.frozen + entry.frozen,
            reserved=self.reserved + entry.reserved,
            debt=self.debt + entry.debt,
            released_total=self.released_total + (entry.available if entry.kind is EntryKind.RELEASED else 0),
        )
        if min(after.available, after.frozen, after.reserved, after.debt) < 0:
            raise ValueError(f"a points balance never goes below 0: {after}")
        return after

    def view(self) -> dict[str, int]:
        return {"available": self.available, "frozen": self.frozen, "reserved": self.reserved, "debt": self.debt}


# -- an order's points (the lot) ---------------------------------------------------------------------
class LotState(StrEnum):
    OPEN = "open"  # heard of, not completed: refunds are only counted
    FROZEN = "frozen"  # earned, waiting for the after-sale window
    RELEASED = "released"  # available (waiting for expiry if the points expire)
    EXPIRED = "expired"


def shard_of(customer_sub: str) -> int:
    return zlib.crc32(customer_sub.encode()) % POINTS_SHARDS


@dataclass(frozen=True)
class OrderPoints:
    """What the points ledger knows of one order of a member."""

    customer_sub: str
    order_id: str
    paid_fen: int  # the lines' paid amounts (freight is never on a line, nor ever refunded)
    refunded_fen: int = 0
    refunds: tuple[str, ...] = ()
    state: LotState = LotState.OPEN
    completed_at_ms: int | None = None
    earned: int = 0  # what the whole paid amount earned at completion
    returned: int = 0  # the refunds' pro-rata share of `earned` so far
    growth_fen: int = 0  # what the order added to the member's growth (paid - refunded, once completed)
    frozen_points: int = 0
    due_at_ms: int | None = None
    released_points: int = 0
    credited: int = 0  # of the released points, those that reached available (the rest paid debt)
    released_through: int = 0  # the balance's released_total just after this lot was credited
    available_at_ms: int | None = None
    expires_at_ms: int | None = None
    expired_points: int = 0
    taken_back: int = 0  # points refunds took back after the release (from available, or as debt)
    version: int = 0  # 0: not stored yet

    @property
    def shard(self) -> int:
        return shard_of(self.customer_sub)


def returned_share(earned: int, paid_fen: int, refunded_fen: int) -> int:
    """The points `refunded_fen` of `paid_fen` takes back: pro rata on the running refunded total,
    rounded down, so every refund takes `share(after) - share(before)` and refunding everything,
    in any number of parts, takes back exactly `earned`."""
    return earned * min(refunded_fen, paid_fen) // paid_fen if paid_fen > 0 else 0


@dataclass(frozen=True)
class Step:
    """One write, as the use case computed it: every item after, and the entries that explain it."""

    book: OrderPoints
    balance: PointsBalance
    member: Member | None = None
    entries: tuple[LedgerEntry, ...] = field(default=())
    spend: OrderSpend | None = None  # what the order spent at checkout, after this write


def _with(balance: PointsBalance, entries: list[LedgerEntry]) -> PointsBalance:
    for entry in entries:
        balance = balance.applied(entry)
    return balance


def complete(
    book: OrderPoints,
    member: Member,
    balance: PointsBalance,
    rules: MembershipRules,
    at_ms: int,
    window_ms: int,
) -> Step | None:
    """The order completed: it earns by the member's level before it (its growth then counts),
    net of what was refunded before; frozen until `window_ms` after completion."""
    if book.completed_at_ms is not None:
        return None
    earned = rules.points_for(book.paid_fen, member.level)
    returned = returned_share(earned, book.paid_fen, book.refunded_fen)
    net = earned - returned
    growth = book.paid_fen - book.refunded_fen
    after = replace(
        book,
        state=LotState.FROZEN if net > 0 else LotState.RELEASED,
        completed_at_ms=at_ms,
        earned=earned,
        returned=returned,
        growth_fen=growth,
        frozen_points=net,
        due_at_ms=at_ms + window_ms if net > 0 else None,
    )
    entries = [LedgerEntry(EntryKind.EARNED, book.customer_sub, book.order_id, at_ms, frozen=net)] if net else []
    return Step(after, _with(balance, entries), member.grown(growth, rules, at_ms), tuple(entries))


def refund(
    book: OrderPoints,
    member: Member,
    balance: PointsBalance,
    rules: MembershipRules,
    refund_id: str,
    amount_fen: int,
    at_ms: int,
) -> Step | None:
    """A refund issued. Before completion it is only counted (completion earns net of it). After:
    the growth goes down by the amount, and the refund's pro-rata share of the points comes back:
    from the frozen points while the window is open; after the release from available points, and
    what available cannot cover is recorded as debt (paid by the next points released), never as a
    negative balance. What expired of the order's points is not taken back a second time."""
    if refund_id in book.refunds:
        return None
    refunded = min(book.paid_fen, book.refunded_fen + max(0, amount_fen))
    after = replace(book, refunded_fen=refunded, refunds=(*book.refunds, refund_id))
    if book.completed_at_ms is None:
        return Step(after, balance)
    growth_delta = -(refunded - book.refunded_fen)
    returned = returned_share(book.earned, book.paid_fen, refunded)
    back = returned - book.returned
    after = replace(after, returned=returned, growth_fen=book.growth_fen + growth_delta)
    entries: list[LedgerEntry] = []
    if book.state is LotState.FROZEN:
        after = replace(after, frozen_points=book.frozen_points - back)
        if back:
            entries.append(
                LedgerEntry(
                    EntryKind.REFUND_RETURNED,
                    book.customer_sub,
                    book.order_id,
                    at_ms,
                    frozen=-back,
                    refund_id=refund_id,
                )
            )
    else:
        still_held = book.released_points - book.expired_points - book.taken_back
        take = min(back, max(0, still_held))
        from_available = min(take, balance.available)
        after = replace(after, taken_back=book.taken_back + take)
        if take:
            entry = LedgerEntry(
                EntryKind.REFUND_RETURNED,
                book.customer_sub,
                book.order_id,
                at_ms,
                available=-from_available,
                debt=take - from_available,
                refund_id=refund_id,
            )
            entries.append(entry)
    return Step(after, _with(balance, entries), member.grown(growth_delta, rules, at_ms), tuple(entries))


def release(book: OrderPoints, balance: PointsBalance, rules: MembershipRules, at_ms: int) -> Step | None:
    """The after-sale window closed: the frozen points become available, paying any debt first."""
    if book.state is not LotState.FROZEN:
        return None
    points = book.frozen_points
    pays = min(balance.debt, points)
    credit = points - pays
    entries = (
        [
            LedgerEntry(
                EntryKind.RELEASED,
                book.customer_sub,
                book.order_id,
                at_ms,
                available=credit,
                frozen=-points,
                debt=-pays,
            )
        ]
        if points
        else []
    )
    after_balance = _with(balance, entries)
    after = replace(
        book,
        state=LotState.RELEASED,
        frozen_points=0,
        released_points=points,
        credited=credit,
        released_through=after_balance.released_total,
        available_at_ms=at_ms,
        expires_at_ms=rules.expires_at(at_ms) if credit > 0 else None,
        due_at_ms=None,
    )
    return Step(after, after_balance, None, tuple(entries))


def expire(book: OrderPoints, balance: PointsBalance, at_ms: int) -> Step | None:
    """The lot's time is up: what is left of it expires. Points are used first in, first out: of
    all points ever released, the first `released_total - available` count as used, so this lot
    (credited as the points up to `released_through`) still has what lies above that, at most its
    own, never more than is available."""
    if book.state is not LotState.RELEASED or book.expires_at_ms is None or book.expires_at_ms > at_ms:
        return None
    used = balance.released_total - balance.available
    left = min(book.credited, max(0, book.released_through - used), balance.available)
    entries = [LedgerEntry(EntryKind.EXPIRED, book.customer_sub, book.order_id, at_ms, available=-left)] if left else []
    after = replace(book, state=LotState.EXPIRED, expired_points=left)
    return Step(after, _with(balance, entries), None, tuple(entries))


# -- spending (the order's hold) -------------------------------------------------------------------
def held(customer_sub: str, order_id: str, points: int, at_ms: int) -> LedgerEntry:
    return LedgerEntry(EntryKind.HELD, customer_sub, order_id, at_ms, available=-points, reserved=points)


def spent(customer_sub: str, order_id: str, points: int, at_ms: int) -> LedgerEntry:
    return LedgerEntry(EntryKind.SPENT, customer_sub, order_id, at_ms, reserved=-points)


def hold_returned(customer_sub: str, order_id: str, points: int, debt: int, at_ms: int) -> LedgerEntry:
    """Points an unpaid order gave back pay the member's debt first, as released points do."""
    pays = min(debt, points)
    return LedgerEntry(
        EntryKind.HOLD_RETURNED, customer_sub, order_id, at_ms, available=points - pays, reserved=-points, debt=-pays
    )


def check_spend(points: int) -> None:
    if points <= 0:
        raise RuleViolation("points to spend are a positive whole number", points=points)


# -- spending at checkout (the order's own transaction takes the points) -------------------------
SPEND_SPENT, SPEND_RETURNED = "SPENT", "RETURNED"


@dataclass(frozen=True)
class OrderSpend:
    """The points an order spent at checkout (`PHOLD#<order>`, written by the order's transaction),
    and what came back of them: all when the unpaid order ended, or each refund's pro-rata share."""

    customer_sub: str
    order_id: str
    points: int
    paid_fen: int  # the order's line payables after the deduction: what refunds are shares of
    status: str = SPEND_SPENT
    refunded_fen: int = 0
    returned: int = 0  # points given back so far
    refunds: tuple[str, ...] = ()
    version: int = 1


def spent_at_checkout(customer_sub: str, order_id: str, points: int, at_ms: int) -> LedgerEntry:
    return LedgerEntry(EntryKind.SPENT, customer_sub, order_id, at_ms, available=-points)


def _back(kind: EntryKind, spend: OrderSpend, points: int, debt: int, at_ms: int, refund_id: str | None) -> LedgerEntry:
    """Points given back pay the member's debt first, as released points do."""
    pays = min(debt, points)
    return LedgerEntry(
        kind, spend.customer_sub, spend.order_id, at_ms, available=points - pays, debt=-pays, refund_id=refund_id
    )


def spend_ended(
    spend: OrderSpend, balance: PointsBalance, at_ms: int
) -> tuple[OrderSpend, PointsBalance, LedgerEntry] | None:
    """The unpaid order was cancelled or expired: every point it spent comes back, once."""
    if spend.status != SPEND_SPENT or spend.refunds:
        return None
    back = spend.points - spend.returned
    entry = _back(EntryKind.SPEND_RETURNED, spend, back, balance.debt, at_ms, None)
    after = replace(spend, status=SPEND_RETURNED, returned=spend.points)
    return after, balance.applied(entry), entry


def spend_refunded(
    spend: OrderSpend, balance: PointsBalance, refund_id: str, amount_fen: int, at_ms: int
) -> tuple[OrderSpend, PointsBalance, LedgerEntry | None] | None:
    """A refund of `amount_fen` of the paid order: the points come back pro rata on the running
    refunded total (`returned_share`), so refunds in any number of parts give back exactly what
    the order spent when everything is refunded, and each refund once."""
    if spend.status != SPEND_SPENT or refund_id in spend.refunds:
        return None
    refunded = min(spend.paid_fen, spend.refunded_fen + max(0, amount_fen))
    owed = returned_share(spend.points, spend.paid_fen, refunded)
    back = owed - spend.returned
    after = replace(spend, refunded_fen=refunded, returned=owed, refunds=(*spend.refunds, refund_id))
    if back <= 0:
        return after, balance, None
    entry = _back(EntryKind.SPEND_REFUNDED, spend, back, balance.debt, at_ms, refund_id)
    return after, balance.applied(entry), entry
