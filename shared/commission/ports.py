"""What the commission use cases need from outside (docs/commission.md).

`shared.data.stores.commission` implements them on DynamoDB; `tests/fakes/commission.py` in memory
with the same conditions, and `tests/contract/test_commission_ports.py` runs both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.commission.ledger_model import Book, Entry, EntryStatus
from shared.commission.model import CommissionRules
from shared.kernel.errors import Conflict
from shared.kernel.events import DomainEvent
from shared.messaging.ports import HeldClaim

Cursor = dict[str, Any] | None


class ClaimLost(Conflict):
    """The consumer's claim on the event is not ours any more (its lease ran out and another worker
    took it, or it is DONE): nothing was written; that worker's write counts."""

    code = "CLAIM_LOST"


class AlreadyRecorded(Conflict):
    """An entry of this change exists: the change was written before (a redelivery past its mark)."""

    code = "ALREADY_RECORDED"


class RulesStore(Protocol):
    def latest(self) -> tuple[CommissionRules, int] | None:
        """The newest version and when it took effect (epoch ms), or None before the first."""
        ...

    def save(self, rules: CommissionRules, effective_at_ms: int) -> None:
        """Add version `rules.version`, only if the latest is `rules.version - 1` (none for 1):
        ConcurrentUpdate otherwise (another admin saved meanwhile)."""
        ...

    def in_force_at(self, at_ms: int) -> CommissionRules | None:
        """The version that was in force at `at_ms`: the newest that took effect at or before it."""
        ...


@dataclass(frozen=True)
class LedgerChange:
    """One write of the ledger, applied all or nothing: the order's book (`book_after` replacing
    `book_before`, which must still be stored as read; None before: a new book), new entries (each
    must not exist) and entries moving state (each must still be in the state read). The payees'
    running totals move with them, and `announce` (an outbox event) is written with them."""

    book_before: Book | None = None
    book_after: Book | None = None
    new_entries: Sequence[Entry] = field(default=())
    moved: Sequence[tuple[Entry, Entry]] = field(default=())  # (as read, after)
    # What the write booked, announced in the same transaction (the reports' ledger side).
    announce: DomainEvent | None = None


class Ledger(Protocol):
    def book(self, order_id: str) -> Book | None: ...

    def entries(self, order_id: str) -> list[Entry]:
        """Every entry of the order (a consistent read)."""
        ...

    def write(self, change: LedgerChange, claim: HeldClaim | None = None) -> None:
        """Apply `change`; with `claim`, in the same transaction as the consumer's mark set DONE
        on the claim's token. Refusals: ConcurrentUpdate (the book or a moved entry changed),
        AlreadyRecorded (a new entry exists), ClaimLost (the claim is not ours)."""
        ...

    def due(self, status: EntryStatus, shard: int, until_ms: int, limit: int) -> list[Entry]:
        """Entries in `status` (FROZEN or SETTLEABLE) of one index shard, due at or before
        `until_ms`, oldest due first. No Scan: the index is keyed by status, shard and due time."""
        ...

    def payee_entries(self, payee: str, limit: int, cursor: Cursor) -> tuple[list[Entry], Cursor]:
        """A payee's entries, newest first."""
        ...

    def totals(self, payee: str) -> dict[EntryStatus, int]:
        """A payee's running totals per state (fen; SETTLEABLE and SETTLED may be negative)."""
        ...


class Catalogue(Protocol):
    def categories(self, skus: Sequence[str]) -> dict[str, str | None]:
        """Each SKU's category (None: none, or the product is gone)."""
        ...
