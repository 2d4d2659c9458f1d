"""What the report use cases need from outside (docs/commission.md, "Reports").

`shared.data.stores.reporting` implements them on DynamoDB; `tests/fakes/reporting.py` in memory
with the same conditions, and `tests/contract/test_reporting_ports.py` runs both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from shared.kernel.errors import Conflict
from shared.messaging.ports import HeldClaim
from shared.reporting.model import Cell, Figures, OrderBook


class ReportClaimLost(Conflict):
    """The consumer's claim on the event is not ours any more: nothing was written."""

    code = "CLAIM_LOST"


@dataclass(frozen=True)
class BookChange:
    """One write, all or nothing: the book `before` (version 0: none stored) becomes `after`, and
    each cell moves by its figures. `booked_day`: the day `after` is booked on in the merchant's
    calendar (`books_of_day` finds it under that day)."""

    before: OrderBook
    after: OrderBook
    cells: Mapping[Cell, Figures]
    booked_day: str


class ReportBooks(Protocol):
    def book(self, order_id: str) -> OrderBook | None:
        """The order's book (a consistent read), None before its first event."""
        ...

    def write(self, change: BookChange, claim: HeldClaim | None = None) -> None:
        """Apply `change`, conditional on the book still being `before` (ConcurrentUpdate otherwise);
        with `claim`, in the same transaction as the consumer's mark set DONE on the claim's token
        (ReportClaimLost if it is not ours)."""
        ...


class ReportReads(Protocol):
    def cells(self, dimension: str, first: str, last: str) -> list[tuple[Cell, Figures]]:
        """A dimension's cells of every shard whose period lies in [first, last]: both days
        ("yyyy-mm-dd") or both months ("yyyy-mm"). No Scan: a range of each shard's partition."""
        ...

    def books_of_day(self, day: str, until_ms: int) -> list[OrderBook]:
        """The books whose order's day is `day`, booked at or before `until_ms`."""
        ...

    def differences(self, until_ms: int, limit: int, after: tuple[int, str] | None = None) -> list[OrderBook]:
        """Books whose sides disagree (difference_fen != 0), booked at or before `until_ms`,
        oldest first (booked at, then order id), after the book keyed `after` if given, at most
        `limit`. No Scan: a sparse index holds exactly those."""
        ...
