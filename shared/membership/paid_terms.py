"""The paid terms a customer bought, stored, and its current paid membership (issue 14 item 3;
docs/membership.md, "Paid membership: terms, activation, refunds"; keys in docs/data-model.md).

- A `StoredTerm` is one purchase (`MEMBER#<sub>` / `PTERM#<order>`): the `paid.Term` placed by
  `paid.after_purchase`, what was paid, the plan's full-refund window, ACTIVE or REFUNDED.
- The `PaidMember` (`MEMBER#<sub>` / `PAIDMEMBER`) is the summary checkout's `MEMBER` item mirrors:
  the tier running now, its benefits, and `until_ms`, the end of everything bought.
- `purchased` and `refunded` are the pure rules: the state after a purchase / a refund, from the
  state read. The store writes the difference in ONE transaction, conditional on the versions read
  (`PaidTermsStore.write`), so two writers racing for one member cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from shared.membership import paid
from shared.membership.paid import Term


class TermStatus(StrEnum):
    ACTIVE = "ACTIVE"
    REFUNDED = "REFUNDED"


class MemberStatus(StrEnum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class StoredTerm:
    customer_id: str
    term: Term
    paid_fen: int
    refund_full_within_days: int = 0
    status: TermStatus = TermStatus.ACTIVE
    refunded_at_ms: int | None = None
    version: int = 0  # 0: not stored yet

    @property
    def order_id(self) -> str:
        return self.term.order_id


@dataclass(frozen=True)
class Benefit:
    """One segment of the benefit schedule: from `start_ms` to `end_ms` (exclusive) the member has
    this tier's benefits. The segments of every ACTIVE term, sorted, not overlapping."""

    start_ms: int
    end_ms: int
    tier: str
    rank: int
    discount_bp: int
    member_price: bool

    def row(self) -> list[Any]:
        """As stored on `PAIDMEMBER` and checkout's `MEMBER` item: [start, end, tier, rank, bp, member_price]."""
        return [self.start_ms, self.end_ms, self.tier, self.rank, self.discount_bp, self.member_price]

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> Benefit:
        start, end, tier, rank, discount_bp, member_price = row
        return cls(int(start), int(end), str(tier), int(rank), int(discount_bp), bool(member_price))


def benefit_schedule(terms: Sequence[Term]) -> tuple[Benefit, ...]:
    """The benefit schedule of `terms` (the ACTIVE ones): each non-empty segment with its term's benefits."""
    found = (
        Benefit(start, end, t.tier, t.rank, t.discount_bp, t.member_price)
        for t in terms
        for start, end in t.segments
        if end > start
    )
    return tuple(sorted(found, key=lambda b: (b.start_ms, b.end_ms)))


def benefit_at(schedule: Sequence[Benefit], now_ms: int) -> Benefit | None:
    """The segment in force at `now_ms` (None: no paid benefit now)."""
    return next((b for b in schedule if b.start_ms <= now_ms < b.end_ms), None)


def schedule_of(rows: Sequence[Sequence[Any]] | None) -> tuple[Benefit, ...] | None:
    """A stored schedule (None: an item written before schedules, or seed data)."""
    return None if rows is None else tuple(Benefit.of_row(row) for row in rows)


@dataclass(frozen=True)
class PaidMember:
    customer_id: str
    tier: str
    rank: int
    discount_bp: int
    member_price: bool
    until_ms: int
    store_id: str | None
    guide_id: str | None
    status: MemberStatus = MemberStatus.ACTIVE
    # The expiry job's mark (p2): the `until_ms` whose expiry was handled. A refund that ends the
    # membership sets it (nothing to announce); None here leaves what is stored as it is, but on an
    # EXPIRED member removes it (expired by a late write, to be announced: `_ran_out`).
    expired_for_ms: int | None = None
    version: int = 0  # 0: not stored yet
    # Which tier's benefits apply when (`benefit_schedule`): tier/discount_bp/member_price above
    # are those of the moment of the last write; readers pick the segment covering their now.
    schedule: tuple[Benefit, ...] = ()

    def benefit_at(self, now_ms: int) -> Benefit | None:
        """The paid benefits in force at `now_ms` (None: none, ended or EXPIRED)."""
        if self.status is not MemberStatus.ACTIVE or self.until_ms <= now_ms:
            return None
        if not self.schedule:  # stored before schedules: the tier of its last write, to its end
            return Benefit(0, self.until_ms, self.tier, self.rank, self.discount_bp, self.member_price)
        return benefit_at(self.schedule, now_ms)


@dataclass(frozen=True)
class PaidState:
    customer_id: str
    terms: tuple[StoredTerm, ...] = ()
    member: PaidMember | None = None

    def term(self, order_id: str) -> StoredTerm | None:
        return next((t for t in self.terms if t.order_id == order_id), None)


class PaidTermsStore(Protocol):
    def read(self, customer_id: str) -> PaidState:
        """The member's terms and paid membership, strongly consistent."""
        ...

    def write(self, before: PaidState, after: PaidState) -> None:
        """ONE transaction: each term of `after` that is new (version 0) put if it does not exist,
        each changed one put if its stored version is the one read; the paid member likewise
        (version 0: must not exist), and checkout's `MEMBER` item set from it. ConcurrentUpdate if
        any condition failed (nothing written)."""
        ...


def _summary(
    state: PaidState, terms: tuple[StoredTerm, ...], now_ms: int, last: StoredTerm, handled_at_ms: int | None
) -> PaidMember | None:
    """The paid member after `terms` change at `now_ms`: the tier running now (or, if none runs
    now, the next to start), until = the end of every ACTIVE term's last segment. None if nothing
    was ever stored and nothing is active. `handled_at_ms`: when the change is written (the event's
    time is `now_ms`); an end already passed then is EXPIRED by this write (`_ran_out`)."""
    active = [t.term for t in terms if t.status is TermStatus.ACTIVE and t.term.length_ms > 0]
    before = state.member
    version = before.version if before is not None else 0
    until = paid.membership_end(active)
    if until is None or until <= now_ms:
        if before is None:
            return None
        ended = now_ms if until is None else min(until, now_ms)
        return replace(
            before, until_ms=ended, status=MemberStatus.EXPIRED, expired_for_ms=ended, version=version, schedule=()
        )
    if handled_at_ms is not None and until <= handled_at_ms:
        return _ran_out(state, active, until, last, version)
    shown = paid.running(active, now_ms) or min(active, key=lambda t: t.start_ms)
    return _member(state, shown, until, last, version, MemberStatus.ACTIVE, benefit_schedule(active))


def _member(
    state: PaidState,
    shown: Term,
    until: int,
    last: StoredTerm,
    version: int,
    status: MemberStatus,
    schedule: tuple[Benefit, ...],
) -> PaidMember:
    """The paid member showing `shown`'s tier, to `until`, credited to `last`'s store and guide."""
    return PaidMember(
        customer_id=state.customer_id,
        tier=shown.tier,
        rank=shown.rank,
        discount_bp=shown.discount_bp,
        member_price=shown.member_price,
        until_ms=until,
        store_id=last.term.store_id,
        guide_id=last.term.guide_id,
        status=status,
        expired_for_ms=None,
        version=version,
        schedule=schedule,
    )


def _ran_out(state: PaidState, active: list[Term], until: int, last: StoredTerm, version: int) -> PaidMember | None:
    """A change handled late (a retried or redriven event) whose membership has ended by the time
    it is written: EXPIRED at `until`, by this write. `until` may lie below the expiry job's
    checkpoint (it re-reads only a margin), so the job would never see it ACTIVE. `expired_for_ms`
    None (removed): the expiry was not announced, so the stream derives MembershipExpired from the
    ACTIVE -> EXPIRED change (`paid_end.announced`), with the tier that ran last."""
    if state.member is None:
        return None  # a first purchase wholly in the past: nothing to announce
    ended = max(active, key=lambda t: t.end_ms)
    return _member(state, ended, until, last, version, MemberStatus.EXPIRED, ())


def purchased(state: PaidState, bought: StoredTerm, now_ms: int, handled_at_ms: int | None = None) -> PaidState:
    """The state after `bought` (its term's days, rank; segments and kind decided here) is paid at
    `now_ms`: `paid.after_purchase` over the ACTIVE terms (a refunded term takes no more days).
    `handled_at_ms`: when it is written (the consumer's clock), if later than the payment."""
    active = [t for t in state.terms if t.status is TermStatus.ACTIVE]
    moved, placed = paid.after_purchase([t.term for t in active], bought.term, now_ms)
    by_order = {t.order_id: t for t in moved}
    terms = tuple(replace(t, term=by_order[t.order_id]) if t.order_id in by_order else t for t in state.terms)
    new = replace(bought, term=placed, version=0)
    terms = (*terms, new)
    return PaidState(state.customer_id, terms, _summary(state, terms, now_ms, new, handled_at_ms))


def refunded(state: PaidState, order_id: str, now_ms: int, handled_at_ms: int | None = None) -> PaidState:
    """The state after the membership bought by `order_id` is refunded at `now_ms`: its term ends
    now (`paid.shortened`: what it has not run is removed, later terms move forward), REFUNDED.
    `handled_at_ms`: when it is written, if later than the refund (a late event)."""
    target = state.term(order_id)
    if target is None or target.status is TermStatus.REFUNDED:
        return state
    active = [t for t in state.terms if t.status is TermStatus.ACTIVE]
    shortened = {t.order_id: t for t in paid.shortened([t.term for t in active], order_id, now_ms)}
    terms = tuple(replace(t, term=shortened[t.order_id]) if t.order_id in shortened else t for t in state.terms)
    terms = tuple(
        replace(t, status=TermStatus.REFUNDED, refunded_at_ms=now_ms) if t.order_id == order_id else t for t in terms
    )
    last = max(terms, key=lambda t: t.term.bought_at_ms)
    return PaidState(state.customer_id, terms, _summary(state, terms, now_ms, last, handled_at_ms))


def changed_terms(before: PaidState, after: PaidState) -> list[tuple[StoredTerm | None, StoredTerm]]:
    """(as read, as written) of every term `after` adds or changes."""
    read = {t.order_id: t for t in before.terms}
    return [(read.get(t.order_id), t) for t in after.terms if read.get(t.order_id) != t]


def segments_of(term: StoredTerm) -> Sequence[tuple[int, int]]:
    return term.term.segments
