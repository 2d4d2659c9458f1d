"""What the membership use cases need from outside (docs/membership.md).

`shared.data.stores.membership` implements them on DynamoDB; `tests/fakes/membership.py` in memory
with the same conditions, and `tests/contract/test_membership_ports.py` runs both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.kernel.errors import Conflict
from shared.kernel.events import DomainEvent
from shared.membership.model import (
    LedgerEntry,
    LotState,
    Member,
    MembershipRules,
    OrderPoints,
    OrderSpend,
    PointsBalance,
)
from shared.membership.tags import Activity, TagRange
from shared.messaging.ports import HeldClaim

Cursor = dict[str, Any] | None


class MembershipClaimLost(Conflict):
    """The consumer's claim on the event is not ours any more: nothing was written."""

    code = "CLAIM_LOST"


class PointsAlreadyRecorded(Conflict):
    """An entry or the announcement of this change exists: it was written before."""

    code = "ALREADY_RECORDED"


class RulesStore(Protocol):
    def current(self) -> MembershipRules:
        """The saved rules, or the defaults (version 0) before the first save."""
        ...

    def save(self, rules: MembershipRules) -> None:
        """Store version `rules.version`, only if the stored one is `rules.version - 1` (none for 1):
        ConcurrentUpdate otherwise (another admin saved meanwhile)."""
        ...


@dataclass(frozen=True)
class MemberChange:
    """One write, all or nothing. Each `*_after` replaces its `*_before` (version 0: none stored,
    the item must not exist), conditional on the stored version still being the one read (an item
    whose `*_after` is None is not written); each entry must not exist; `announce` is an outbox
    event written with them. The balance is written exactly when entries move it, or when what the
    write decided depends on it (an expiry that found nothing left)."""

    balance_before: PointsBalance | None = None
    balance_after: PointsBalance | None = None
    book_before: OrderPoints | None = None
    book_after: OrderPoints | None = None
    member_before: Member | None = None
    member_after: Member | None = None
    entries: Sequence[LedgerEntry] = field(default=())
    announce: DomainEvent | None = None
    activity_before: Activity | None = None
    activity_after: Activity | None = None
    spend_before: OrderSpend | None = None  # the points the order spent at checkout, as read
    spend_after: OrderSpend | None = None


@dataclass(frozen=True)
class MemberState:
    """What one write is computed from, read together (consistent)."""

    member: Member | None
    balance: PointsBalance | None
    book: OrderPoints | None
    activity: Activity | None = None
    spend: OrderSpend | None = None  # what the order spent at checkout (None: no points)


class MemberStore(Protocol):
    def member(self, customer_sub: str) -> Member | None: ...

    def enrol(self, member: Member) -> Member:
        """Store a new member unless one exists; returns the stored one (idempotent)."""
        ...

    def state(self, customer_sub: str, order_id: str | None) -> MemberState: ...

    def write(self, change: MemberChange, claim: HeldClaim | None = None) -> None:
        """Apply `change`; with `claim`, in the same transaction as the consumer's mark set DONE on
        the claim's token. Refusals: ConcurrentUpdate (an item changed since it was read),
        PointsAlreadyRecorded (an entry or the announcement exists), MembershipClaimLost."""
        ...

    def due(self, state: LotState, shard: int, until_ms: int, limit: int) -> list[OrderPoints]:
        """Lots FROZEN (by release time) or RELEASED with an expiry (by expiry time) of one index
        shard, due at or before `until_ms`, oldest first. No Scan: a sparse index per state and shard."""
        ...

    def ledger(self, customer_sub: str, limit: int, cursor: Cursor) -> tuple[list[LedgerEntry], Cursor]:
        """The member's entries, newest first."""
        ...

    def tagged(self, tag: TagRange, shard: int, limit: int, cursor: Cursor) -> tuple[list[Activity], Cursor]:
        """Members of one index shard whose activity is in `tag`'s range, in its ordering; at most
        `limit` positions read (fewer members when `min_orders` leaves some out). No Scan: a Query
        of the ordering's index partition for the shard."""
        ...


class PointsHolds(Protocol):
    """Spending points on an order (docs/membership.md, "Spending"). Each call is one transaction
    of the hold item (keyed by the order), the balance and the entry; the balance's conditions do
    the arithmetic (`available >= points`), so concurrent orders never spend a point twice."""

    def reserve(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        """available -> reserved. InsufficientPoints (409) when fewer are available; the same
        order asking again for the same points is a no-op, for other points PointsAlreadyHeld."""
        ...

    def commit(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        """The order is paid: its reserved points are spent. PointsNotHeld unless it holds them."""
        ...

    def release(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        """The unpaid order ended: its reserved points are available again (paying debt first)."""
        ...
