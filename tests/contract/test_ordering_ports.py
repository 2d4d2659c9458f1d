"""The ordering ports (shared.ordering.ports: OrderReads and the OrderingUnitOfWork): one class of
tests run against the in-memory fakes the unit tests use (tests/fakes/ordering.py) and against
DynamoOrders / DynamoOrderingUnitOfWork on a moto table from infra/template.yaml, so the fakes
cannot drift from the stores: the same conditions, all or nothing, the same domain errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from shared.catalog.model import Product
from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate, IdempotencyKeyReused, InvalidTransition, OutOfStock
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.model import Action, Order, Status, new_order_id
from shared.ordering.ports import (
    OrderingUnitOfWorkFactory,
    OrderReads,
    PaymentAlreadyRecorded,
    PaymentRecord,
)
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from tests.fakes.ordering import MemoryOrderReads, MemoryUnitsOfWork, OrderingTables

NOW = 1_795_392_000_000
PRODUCTS = {
    "TEA-1": Product(sku="TEA-1", name="龙井", price_fen=10000),
    "CUP-1": Product(sku="CUP-1", name="杯子", price_fen=3333),
}


@dataclass
class Ordering:
    """One backend of the ports, and what a test needs to set up and look at its table."""

    units: OrderingUnitOfWorkFactory
    reads: OrderReads
    put_stock: Callable[[str, str, int], None]
    stock_of: Callable[[str, str], tuple[int, int, int]]
    events_of: Callable[[str], list[str]]


@pytest.fixture(params=["memory", "dynamodb"])
def ordering(request: pytest.FixtureRequest) -> Ordering:
    if request.param == "memory":
        tables = OrderingTables()
        return Ordering(
            MemoryUnitsOfWork(tables), MemoryOrderReads(tables), tables.put_stock, tables.stock_of, tables.events_of
        )
    request.getfixturevalue("table")  # a fresh moto table, bound as the app's
    from shared.data.items import StockItem
    from shared.data.stores.ordering_uow import unit_of_work
    from shared.data.stores.orders import DynamoOrders
    from tests.functional.orders_support import events_of, stock_of

    def put_stock(sku: str, location: str, on_hand: int) -> None:
        pk, sk = StockItem.key(sku, location)
        StockItem(pk, sk, sku=sku, location=location, on_hand=on_hand, reserved=0, available=on_hand).save()

    return Ordering(unit_of_work, DynamoOrders(), put_stock, stock_of, events_of)


def new_order(lines: dict[str, int], customer: str = "alice", at: int = NOW, window_s: int = 60) -> Order:
    quote = price_cart(
        [CartLine(sku, qty) for sku, qty in lines.items()],
        PRODUCTS,
        is_member=False,
        fulfilment_type="delivery",
        rules=PricingRules(),
    )
    return Order.place(new_order_id(at), customer, quote, {"type": "delivery"}, "WH", now=at, payment_window_s=window_s)


def placed(ordering: Ordering, order: Order) -> Order:
    uow = ordering.units()
    uow.add_order(order)
    uow.commit()
    return order


def placed_event(order: Order) -> DomainEvent:
    return DomainEvent(EventType.ORDER_PLACED, order.order_id, order.event_payload())


def payment(transaction_id: str, order_id: str, status: str = "APPLIED") -> PaymentRecord:
    return PaymentRecord(transaction_id, order_id, 10_000, "2026-11-23T00:00:00Z", status, None, NOW)


class TestOrderingPorts:
    # -- orders ----------------------------------------------------------------------------
    def test_an_order_and_its_event_read_back_as_written(self, ordering: Ordering):
        # The order announces OrderPlaced itself (its INSERT, through the relay): no outbox item
        order = new_order({"TEA-1": 2, "CUP-1": 1})
        uow = ordering.units()
        uow.add_order(order)
        uow.commit()
        assert ordering.reads.get(order.order_id) == order
        assert ordering.events_of(order.order_id) == ["OrderPlaced"]
        assert ordering.reads.get("o-none") is None

    def test_an_order_id_is_written_once(self, ordering: Ordering):
        order = placed(ordering, new_order({"TEA-1": 1}))
        with pytest.raises(ConcurrentUpdate):
            placed(ordering, order)

    def test_a_replacement_applies_only_over_the_order_it_was_decided_on(self, ordering: Ordering):
        # Given an order paid by one writer
        ordering.put_stock("TEA-1", "WH", 10)
        order = placed(ordering, new_order({"TEA-1": 1}))
        paid = order.transition(Action.PAY, "payment", NOW + 1, transaction_id="t-1")
        uow = ordering.units()
        uow.replace_order(order, paid)
        uow.commit()
        # When another writer, who read the unpaid order, cancels it and releases a unit with it
        cancelled = order.transition(Action.CANCEL, "alice", NOW + 2)
        late = ordering.units()
        late.replace_order(order, cancelled)
        late.restock("TEA-1", "WH", 1)
        # Then it is a concurrent update, and nothing of its transaction applied
        with pytest.raises(ConcurrentUpdate):
            late.commit()
        assert ordering.reads.get(order.order_id) == paid
        assert ordering.stock_of("TEA-1", "WH") == (10, 0, 10)

    def test_replacing_an_order_that_does_not_exist_is_a_concurrent_update(self, ordering: Ordering):
        order = new_order({"TEA-1": 1})
        uow = ordering.units()
        uow.replace_order(order, order.note("x", NOW, "n"))
        with pytest.raises(ConcurrentUpdate):
            uow.commit()
        assert ordering.reads.get(order.order_id) is None

    # -- stock -----------------------------------------------------------------------------
    def test_a_short_reservation_refuses_the_whole_transaction_and_names_its_sku(self, ordering: Ordering):
        ordering.put_stock("TEA-1", "WH", 10)
        ordering.put_stock("CUP-1", "WH", 5)
        order = new_order({"TEA-1": 2, "CUP-1": 6})
        uow = ordering.units()
        uow.reserve_stock("TEA-1", "WH", 2)
        uow.reserve_stock("CUP-1", "WH", 6)
        uow.add_order(order)
        uow.emit(placed_event(order))
        with pytest.raises(OutOfStock) as refused:
            uow.commit()
        assert refused.value.details == {"sku": "CUP-1", "location": "WH"}
        assert ordering.stock_of("TEA-1", "WH") == (10, 0, 10)
        assert ordering.reads.get(order.order_id) is None and ordering.events_of(order.order_id) == []

    def test_a_reservation_of_stock_never_stocked_is_out_of_stock(self, ordering: Ordering):
        uow = ordering.units()
        uow.reserve_stock("TEA-1", "S404", 1)
        with pytest.raises(OutOfStock) as refused:
            uow.commit()
        assert refused.value.details == {"sku": "TEA-1", "location": "S404"}

    def test_stock_moves_keep_available_equal_to_on_hand_less_reserved(self, ordering: Ordering):
        ordering.put_stock("TEA-1", "WH", 10)
        moves: list[Callable] = []
        for move, qty, expected in (
            ("reserve_stock", 3, (10, 3, 7)),
            ("commit_stock", 2, (8, 1, 7)),
            ("release_stock", 1, (8, 0, 8)),
            ("restock", 2, (10, 0, 10)),
        ):
            uow = ordering.units()
            getattr(uow, move)("TEA-1", "WH", qty)
            uow.commit()
            moves.append(move)
            assert ordering.stock_of("TEA-1", "WH") == expected, moves

    def test_an_order_conflict_is_reported_before_a_short_line(self, ordering: Ordering):
        ordering.put_stock("TEA-1", "WH", 1)
        order = placed(ordering, new_order({"TEA-1": 1}))
        uow = ordering.units()
        uow.replace_order(order.note("x", NOW, "n"), order.note("x", NOW, "m"))  # a version never stored
        uow.reserve_stock("TEA-1", "WH", 5)
        with pytest.raises(ConcurrentUpdate):
            uow.commit()

    # -- payments and refunds --------------------------------------------------------------
    def test_a_payment_is_recorded_once_per_transaction_id(self, ordering: Ordering):
        recorded = payment("wx-1", "o-1")
        uow = ordering.units()
        uow.record_payment(recorded)
        uow.commit()
        assert ordering.reads.get_payment("wx-1") == recorded
        again = ordering.units()
        again.record_payment(payment("wx-1", "o-1", status="NEEDS_REFUND"))
        with pytest.raises(PaymentAlreadyRecorded):
            again.commit()
        assert ordering.reads.get_payment("wx-1") == recorded
        assert ordering.reads.get_payment("wx-2") is None

    def test_a_refund_is_requested_then_decided_once(self, ordering: Ordering):
        ordering.put_stock("CUP-1", "WH", 5)
        refund = {
            "refund_id": "r-1",
            "order_id": "o-1",
            "customer_id": "alice",
            "status": "REQUESTED",
            "lines": [{"sku": "CUP-1", "qty": 1, "amount_fen": 3333}],
            "amount_fen": 3333,
            "reason": "broken",
        }
        uow = ordering.units()
        uow.add_refund(refund, NOW)
        uow.commit()
        stored = {**refund, "restock": None, "created_at": iso(NOW)}
        assert ordering.reads.get_refund("o-1", "r-1") == stored
        assert ordering.reads.refunds_of("o-1") == [stored]
        assert ordering.reads.refunds_of("o-2") == [] and ordering.reads.get_refund("o-1", "r-2") is None
        # When it is issued with a restock, and then decided again
        issue = ordering.units()
        issue.decide_refund(stored, "ISSUED", restock=True)
        issue.restock("CUP-1", "WH", 1)
        issue.commit()
        twice = ordering.units()
        twice.decide_refund(stored, "REJECTED", restock=False)
        twice.restock("CUP-1", "WH", 1)
        with pytest.raises(InvalidTransition):
            twice.commit()
        # Then the first decision holds, and the second moved nothing
        assert ordering.reads.get_refund("o-1", "r-1") == {**stored, "status": "ISSUED", "restock": "yes"}
        assert ordering.stock_of("CUP-1", "WH") == (6, 0, 6)

    def test_an_orders_refunds_are_listed_oldest_first_whatever_their_ids(self, ordering: Ordering):
        # Ids derived from a key do not sort by time: the later refund has the smaller id here
        first = {
            "refund_id": "r-zzz",
            "order_id": "o-1",
            "customer_id": "alice",
            "status": "REQUESTED",
            "lines": [{"sku": "CUP-1", "qty": 1, "amount_fen": 3333}],
            "amount_fen": 3333,
            "reason": "broken",
        }
        uow = ordering.units()
        uow.add_refund(first, NOW + 5)
        uow.add_refund({**first, "refund_id": "r-aaa"}, NOW + 9)
        uow.commit()
        assert [r["refund_id"] for r in ordering.reads.refunds_of("o-1")] == ["r-zzz", "r-aaa"]

    def test_an_issued_refund_and_a_flagged_payment_announce_their_events_and_nothing_else_does(
        self, ordering: Ordering
    ):
        # Given an order, two refund requests on it and two payments for it
        order = placed(ordering, new_order({"TEA-1": 2}))
        issued = {
            "refund_id": "r-1",
            "order_id": order.order_id,
            "customer_id": "alice",
            "status": "REQUESTED",
            "lines": [{"sku": "TEA-1", "qty": 1, "amount_fen": 10000}],
            "amount_fen": 10000,
            "reason": "broken",
        }
        rejected = {**issued, "refund_id": "r-2"}
        uow = ordering.units()
        uow.add_refund(issued, NOW)
        uow.add_refund(rejected, NOW)
        uow.commit()
        # When one is issued carrying the order's part and the other rejected
        issue = ordering.units()
        issue.decide_refund({**issued, "order_part": order.event_payload(), "decided_at_ms": NOW + 1}, "ISSUED", False)
        issue.commit()
        reject = ordering.units()
        reject.decide_refund(rejected, "REJECTED", restock=False)
        reject.commit()
        # And one payment is recorded for refund with the order's part, the other applied
        pay = ordering.units()
        flagged = replace(payment("wx-late", order.order_id, "NEEDS_REFUND"), order_part=order.event_payload())
        pay.record_payment(flagged)
        pay.record_payment(payment("wx-ok", order.order_id))
        pay.commit()
        # Then the issue and the flagged payment announce, once each; the rest announce nothing
        assert ordering.events_of(order.order_id) == ["OrderPlaced", "PaymentNeedsRefund", "RefundIssued"]

    def test_a_refund_request_holds_its_units_on_the_order_and_a_second_one_on_the_same_read_is_refused(
        self, ordering: Ordering
    ):
        # Given a paid order of one cup
        order = placed(ordering, new_order({"CUP-1": 1}))
        paid = order.transition(Action.PAY, "payment", NOW + 1, transaction_id="t-1")
        uow = ordering.units()
        uow.replace_order(order, paid)
        uow.commit()
        # When two requests, both decided on the paid order, write their refund and hold the unit
        writes = []
        for refund_id in ("r-1", "r-2"):
            refund = {
                "refund_id": refund_id,
                "order_id": order.order_id,
                "customer_id": "alice",
                "status": "REQUESTED",
                "lines": [{"sku": "CUP-1", "qty": 1, "amount_fen": 3333}],
                "amount_fen": 3333,
                "reason": "broken",
            }
            write = ordering.units()
            write.replace_order(paid, paid.request_refund({"CUP-1": 1}, "alice", NOW + 2, refund_id))
            write.add_refund(refund, NOW + 2)
            writes.append(write)
        writes[0].commit()
        with pytest.raises(ConcurrentUpdate):
            writes[1].commit()
        # Then the order holds the unit for the first one only, and the second wrote no refund
        held = ordering.reads.get(order.order_id)
        assert held is not None and held.refund_requested_qty == {"CUP-1": 1} and held.refundable_qty("CUP-1") == 0
        assert held == paid.request_refund({"CUP-1": 1}, "alice", NOW + 2, "r-1")
        assert [r["refund_id"] for r in ordering.reads.refunds_of(order.order_id)] == ["r-1"]

    def test_a_clashing_payment_is_kept_once_per_order_beside_the_one_holding_its_transaction_id(
        self, ordering: Ordering
    ):
        applied = payment("wx-1", "o-x")
        clash = PaymentRecord("wx-1", "o-y", 10_000, "2026-11-23T00:00:00Z", "NEEDS_REFUND", "clash", NOW + 1)
        first = ordering.units()
        first.record_payment(applied)
        first.commit()
        beside = ordering.units()
        beside.record_clashing_payment(clash)
        beside.commit()
        again = ordering.units()
        again.record_clashing_payment(clash)
        with pytest.raises(PaymentAlreadyRecorded):
            again.commit()
        assert ordering.reads.get_payment("wx-1") == applied
        assert ordering.reads.payments_needing_refund(10, None)[0] == [clash]

    def test_payments_needing_refund_are_listed_newest_first_a_page_at_a_time_and_applied_ones_never(
        self, ordering: Ordering
    ):
        recorded = []
        for i in range(3):
            late = PaymentRecord(f"wx-{i}", f"o-{i}", 100 + i, "2026-11-23T00:00:00Z", "NEEDS_REFUND", "late", NOW + i)
            uow = ordering.units()
            uow.record_payment(late)
            uow.record_payment(payment(f"ok-{i}", f"o-ok-{i}"))
            uow.commit()
            recorded.append(late)
        page, cursor = ordering.reads.payments_needing_refund(2, None)
        assert page == [recorded[2], recorded[1]] and cursor is not None
        rest, end = ordering.reads.payments_needing_refund(2, cursor)
        assert rest == [recorded[0]] and end is None

    # -- idempotency -----------------------------------------------------------------------
    def test_a_key_answers_with_its_first_response_and_nothing_else_applies(self, ordering: Ordering):
        ordering.put_stock("TEA-1", "WH", 10)
        request = IdempotentRequest.of("orders:alice", "k-1", {"lines": {"TEA-1": 1}})
        first_order, second_order = new_order({"TEA-1": 1}), new_order({"TEA-1": 1})
        first = StoredResponse(201, first_order.view())
        uow = ordering.units()
        uow.reserve_stock("TEA-1", "WH", 1)
        uow.add_order(first_order)
        assert uow.commit_once(request, first) == first
        # When the same request comes again, even with a line that is now short
        again = ordering.units()
        again.reserve_stock("TEA-1", "WH", 50)
        again.add_order(second_order)
        assert again.commit_once(request, StoredResponse(201, second_order.view())) == first
        # Then it gets the first response, and its own parts did not apply
        assert ordering.reads.get(second_order.order_id) is None
        assert ordering.stock_of("TEA-1", "WH") == (10, 1, 9)
        assert ordering.reads.replay(request) == first

    def test_a_key_used_with_another_body_is_refused(self, ordering: Ordering):
        request = IdempotentRequest.of("orders:alice", "k-1", {"lines": {"TEA-1": 1}})
        other = IdempotentRequest.of("orders:alice", "k-1", {"lines": {"TEA-1": 2}})
        uow = ordering.units()
        uow.emit(DomainEvent(EventType.ORDER_PLACED, "o-1", {}))
        uow.commit_once(request, StoredResponse(201, {"order_id": "o-1"}))
        with pytest.raises(IdempotencyKeyReused):
            ordering.reads.replay(other)
        again = ordering.units()
        again.emit(DomainEvent(EventType.ORDER_PLACED, "o-2", {}))
        with pytest.raises(IdempotencyKeyReused):
            again.commit_once(other, StoredResponse(201, {"order_id": "o-2"}))
        assert ordering.events_of("o-2") == []
        assert ordering.reads.replay(IdempotentRequest.of("orders:alice", "k-2", {})) is None
        assert ordering.reads.replay(IdempotentRequest.of("orders:bob", "k-1", {"lines": {"TEA-1": 2}})) is None

    def test_a_unit_of_work_is_committed_once(self, ordering: Ordering):
        uow = ordering.units()
        uow.add_order(new_order({"TEA-1": 1}))
        uow.commit()
        with pytest.raises(RuntimeError):
            uow.commit()

    # -- queries ---------------------------------------------------------------------------
    def test_due_orders_are_the_unpaid_ones_past_their_window(self, ordering: Ordering):
        due = placed(ordering, new_order({"TEA-1": 1}, window_s=60))
        later = placed(ordering, new_order({"TEA-1": 1}, at=NOW + 30_000, window_s=60))
        paid = placed(ordering, new_order({"TEA-1": 1}, window_s=60))
        uow = ordering.units()
        uow.replace_order(paid, paid.transition(Action.PAY, "payment", NOW + 1))
        uow.commit()
        assert [o.order_id for o in ordering.reads.due_orders(NOW + 60_000)] == [due.order_id]
        found = sorted(o.order_id for o in ordering.reads.due_orders(NOW + 90_000))
        assert found == sorted([due.order_id, later.order_id])
        assert all(o.status is Status.PENDING_PAYMENT for o in ordering.reads.due_orders(NOW + 90_000))

    def test_a_customers_orders_come_newest_first_a_page_at_a_time(self, ordering: Ordering):
        made = [placed(ordering, new_order({"TEA-1": 1}, at=NOW + i * 1000)) for i in range(3)]
        placed(ordering, new_order({"TEA-1": 1}, customer="bob"))
        page, cursor = ordering.reads.list_for_customer("alice", 2, None)
        assert [o.order_id for o in page] == [made[2].order_id, made[1].order_id] and cursor is not None
        rest, _ = ordering.reads.list_for_customer("alice", 2, cursor)
        assert [o.order_id for o in rest] == [made[0].order_id]
        assert ordering.reads.list_for_customer("carol", 2, None) == ([], None)
