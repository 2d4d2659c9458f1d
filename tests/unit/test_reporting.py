"""The report books on in-memory ports (docs/commission.md, "Reports"): the consumer of OrderPaid,
RefundIssued and CommissionRecorded, the reconciliation up to a period end and the sales reports.
The commission ledger itself (on its fakes) announces what it booked, so the books close through
both consumers: paid - refunded = merchant net + commissions, per order, after partial refunds."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.reporting.models import period_end_ms, sales_range, wants_csv
from shared.commission.ledger import CommissionLedger
from shared.commission.rules import CommissionRulesAdmin
from shared.kernel.clock import FakeClock, iso
from shared.kernel.credited import Credited
from shared.kernel.errors import MalformedRequest
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.money import unit_share
from shared.messaging.consumers import RetryPolicy, Runtime, consume
from shared.reporting.bookkeeping import ReportBookkeeping
from shared.reporting.model import Cell, Figures, contributions
from shared.reporting.reports import Reports
from tests.events import load
from tests.fakes.commission import MemoryCatalogue, MemoryLedger, MemoryRules
from tests.fakes.messaging import MemoryMarks, MemoryQueue
from tests.fakes.reporting import MemoryReportBooks

S1 = Credited(dealer_id="D1", store_id="S1", guide_id="G1")
S2 = Credited(dealer_id="D1", store_id="S2", guide_id="G2")
DAY_MS = 86_400_000


def at(when: str) -> int:
    return int(datetime.fromisoformat(when).timestamp() * 1000)


def paid_event(order_id: str, when: str, credited: Credited = S1, lines=((2, 4_000, 500),), shipping=1_000):
    """OrderPaid as checkout writes it: lines of (qty, unit price, line discount)."""
    priced = [
        {"sku": f"SKU-{n}", "qty": qty, "payable_fen": qty * price - discount}
        for n, (qty, price, discount) in enumerate(lines)
    ]
    subtotal = sum(qty * price for qty, price, _ in lines)
    discount = sum(d for _, _, d in lines)
    payload = {
        "order_id": order_id,
        "customer_id": "c-1",
        "total_fen": subtotal - discount + shipping,
        "subtotal_fen": subtotal,
        "discount_fen": discount,
        "shipping_fen": shipping,
        "lines": priced,
        "credited": credited.to_dict(),
    }
    return DomainEvent(EventType.ORDER_PAID, order_id, payload, occurred_at=when)


def refund_event(order_id: str, refund_id: str, when: str, amount: int, sku: str = "SKU-0", qty: int = 1):
    payload = {
        "order_id": order_id,
        "refund_id": refund_id,
        "amount_fen": amount,
        "refund_lines": [{"sku": sku, "qty": qty, "amount_fen": amount}],
    }
    return DomainEvent(EventType.REFUND_ISSUED, order_id, payload, occurred_at=when)


def recorded_event(order_id: str, when: str, paid: int = 0, refunded: int = 0, commissions: int = 0):
    payload = {"order_id": order_id, "paid_fen": paid, "refunded_fen": refunded, "commissions_fen": commissions}
    return DomainEvent(EventType.COMMISSION_RECORDED, order_id, payload, occurred_at=when)


class Books:
    """The report consumer on fakes, fed through the consumer runtime (so a redelivery meets the mark)."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.marks = MemoryMarks()
        self.store = MemoryReportBooks(self.marks)
        self.consumer = ReportBookkeeping(self.store, lambda _: Credited())
        self.runtime = Runtime(self.marks, MemoryQueue(), RetryPolicy(base_s=0), self.clock.now_ms)
        self.reports = Reports(self.store)

    def hear(self, *events: DomainEvent, times: int = 1) -> None:
        for event in events:
            deliver(self.consumer, self.runtime, event, times)


def deliver(consumer, runtime: Runtime, event: DomainEvent, times: int) -> None:
    record = json.loads(json.dumps(load("sqs_batch")["Records"][0]))
    record.update(messageId="m", receiptHandle="r", body=json.dumps(event.to_message()))
    for _ in range(times):
        assert consume({"Records": [record]}, consumer, runtime) == {"batchItemFailures": []}


def story() -> list[DomainEvent]:
    """An order of 2 x 40 yuan (5 yuan off) with 10 yuan freight on 3 November, paid and booked by the
    ledger with 1,200 fen of commissions; one unit refunded (3,750) on the 5th and clawed back (600)."""
    return [
        paid_event("o-1", "2026-11-03T10:00:00.000Z"),
        recorded_event("o-1", "2026-11-03T10:00:01.000Z", paid=8_500, commissions=1_200),
        refund_event("o-1", "r-1", "2026-11-05T09:00:00.000Z", 3_750),
        recorded_event("o-1", "2026-11-05T09:00:01.000Z", refunded=3_750, commissions=-600),
    ]


def nonzero(store: MemoryReportBooks) -> dict[Cell, Figures]:
    return {cell: figures for cell, figures in store.stored_cells.items() if not figures.is_zero}


def row(rows: list[dict], key: str, value: str | None) -> dict:
    [found] = [r for r in rows if r[key] == value]
    return found


# -- reconciliation -----------------------------------------------------------------------------------
def test_a_paid_and_partly_refunded_order_reconciles_with_its_ledger():
    # Given an order of 2 x 40 yuan (5 yuan off) with 10 yuan freight, paid, booked by the ledger
    # with 1,200 fen of commissions; one unit refunded (3,750) and clawed back (600)
    books = Books()
    books.hear(*story())
    # When finance reconciles up to the end of November
    report = books.reports.reconciliation(at("2026-12-01T00:00:00+00:00"))
    # Then the store and the dealer show the order's books, closing to the fen, with no difference
    expected = {
        "orders": 1,
        "paid_fen": 8_500,
        "refunded_fen": 3_750,
        "merchant_net_fen": 8_500 - 3_750 - 600,
        "commissions_fen": 600,
        "difference_fen": 0,
        "difference_orders": 0,
    }
    assert row(report["stores"], "store_id", "S1") == {"store_id": "S1", **expected}
    assert row(report["dealers"], "dealer_id", "D1") == {"dealer_id": "D1", **expected}
    assert report["totals"] == expected and report["differences"] == []


def test_every_event_delivered_twice_writes_once():
    # Given the same four events, each delivered twice
    books = Books()
    events = story()
    books.hear(*events, times=2)
    once = Books()
    once.hear(*events)
    # Then four writes, and the cells are those of one delivery each
    assert books.store.writes == 4
    assert nonzero(books.store) == nonzero(once.store)


def test_a_redelivery_past_its_mark_changes_nothing():
    # Given an OrderPaid consumed, and its mark gone (past its TTL)
    books = Books()
    event = paid_event("o-1", "2026-11-03T10:00:00.000Z")
    books.hear(event)
    books.marks.marks.clear()
    # When it comes again
    books.hear(event)
    # Then the book knows it: one write, one order
    assert books.store.writes == 1
    assert books.reports.sales("store", "2026-11-01", "2026-11-30")["totals"]["orders"] == 1


def test_a_refund_the_ledger_never_clawed_back_is_a_difference():
    # Given a paid order booked by the ledger, then a refund the ledger did not hear
    books = Books()
    books.hear(*story()[:3])
    report = books.reports.reconciliation(at("2026-12-01T00:00:00+00:00"))
    # Then the order is listed with its figures, and the store counts one differing order
    [listed] = report["differences"]
    assert listed["order_id"] == "o-1" and listed["store_id"] == "S1"
    assert (listed["paid_fen"], listed["refunded_fen"], listed["commissions_fen"]) == (8_500, 3_750, 1_200)
    assert listed["merchant_net_fen"] == 8_500 - 1_200
    assert listed["difference_fen"] == (8_500 - 3_750) - (listed["merchant_net_fen"] + 1_200) == -3_750
    store = row(report["stores"], "store_id", "S1")
    assert store["difference_orders"] == 1 and store["difference_fen"] == -3_750


def test_ledger_entries_for_an_order_never_paid_are_a_difference_with_no_store():
    # Given a CommissionRecorded for an order whose payment the reports never heard of
    books = Books()
    books.hear(recorded_event("o-9", "2026-11-04T08:00:00.000Z", paid=5_000, commissions=800))
    report = books.reports.reconciliation(at("2026-12-01T00:00:00+00:00"))
    # Then it is a difference of -5,000, credited to no store (no OrderPaid said which)
    [listed] = report["differences"]
    assert listed["order_id"] == "o-9" and not listed["paid"] and listed["difference_fen"] == -5_000
    assert row(report["stores"], "store_id", None)["difference_orders"] == 1
    assert books.reports.sales("store", "2026-11-01", "2026-11-30")["groups"] == []  # nothing was sold


def test_days_are_the_merchants_days_not_utc_days():
    # Given a merchant in China (UTC+8) and an order paid at 17:00 UTC on 30 November: 01:00 on 1 December there
    books = Books()
    books.consumer = ReportBookkeeping(books.store, lambda _: Credited(store_id="S1"), utc_offset_min=480)
    books.reports = Reports(books.store, utc_offset_min=480)
    books.hear(paid_event("o-1", "2026-11-30T17:00:00.000Z"))
    # Then it is December's sale, on the 1st, and not November's
    assert books.reports.sales("day", "2026-12-01", "2026-12-01")["totals"]["orders"] == 1
    assert books.reports.sales("day", "2026-11-01", "2026-11-30")["totals"]["orders"] == 0
    # And the reconciliation up to midnight in China closes without it, up to 01:30 there with it
    assert books.reports.reconciliation(at("2026-12-01T00:00:00+08:00"))["totals"]["orders"] == 0
    assert books.reports.reconciliation(at("2026-12-01T01:30:00+08:00"))["totals"]["orders"] == 1


def test_the_differences_are_paged_oldest_first_and_every_one_is_listed_once():
    # Given seven orders the ledger recorded but the reports never saw paid, two in the same millisecond
    books = Books()
    books.reports = Reports(books.store, differences_listed=3)
    whens = [f"2026-11-0{d}T08:00:00.000Z" for d in (5, 1, 3, 3, 2, 7, 6)]
    books.hear(*(recorded_event(f"o-{i}", when, paid=1_000 + i) for i, when in enumerate(whens)))
    # When finance pages through the differences, three at a time
    pages, after = [], None
    while True:
        report = books.reports.reconciliation(at("2026-12-01T00:00:00+00:00"), after)
        pages.append([d["order_id"] for d in report["differences"]])
        after = report["differences_next"]
        if after is None:
            break
    # Then every difference comes once, by the day it was booked (order id breaking the tie)
    assert pages == [["o-1", "o-4", "o-2"], ["o-3", "o-0", "o-6"], ["o-5"]]
    assert report["totals"]["difference_orders"] == 7


def test_events_in_any_order_give_the_same_cells():
    # Given the refund and the ledger's announcements heard before the OrderPaid (queues do not keep order)
    events = story()
    in_order, reversed_order = Books(), Books()
    in_order.hear(*events)
    reversed_order.hear(*reversed(events))
    # Then the cells are the same once the OrderPaid came (those first credited to no store back to zero)
    assert nonzero(in_order.store) == nonzero(reversed_order.store)
    assert reversed_order.reports.reconciliation(at("2026-12-01T00:00:00+00:00")) == in_order.reports.reconciliation(
        at("2026-12-01T00:00:00+00:00")
    )


def test_the_reconciliation_takes_whole_orders_up_to_the_period_end():
    # Given orders in October, early in November, on the period end's day before and after it
    books = Books()
    for order_id, when in (
        ("o-oct", "2026-10-20T10:00:00.000Z"),
        ("o-nov", "2026-11-02T10:00:00.000Z"),
        ("o-day-before", "2026-11-10T08:00:00.000Z"),
        ("o-day-after", "2026-11-10T14:00:00.000Z"),
        ("o-dec", "2026-12-01T00:00:00.000Z"),
    ):
        books.hear(paid_event(order_id, when), recorded_event(order_id, when, paid=8_500, commissions=1_200))
    # When finance reconciles up to 2026-11-10 12:00 (Beijing 20:00: the offset is honoured)
    report = books.reports.reconciliation(at("2026-11-10T20:00:00+08:00"))
    # Then the first three orders count, the others do not
    assert report["period_end"] == "2026-11-10T12:00:00.000Z"
    assert report["totals"]["orders"] == 3 and report["totals"]["paid_fen"] == 3 * 8_500
    assert report["totals"]["difference_orders"] == 0


def test_stores_of_one_dealer_sum_to_the_dealer():
    books = Books()
    books.hear(paid_event("o-1", "2026-11-03T10:00:00.000Z"), paid_event("o-2", "2026-11-03T11:00:00.000Z", S2))
    report = books.reports.reconciliation(at("2026-11-30T00:00:00+00:00"))
    # Nothing recorded by the ledger yet: both are differences (in flight), each in its store
    assert [r["store_id"] for r in report["stores"]] == ["S1", "S2"]
    assert row(report["dealers"], "dealer_id", "D1")["paid_fen"] == 2 * 8_500
    assert row(report["dealers"], "dealer_id", "D1")["difference_orders"] == 2


# -- sales --------------------------------------------------------------------------------------------
def test_sales_per_store_guide_dealer_and_day():
    # Given two orders on 3 November (S1, S2) and one on the 4th (S1), and a refund on the 6th
    books = Books()
    books.hear(
        paid_event("o-1", "2026-11-03T10:00:00.000Z", S1, lines=((2, 4_000, 500),)),
        paid_event("o-2", "2026-11-03T23:59:59.999Z", S2, lines=((1, 9_900, 0), (3, 100, 30))),
        paid_event("o-3", "2026-11-04T00:00:00.000Z", S1, lines=((1, 2_000, 0),)),
        refund_event("o-1", "r-1", "2026-11-06T09:00:00.000Z", 3_750),
    )
    by_store = books.reports.sales("store", "2026-11-01", "2026-11-30")
    s1 = row(by_store["groups"], "group", "S1")
    # Then S1 sold 3 units in two orders, 10,000 gross, 500 off, 3,750 refunded
    assert s1 == {
        "group": "S1",
        "orders": 2,
        "units": 3,
        "gross_fen": 10_000,
        "discounts_fen": 500,
        "refunds_fen": 3_750,
        "net_fen": 10_000 - 500 - 3_750,
        "average_order_value_fen": (10_000 - 500) // 2,
    }
    assert row(by_store["groups"], "group", "S2")["gross_fen"] == 10_200
    assert by_store["totals"]["orders"] == 3 and by_store["totals"]["gross_fen"] == 20_200
    assert [g["group"] for g in books.reports.sales("guide", "2026-11-01", "2026-11-30")["groups"]] == ["G1", "G2"]
    assert books.reports.sales("dealer", "2026-11-01", "2026-11-30")["groups"][0]["orders"] == 3
    # By day: orders on the day they were paid, the refund on the day it was issued
    by_day = books.reports.sales("day", "2026-11-03", "2026-11-06")["groups"]
    assert [(g["group"], g["orders"], g["refunds_fen"]) for g in by_day] == [
        ("2026-11-03", 2, 0),
        ("2026-11-04", 1, 0),
        ("2026-11-06", 0, 3_750),
    ]
    # A range that ends before the refund leaves it out
    assert books.reports.sales("store", "2026-11-03", "2026-11-05")["totals"]["refunds_fen"] == 0


def test_the_sales_csv_has_a_bom_a_row_per_group_and_a_total():
    books = Books()
    books.hear(paid_event("o-1", "2026-11-03T10:00:00.000Z", Credited(store_id="静安店")))
    lines = list(books.reports.sales_csv("store", "2026-11-01", "2026-11-30"))
    assert lines[0].startswith("\ufeffgroup_by,group,orders,units,gross_fen") and lines[0].endswith("\r\n")
    assert lines[1] == "store,静安店,1,2,8000,500,0,7500,75.00,7500\r\n"
    assert lines[2] == "store,total,1,2,8000,500,0,7500,75.00,7500\r\n"


# -- the parameters -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("first", "last"),
    [
        (None, "2026-11-30"),
        ("2026-11-01", None),
        ("2026-11-1", "2026-11-30"),
        ("2026-02-30", "2026-03-01"),
        ("2026-12-01", "2026-11-30"),  # from after to
        ("2025-01-01", "2026-01-02"),  # 367 days
        ("2026-11-01T00:00:00Z", "2026-11-30"),
    ],
)
def test_a_bad_range_is_refused(first, last):
    with pytest.raises(MalformedRequest):
        sales_range(first, last)


def test_a_range_of_366_days_is_taken():
    assert sales_range("2024-01-01", "2024-12-31") == ("2024-01-01", "2024-12-31")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "2026-11-30",
        "2026-11-30T00:00:00",
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00+01:00",
        "soon",
        "0.5",
        "2026-11-30T16:00:00.1234567Z",
    ],
)
def test_a_bad_period_end_is_refused(value):
    with pytest.raises(MalformedRequest):
        period_end_ms(value)


def test_a_period_end_is_read_with_its_offset():
    assert period_end_ms("2026-12-01T08:00:00+08:00") == at("2026-12-01T00:00:00+00:00")


@pytest.mark.parametrize(
    ("accept", "csv"),
    [
        (None, False),
        ("text/csv", True),
        ("text/csv; charset=utf-8", True),
        ("application/json, text/csv", False),
        ("text/csv, application/json", True),
        ("*/*", False),
    ],
)
def test_csv_is_what_accept_asks_for(accept, csv):
    assert wants_csv(accept) is csv


# -- the properties -----------------------------------------------------------------------------------
days = st.integers(0, 90)  # days after 2026-10-01
orders = st.lists(
    st.tuples(
        days,
        st.sampled_from([S1, S2, Credited()]),
        st.lists(st.tuples(st.integers(1, 5), st.integers(0, 50_000), st.integers(0, 100)), min_size=1, max_size=3),
        st.lists(
            st.tuples(st.integers(0, 2), st.integers(1, 3), st.integers(0, 20)), max_size=4
        ),  # (line, units, +days)
    ),
    min_size=1,
    max_size=6,
)
START_MS = at("2026-10-01T00:00:00+00:00")


def order_events(n: int, day: int, credited: Credited, lines, refunds) -> tuple[DomainEvent, list[DomainEvent]]:
    when = START_MS + day * DAY_MS + n * 1_000
    priced = [(qty, price, min(discount, qty * price)) for qty, price, discount in lines]
    paid = paid_event(f"o-{n}", iso(when), credited, lines=priced)
    later, refunded_units = [], [0] * len(priced)
    for m, (index, units, after_days) in enumerate(refunds):
        index %= len(priced)
        qty, price, discount = priced[index]
        units = min(units, qty - refunded_units[index])
        if units == 0:
            continue
        payable = qty * price - discount
        amount = unit_share(payable, qty, refunded_units[index] + units) - unit_share(
            payable, qty, refunded_units[index]
        )
        refunded_units[index] += units
        stamp = iso(when + (after_days * DAY_MS) + m + 1)
        later.append(refund_event(f"o-{n}", f"r-{n}-{m}", stamp, amount, sku=f"SKU-{index}", qty=units))
    return paid, later


@settings(max_examples=100, deadline=None)
@given(orders, st.randoms(use_true_random=False), st.integers(1, 2))
def test_the_cells_are_the_sum_of_the_books_and_the_books_close(placed, rng, times):
    # Given random orders, each paid and refunded in parts, through the commission ledger (which
    # announces what it booked) and the report consumer, in a shuffled order, some twice
    clock = FakeClock(START_MS)
    marks = MemoryMarks()
    ledger_store = MemoryLedger(marks)
    rules = MemoryRules()
    CommissionRulesAdmin(rules, 3_000, clock).put({"rates_bp": {"dealer": 500, "store": 800, "guide": 300}})
    ledger = CommissionLedger(ledger_store, rules, MemoryCatalogue(), lambda _: Credited(), 0)
    books = Books()
    runtime = Runtime(marks, MemoryQueue(), RetryPolicy(base_s=0), clock.now_ms)
    payments: list[DomainEvent] = []
    for n, (day, credited, lines, refunds) in enumerate(placed):
        paid, later = order_events(n, day, credited, lines, refunds)
        for event in (paid, *later):
            deliver(ledger, runtime, event, 1)  # in order: the ledger retries a refund heard before its book
            payments.append(event)
    heard = payments + list(ledger_store.announced.values())
    rng.shuffle(heard)
    books.hear(*heard, times=times)

    # Then every cell is the sum of the books' contributions to it, each month the sum of its days
    expected: dict[Cell, Figures] = {}
    for book in books.store.books.values():
        for cell, figures in contributions(book).items():
            expected[cell] = expected.get(cell, Figures()).plus(figures)
    stored = nonzero(books.store)
    assert stored == {cell: figures for cell, figures in expected.items() if not figures.is_zero}
    for cell, figures in stored.items():
        if len(cell.period) == 7:
            days_of = [
                f
                for c, f in stored.items()
                if len(c.period) == 10
                and c.period[:7] == cell.period
                and (c.dimension, c.group, c.shard) == (cell.dimension, cell.group, cell.shard)
            ]
            total = Figures()
            for f in days_of:
                total = total.plus(f)
            assert total == figures
    # And the books close per order: paid - refunded = merchant net + commissions, no difference
    report = books.reports.reconciliation(START_MS + 200 * DAY_MS)
    assert report["differences"] == [] and report["totals"]["difference_fen"] == 0
    totals = report["totals"]
    assert totals["paid_fen"] - totals["refunded_fen"] == totals["merchant_net_fen"] + totals["commissions_fen"]
    assert totals["orders"] == len(placed)
    # And the sales over the whole range sum the orders' gross
    sales = books.reports.sales("day", "2026-10-01", "2027-01-31")["totals"]
    assert sales["gross_fen"] == sum(qty * price for _, _, lines, _ in placed for qty, price, _ in lines)
