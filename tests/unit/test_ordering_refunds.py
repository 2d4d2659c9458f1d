"""Refunds on the in-memory ordering ports: amounts from the allocated lines, requests holding their
units on the order (so concurrent requests cannot all be accepted), decided once, restock,
idempotent requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.errors import IdempotencyKeyReused, InvalidTransition, NotFound, RuleViolation, ValidationFailed
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.ordering.checkout import Cart
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.model import Order, Status
from shared.ordering.pricing import CartLine
from shared.ordering.refunds import OrderRefunds
from shared.payments.hmac_webhook import PaymentNotice
from tests.fakes.ordering import MemoryOrderReads, OrderingOnFakes, ordering_on_fakes

CUP = Product(sku="CUP-1", name="杯子", price_fen=3333)
TEA = Product(sku="TEA-1", name="龙井", price_fen=10000)
ALICE = Principal("alice", Role.CUSTOMER)
BOB = Principal("bob", Role.CUSTOMER)
ADMIN = Principal("admin", Role.MERCHANT_ADMIN)
DELIVERY = Fulfilment(FulfilmentType.DELIVERY, address=Address("Li Lei", "13700000000", "Shanghai", "1 Road"))


@pytest.fixture
def shop() -> OrderingOnFakes:
    return ordering_on_fakes(
        products=[CUP, TEA],
        stock={("CUP-1", "WH"): 5, ("TEA-1", "WH"): 5},
        locations=[Location("WH", "warehouse", "仓")],
    )


def paid_order(shop: OrderingOnFakes, lines: dict[str, int], pay: bool = True) -> Order:
    cart = Cart(tuple(CartLine(s, q) for s, q in lines.items()), (), DELIVERY)
    stored = shop.placement.place_order(cart, "alice", IdempotentRequest.of("orders:alice", None, lines))
    order = shop.lifecycle.load(stored.body["order_id"])
    if pay:
        shop.lifecycle.apply_payment(
            PaymentNotice(order.order_id, f"t-{order.order_id}", order.total_fen, "2026-11-23T00:00:00Z")
        )
    return shop.lifecycle.load(order.order_id)


def ask(shop: OrderingOnFakes, order: Order, lines: dict[str, int], key: str | None = None, who=ALICE, reason="x"):
    request = IdempotentRequest.of(f"refunds:{who.sub}:{order.order_id}", key, {"lines": lines, "reason": reason})
    return shop.refunds.request_refund(order.order_id, lines, reason, who, request)


def test_partial_refunds_add_up_to_exactly_what_the_line_paid_and_may_restock(shop):
    # Given a paid order of 3 cups at 3,333 fen (no promotion applies: the line paid 9,999)
    order = paid_order(shop, {"CUP-1": 3})
    payable = order.lines[0].payable_fen
    # When 1 cup comes back to the shelf, then the other 2 do not
    first = ask(shop, order, {"CUP-1": 1}).body
    issued1 = shop.refunds.decide_refund(order.order_id, first["refund_id"], True, True, ADMIN)
    second = ask(shop, order, {"CUP-1": 2}).body
    issued2 = shop.refunds.decide_refund(order.order_id, second["refund_id"], True, False, ADMIN)
    # Then the refunds sum to the line, the order is REFUNDED, and one unit went back
    assert first["status"] == "REQUESTED" and issued1["status"] == issued2["status"] == "ISSUED"
    assert issued1["amount_fen"] + issued2["amount_fen"] == payable
    after = shop.reads.get(order.order_id)
    assert after.status is Status.REFUNDED and after.refunded_fen == payable
    assert shop.tables.stock_of("CUP-1", "WH") == (3, 0, 3)
    assert shop.tables.events_of(order.order_id).count("RefundIssued") == 2
    restocked = {r["refund_id"]: r["restock"] for r in shop.refunds.refunds_of(order.order_id)}
    assert restocked == {first["refund_id"]: "yes", second["refund_id"]: "no"}


def test_pending_requests_count_against_what_can_still_be_refunded(shop):
    order = paid_order(shop, {"CUP-1": 3})
    ask(shop, order, {"CUP-1": 2})
    with pytest.raises(RuleViolation) as refused:
        ask(shop, order, {"CUP-1": 2})
    assert refused.value.details == {"sku": "CUP-1", "refundable_qty": 1}


def test_a_rejected_request_moves_nothing_and_frees_its_units_for_another_request(shop):
    order = paid_order(shop, {"CUP-1": 3})
    asked = ask(shop, order, {"CUP-1": 3}).body
    rejected = shop.refunds.decide_refund(order.order_id, asked["refund_id"], False, True, ADMIN)
    assert rejected["status"] == "REJECTED" and rejected["restock"] == "no"
    after = shop.reads.get(order.order_id)
    assert (after.status, after.refunded_qty, after.refunded_fen) == (order.status, {}, 0)
    assert after.refund_requested_qty == {} and after.refundable_qty("CUP-1") == 3
    assert [entry.by for entry in after.history[-2:]] == ["alice", "admin"]  # asked, then rejected
    assert shop.tables.stock_of("CUP-1", "WH") == (2, 0, 2)
    assert ask(shop, order, {"CUP-1": 3}).status == 201


def test_a_refund_is_decided_once(shop):
    order = paid_order(shop, {"CUP-1": 1})
    asked = ask(shop, order, {"CUP-1": 1}).body
    shop.refunds.decide_refund(order.order_id, asked["refund_id"], True, False, ADMIN)
    with pytest.raises(InvalidTransition):
        shop.refunds.decide_refund(order.order_id, asked["refund_id"], True, False, ADMIN)
    with pytest.raises(NotFound):
        shop.refunds.decide_refund(order.order_id, "r-none", True, False, ADMIN)


def test_a_refund_decided_by_someone_else_in_between_is_refused(shop):
    order = paid_order(shop, {"CUP-1": 1})
    asked = ask(shop, order, {"CUP-1": 1}).body
    asked_for = shop.reads.get(order.order_id)  # holding the unit the request asks for
    key = (order.order_id, asked["refund_id"])
    reads_get_refund = shop.reads.get_refund

    def stale_read(order_id: str, refund_id: str):
        seen = reads_get_refund(order_id, refund_id)
        shop.tables.refunds[key] = {**shop.tables.refunds[key], "status": "REJECTED"}  # another admin, meanwhile
        return seen

    shop.reads.get_refund = stale_read  # type: ignore[method-assign]
    with pytest.raises(InvalidTransition) as refused:
        shop.refunds.decide_refund(order.order_id, asked["refund_id"], True, False, ADMIN)
    assert refused.value.message == "refund was decided concurrently"
    assert shop.tables.orders[order.order_id] == asked_for  # nothing of the issue applied


def test_a_replayed_request_gets_its_first_answer_and_another_body_with_the_key_is_refused(shop):
    order = paid_order(shop, {"CUP-1": 2})
    first = ask(shop, order, {"CUP-1": 2}, key="rk")
    assert ask(shop, order, {"CUP-1": 2}, key="rk") == first  # its own pending refund would refuse it
    with pytest.raises(IdempotencyKeyReused):
        ask(shop, order, {"CUP-1": 1}, key="rk")
    assert len(shop.refunds.refunds_of(order.order_id)) == 1


def test_what_cannot_be_refunded(shop):
    unpaid = paid_order(shop, {"CUP-1": 1}, pay=False)
    with pytest.raises(InvalidTransition):
        ask(shop, unpaid, {"CUP-1": 1})
    order = paid_order(shop, {"CUP-1": 1})
    with pytest.raises(NotFound):
        ask(shop, order, {"CUP-1": 1}, who=BOB)
    with pytest.raises(ValidationFailed):
        ask(shop, order, {"TEA-1": 1})


# -- concurrent requests (issue 10, finding 6) ---------------------------------------------------
class EveryoneReadsFirst(MemoryOrderReads):
    """Reads that hold each request back after its first read of the order (and of its refunds)
    until all of them have read: the interleaving where a read-then-write check lets every one
    through, made certain instead of left to the scheduler."""

    def __init__(self, tables, parties: int) -> None:
        super().__init__(tables)
        self._gate = threading.Barrier(parties, timeout=10)
        self._seen = threading.local()

    def get(self, order_id: str):
        found = super().get(order_id)
        self._first("order")
        return found

    def refunds_of(self, order_id: str):
        found = super().refunds_of(order_id)
        self._first("refunds")
        return found

    def _first(self, what: str) -> None:
        if not getattr(self._seen, what, False):
            setattr(self._seen, what, True)
            self._gate.wait()


def test_of_twenty_concurrent_requests_for_the_only_unit_one_is_accepted_the_rest_refused_as_if_sent_later(shop):
    # Given a paid order of one cup, and 20 requests with their own keys that all read it first
    order = paid_order(shop, {"CUP-1": 1})
    reads = EveryoneReadsFirst(shop.tables, 20)
    refunds = OrderRefunds(shop.units, reads, shop.clock)

    def send(i: int) -> str:
        lines = {"CUP-1": 1}
        request = IdempotentRequest.of(f"refunds:alice:{order.order_id}", f"k-{i}", {"lines": lines, "reason": "x"})
        try:
            return str(refunds.request_refund(order.order_id, lines, "x", ALICE, request).status)
        except RuleViolation as refused:
            return f"422 {refused.details['refundable_qty']}"

    # When they are sent at once
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, range(20)))
    # Then one is accepted and 19 are refused with nothing left to refund; one request exists
    assert sorted(answers) == ["201"] + ["422 0"] * 19
    requested = [r for r in shop.refunds.refunds_of(order.order_id) if r["status"] == "REQUESTED"]
    assert len(requested) == 1 and requested[0]["amount_fen"] == order.lines[0].payable_fen
    assert shop.reads.get(order.order_id).refund_requested_qty == {"CUP-1": 1}


def test_a_request_holds_its_units_until_decided_and_the_decision_keeps_the_books(shop):
    # Given 3 cups, a request for 2 of them
    order = paid_order(shop, {"CUP-1": 3})
    two = ask(shop, order, {"CUP-1": 2}).body
    held = shop.reads.get(order.order_id)
    assert (held.refund_requested_qty, held.refundable_qty("CUP-1"), held.refunded_qty) == ({"CUP-1": 2}, 1, {})
    # When it is rejected, then the 2 can be asked for again
    shop.refunds.decide_refund(order.order_id, two["refund_id"], False, False, ADMIN)
    assert shop.reads.get(order.order_id).refundable_qty("CUP-1") == 3
    # When 3 are asked for and issued, then they are refunded and nothing is held
    three = ask(shop, order, {"CUP-1": 3}).body
    shop.refunds.decide_refund(order.order_id, three["refund_id"], True, False, ADMIN)
    done = shop.reads.get(order.order_id)
    assert (done.refund_requested_qty, done.refunded_qty, done.status) == ({}, {"CUP-1": 3}, Status.REFUNDED)
    assert done.refunded_fen == order.lines[0].payable_fen


def test_the_same_request_sent_twice_at_once_gets_one_answer_not_a_refusal(shop):
    # Given the only unit, and one request sent twice with the same key, both reading first
    order = paid_order(shop, {"CUP-1": 1})
    refunds = OrderRefunds(shop.units, EveryoneReadsFirst(shop.tables, 2), shop.clock)
    body = {"lines": {"CUP-1": 1}, "reason": "x"}
    request = IdempotentRequest.of(f"refunds:alice:{order.order_id}", "same", body)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(lambda _: refunds.request_refund(order.order_id, {"CUP-1": 1}, "x", ALICE, request), range(2))
        )
    assert answers[0] == answers[1] and answers[0].status == 201
    assert len(shop.refunds.refunds_of(order.order_id)) == 1
