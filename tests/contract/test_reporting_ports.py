"""The report ports (shared.reporting.ports): one class of tests against the in-memory fake
(tests/fakes/reporting.py) and against the DynamoDB store on a moto table from infra/template.yaml."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.kernel.errors import ConcurrentUpdate
from shared.messaging.ports import HeldClaim
from shared.reporting.model import AGGREGATE_SHARDS, Cell, Figures, OrderBook, Refund, cell_changes, day_of
from shared.reporting.ports import BookChange, ReportClaimLost
from tests.fakes.messaging import MemoryMarks
from tests.fakes.reporting import MemoryReportBooks

NOV_3 = 1_793_700_000_000  # 2026-11-03T10:00:00Z
DAY_MS = 86_400_000
LEASE = 60_000


@pytest.fixture(params=["memory", "dynamodb"])
def ports(request: pytest.FixtureRequest):
    if request.param == "memory":
        marks = MemoryMarks()
        return MemoryReportBooks(marks), marks
    request.getfixturevalue("table")
    from shared.data.stores.consumer_marks import DynamoMarks
    from shared.data.stores.reporting import DynamoReportBooks

    return DynamoReportBooks(), DynamoMarks()


def claim_of(marks, event_id: str, token: str = "t-1") -> HeldClaim:
    marks.claim("reporting", event_id, token, NOV_3, LEASE)
    return HeldClaim("reporting", event_id, token, NOV_3 + 1)


def paid_book(order_id: str, at_ms: int = NOV_3, store: str = "S1", **kw) -> OrderBook:
    return OrderBook(
        order_id,
        seen_at_ms=at_ms,
        paid_at_ms=at_ms,
        store_id=store,
        dealer_id="D1",
        units=2,
        gross_fen=8_000,
        discounts_fen=500,
        paid_fen=8_500,
        applied=(f"e-{order_id}",),
        **kw,
    )


def write(books, before: OrderBook, after: OrderBook, claim: HeldClaim | None = None) -> None:
    books.write(BookChange(before, after, cell_changes(before, after), day_of(after.booked_at_ms)), claim)


class TestReportPorts:
    def test_a_claimed_write_stores_the_book_moves_its_cells_and_marks_the_event_done(self, ports):
        books, marks = ports
        claim = claim_of(marks, "e-o-1")
        refund = Refund("r-1", NOV_3 + 2 * DAY_MS, 3_750)
        after = paid_book("o-1", refunds=(refund,), ledger_paid_fen=8_500, commissions_fen=1_200)
        write(books, OrderBook("o-1"), after, claim)
        stored = books.book("o-1")
        assert stored == replace(after, version=1)
        day = dict(books.cells("store", "2026-11-03", "2026-11-03"))
        [(cell, figures)] = day.items()
        assert cell == Cell("store", "S1", "2026-11-03", after.shard)
        assert (figures.orders, figures.paid_fen, figures.refunded_fen, figures.refunds_fen) == (1, 8_500, 3_750, 0)
        [(_, refund_day)] = books.cells("store", "2026-11-05", "2026-11-05")
        assert refund_day == Figures(refunds_fen=3_750)
        [(_, month)] = books.cells("dealer", "2026-11", "2026-11")
        assert month.refunds_fen == 3_750 and month.orders == 1
        assert marks.claim("reporting", "e-o-1", "t-2", NOV_3 + 2, LEASE).value == "done"

    def test_a_write_on_a_claim_that_is_not_ours_writes_nothing(self, ports):
        books, marks = ports
        claim_of(marks, "e-o-1", token="theirs")
        with pytest.raises(ReportClaimLost):
            write(books, OrderBook("o-1"), paid_book("o-1"), HeldClaim("reporting", "e-o-1", "mine", NOV_3 + 1))
        assert books.book("o-1") is None and books.cells("store", "2026-11-01", "2026-11-30") == []

    def test_the_book_is_replaced_only_over_the_version_read(self, ports):
        books, _ = ports
        first = paid_book("o-1")
        write(books, OrderBook("o-1"), first)
        with pytest.raises(ConcurrentUpdate):
            write(books, OrderBook("o-1"), first)  # as if none were stored: another writer was first
        stored = books.book("o-1")
        assert stored is not None
        later = replace(stored, ledger_paid_fen=8_500, commissions_fen=1_200, applied=(*stored.applied, "e-2"))
        write(books, stored, later)
        with pytest.raises(ConcurrentUpdate):
            write(books, stored, replace(later, commissions_fen=1))  # over the version before
        [(_, day)] = books.cells("store", "2026-11-03", "2026-11-03")
        assert (day.orders, day.commissions_fen, day.difference_orders) == (1, 1_200, 0)

    def test_cells_of_every_shard_in_a_range_of_days_or_months(self, ports):
        books, _ = ports
        orders = [f"o-{n}" for n in range(12)]
        assert len({OrderBook(o).shard for o in orders}) == AGGREGATE_SHARDS  # they span the shards
        for n, order_id in enumerate(orders):
            write(books, OrderBook(order_id), paid_book(order_id, NOV_3 + (n % 3) * DAY_MS))
        found = books.cells("store", "2026-11-04", "2026-11-05")
        assert sorted({c.period for c, _ in found}) == ["2026-11-04", "2026-11-05"]
        assert sum(f.orders for _, f in found) == 8
        assert sum(f.orders for _, f in books.cells("store", "2026-11", "2026-11")) == 12
        assert books.cells("store", "2026-10", "2026-10") == [] and books.cells("guide", "2026-11", "2026-11") != []

    def test_a_days_books_up_to_a_time(self, ports):
        books, _ = ports
        for order_id, at_ms in (("o-early", NOV_3), ("o-late", NOV_3 + 3_600_000), ("o-next", NOV_3 + DAY_MS)):
            write(books, OrderBook(order_id), paid_book(order_id, at_ms))
        found = books.books_of_day("2026-11-03", NOV_3 + 60_000)
        assert [b.order_id for b in found] == ["o-early"]
        assert {b.order_id for b in books.books_of_day("2026-11-03", NOV_3 + DAY_MS)} == {"o-early", "o-late"}

    def test_only_books_whose_sides_disagree_are_differences_and_they_leave_when_they_agree(self, ports):
        books, _ = ports
        write(books, OrderBook("o-1"), paid_book("o-1"))  # the ledger has not spoken yet: a difference
        write(books, OrderBook("o-2"), paid_book("o-2", NOV_3 + 1, ledger_paid_fen=8_500))
        assert [b.order_id for b in books.differences(NOV_3 + DAY_MS, 10)] == ["o-1"]
        assert books.differences(NOV_3 - 1, 10) == []  # booked after the period end
        stored = books.book("o-1")
        assert stored is not None
        write(books, stored, replace(stored, ledger_paid_fen=8_500, applied=(*stored.applied, "e-3")))
        assert books.differences(NOV_3 + DAY_MS, 10) == []
