"""In-memory report books and cells (shared.reporting.ports) with the DynamoDB store's conditions and
all-or-nothing writes; tests/contract/test_reporting_ports.py runs one class against both."""

from __future__ import annotations

from dataclasses import replace

from shared.kernel.errors import ConcurrentUpdate
from shared.messaging.ports import HeldClaim
from shared.reporting.model import Cell, Figures, OrderBook
from shared.reporting.ports import BookChange, ReportClaimLost
from tests.fakes.messaging import MemoryMarks


class MemoryReportBooks:
    def __init__(self, marks: MemoryMarks | None = None) -> None:
        self.marks = marks or MemoryMarks()
        self.books: dict[str, OrderBook] = {}
        self.stored_cells: dict[Cell, Figures] = {}
        self.booked_days: dict[str, str] = {}  # order id -> the day its book is under (BookChange.booked_day)
        self.writes = 0

    def book(self, order_id: str) -> OrderBook | None:
        return self.books.get(order_id)

    def write(self, change: BookChange, claim: HeldClaim | None = None) -> None:
        if claim is not None:
            held = self.marks.marks.get((claim.consumer, claim.event_id))
            if held is None or held["state"] != "CLAIMED" or held["token"] != claim.token:
                raise ReportClaimLost("the claim is not ours", event_id=claim.event_id)
        stored = self.books.get(change.after.order_id)
        if (stored.version if stored else 0) != change.before.version:
            raise ConcurrentUpdate("the report book changed meanwhile", order_id=change.after.order_id)
        self.books[change.after.order_id] = replace(change.after, version=change.before.version + 1)
        self.booked_days[change.after.order_id] = change.booked_day
        for cell, delta in change.cells.items():
            self.stored_cells[cell] = self.stored_cells.get(cell, Figures()).plus(delta)
        if claim is not None:
            self.marks.complete(claim.consumer, claim.event_id, claim.token, claim.now_ms)
        self.writes += 1

    def cells(self, dimension: str, first: str, last: str) -> list[tuple[Cell, Figures]]:
        return [
            (cell, figures)
            for cell, figures in sorted(self.stored_cells.items())
            if cell.dimension == dimension and len(cell.period) == len(first) and first <= cell.period <= last
        ]

    def books_of_day(self, day: str, until_ms: int) -> list[OrderBook]:
        return sorted(
            (b for b in self.books.values() if self.booked_days[b.order_id] == day and b.booked_at_ms <= until_ms),
            key=lambda b: (b.booked_at_ms, b.order_id),
        )

    def differences(self, until_ms: int, limit: int, after: tuple[int, str] | None = None) -> list[OrderBook]:
        found = [
            b
            for b in self.books.values()
            if b.difference_fen != 0
            and b.booked_at_ms <= until_ms
            and (after is None or (b.booked_at_ms, b.order_id) > after)
        ]
        return sorted(found, key=lambda b: (b.booked_at_ms, b.order_id))[:limit]
