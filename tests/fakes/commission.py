"""In-memory commission ports (shared.commission.ports) with the DynamoDB store's conditions and
all-or-nothing writes; tests/contract/test_commission_ports.py runs one class against both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from shared.commission.ledger_model import Book, Entry, EntryStatus
from shared.commission.model import CommissionRules
from shared.commission.ports import AlreadyRecorded, ClaimLost, LedgerChange
from shared.kernel.errors import ConcurrentUpdate
from shared.kernel.events import DomainEvent
from shared.messaging.ports import HeldClaim
from tests.fakes.messaging import MemoryMarks


class MemoryRules:
    def __init__(self) -> None:
        self.versions: list[tuple[CommissionRules, int]] = []

    def latest(self) -> tuple[CommissionRules, int] | None:
        return self.versions[-1] if self.versions else None

    def save(self, rules: CommissionRules, effective_at_ms: int) -> None:
        expected = self.versions[-1][0].version + 1 if self.versions else 1
        if rules.version != expected:
            raise ConcurrentUpdate("the rules changed meanwhile")
        self.versions.append((rules, effective_at_ms))

    def in_force_at(self, at_ms: int) -> CommissionRules | None:
        found = [rules for rules, since in self.versions if since <= at_ms]
        return found[-1] if found else None


class MemoryCatalogue:
    def __init__(self, categories: dict[str, str | None] | None = None) -> None:
        self.known = categories or {}

    def categories(self, skus: Sequence[str]) -> dict[str, str | None]:
        return {sku: self.known.get(sku) for sku in skus}


class MemoryLedger:
    def __init__(self, marks: MemoryMarks | None = None) -> None:
        self.marks = marks or MemoryMarks()
        self.books: dict[str, Book] = {}
        self.stored: dict[tuple[str, str], Entry] = {}
        self.sums: dict[str, dict[EntryStatus, int]] = {}
        self.writes = 0
        self.announced: dict[str, DomainEvent] = {}  # the outbox: event id -> event

    def book(self, order_id: str) -> Book | None:
        return self.books.get(order_id)

    def entries(self, order_id: str) -> list[Entry]:
        return sorted((e for (o, _), e in self.stored.items() if o == order_id), key=lambda e: e.entry_id)

    def write(self, change: LedgerChange, claim: HeldClaim | None = None) -> None:
        self._check(change, claim)  # every condition holds: apply all
        if change.book_after is not None:
            self.books[change.book_after.order_id] = change.book_after
        for entry in change.new_entries:
            self.stored[(entry.order_id, entry.entry_id)] = entry
            self._add(entry.payee, entry.status, entry.amount_fen)
        for before, after in change.moved:
            self.stored[(after.order_id, after.entry_id)] = after
            self._add(before.payee, before.status, -before.amount_fen)
            self._add(after.payee, after.status, after.amount_fen)
        if change.announce is not None:
            self.announced[change.announce.event_id] = change.announce
        if claim is not None:
            self.marks.complete(claim.consumer, claim.event_id, claim.token, claim.now_ms)
        self.writes += 1

    def _check(self, change: LedgerChange, claim: HeldClaim | None) -> None:
        """The store's refusals, in its order of precedence: the claim, then what exists, then what changed."""
        if claim is not None:
            held = self.marks.marks.get((claim.consumer, claim.event_id))
            if held is None or held["state"] != "CLAIMED" or held["token"] != claim.token:
                raise ClaimLost("the claim is not ours", event_id=claim.event_id)
        stored_book = self.books.get(change.book_after.order_id) if change.book_after else None
        if change.book_after is not None and change.book_before is None and stored_book is not None:
            raise AlreadyRecorded("the book exists", order_id=change.book_after.order_id)
        if any((e.order_id, e.entry_id) in self.stored for e in change.new_entries):
            raise AlreadyRecorded("an entry exists")
        if change.announce is not None and change.announce.event_id in self.announced:
            raise AlreadyRecorded("the event exists", event_id=change.announce.event_id)
        if change.book_before is not None and (
            stored_book is None or stored_book.version != change.book_before.version
        ):
            raise ConcurrentUpdate("the book changed meanwhile")
        for before, _ in change.moved:
            held_entry = self.stored.get((before.order_id, before.entry_id))
            if held_entry is None or held_entry.status is not before.status:
                raise ConcurrentUpdate("an entry changed meanwhile", entry_id=before.entry_id)

    def _add(self, payee: str, status: EntryStatus, amount: int) -> None:
        totals = self.sums.setdefault(payee, {})
        totals[status] = totals.get(status, 0) + amount

    def due(self, status: EntryStatus, shard: int, until_ms: int, limit: int) -> list[Entry]:
        found = [
            e
            for e in self.stored.values()
            if e.status is status and e.shard == shard and e.due_at_ms is not None and e.due_at_ms <= until_ms
        ]
        return sorted(found, key=lambda e: (e.due_at_ms, e.order_id, e.entry_id))[:limit]

    def payee_entries(self, payee: str, limit: int, cursor: dict[str, Any] | None) -> tuple[list[Entry], dict | None]:
        found = sorted(
            (e for e in self.stored.values() if e.payee == payee),
            key=lambda e: (e.created_at_ms, e.order_id, e.entry_id),
            reverse=True,
        )
        start = int(cursor["offset"]) if cursor else 0
        page = found[start : start + limit]
        return page, ({"offset": start + limit} if start + limit < len(found) else None)

    def totals(self, payee: str) -> dict[EntryStatus, int]:
        return dict(self.sums.get(payee, {}))

    def settle(self, entry: Entry, run_id: str) -> Entry:
        """For tests: what a settlement run does to one entry."""
        after = replace(entry.moved(EntryStatus.SETTLED, run_id=run_id))
        self.write(LedgerChange(moved=[(entry, after)]))
        return after
