"""The order lifecycle at the service layer, on the serialised moto table."""

from __future__ import annotations

import pytest

from shared.kernel.clock import FakeClock, now_ms
from shared.kernel.errors import (
    AmountMismatch,
    IdempotencyKeyReused,
    InvalidTransition,
    LimitReached,
    NotFound,
    OutOfStock,
    WrongPickupCode,
)
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.ordering.model import Status
from shared.payments.hmac_webhook import PaymentNotice
from shared.platform import bootstrap
from tests.functional.orders_support import events_of, given_catalogue, placement, request, stock_of

ALICE = Principal("alice", Role.CUSTOMER)
BOB = Principal("bob", Role.CUSTOMER)
STAFF_S1 = Principal("staff", Role.STORE_STAFF, "S001")
ADMIN = Principal("admin", Role.MERCHANT_ADMIN)


@pytest.fixture
def clock():
    return FakeClock(now_ms())


@pytest.fixture
def stocked(table, clock):
    given_catalogue({("TEA-1", "WH"): 10, ("CUP-1", "WH"): 5, ("TEA-1", "S001"): 3})


@pytest.fixture
def order_lifecycle(table, clock):
    return bootstrap.order_lifecycle(clock)


@pytest.fixture
def refunds(table, clock):
    return bootstrap.order_refunds(clock)


@pytest.fixture
def orders(table):
    return bootstrap.orders()


@pytest.fixture
def place(table, clock):
    placing = bootstrap.ordering(clock)

    def place(lines, customer="alice", key=None, **kwargs):
        body = {"lines": lines, **kwargs}
        return placing.place(placement(lines, **kwargs), customer, request(customer, key, body))

    return place


@pytest.fixture
def ask_refund(refunds):
    def ask_refund(order_id, lines, reason, key=None):
        body = {"lines": lines, "reason": reason}
        request = IdempotentRequest.of(f"refunds:alice:{order_id}", key, body)
        return refunds.request_refund(order_id, lines, reason, ALICE, request).body

    return ask_refund


@pytest.fixture
def pay(order_lifecycle):
    def pay(order_id, amount, txn="t-1"):
        notice = PaymentNotice(order_id, txn, amount, "2026-11-23T00:00:00Z")
        return order_lifecycle.apply_payment(notice)

    return pay


def test_placing_holds_stock_and_paying_commits_it_once(stocked, place, pay):
    # Given an order for 2 teas and 1 cup
    stored = place({"TEA-1": 2, "CUP-1": 1})
    order_id, total = stored.body["order_id"], stored.body["total_fen"]
    assert stored.status == 201 and stored.body["status"] == "PENDING_PAYMENT"
    assert stock_of("TEA-1") == (10, 2, 8)
    # When it is paid, and the same notification arrives again
    first = pay(order_id, total)
    second = pay(order_id, total)
    # Then the units left on_hand once, and the duplicate changed nothing
    assert (first.outcome, second.outcome) == ("paid", "duplicate")
    assert stock_of("TEA-1") == (8, 0, 8)
    assert stock_of("CUP-1") == (4, 0, 4)
    assert events_of(order_id) == ["OrderPaid", "OrderPlaced"]


def test_a_short_line_holds_nothing_and_names_the_sku(stocked, place):
    with pytest.raises(OutOfStock) as refused:
        place({"TEA-1": 1, "CUP-1": 6})
    assert refused.value.details["sku"] == "CUP-1"
    assert stock_of("TEA-1") == (10, 0, 10)


def test_same_key_replays_and_a_different_body_is_refused(stocked, place):
    first = place({"TEA-1": 1}, key="k-1")
    again = place({"TEA-1": 1}, key="k-1")
    assert again.body == first.body and again.status == 201
    assert stock_of("TEA-1") == (10, 1, 9)
    with pytest.raises(IdempotencyKeyReused):
        place({"TEA-1": 2}, key="k-1")
    # the same key of another customer is another request
    other = place({"TEA-1": 1}, customer="bob", key="k-1")
    assert other.body["order_id"] != first.body["order_id"]


def test_cancel_releases_units_once_and_only_for_its_customer(stocked, place, order_lifecycle):
    order_id = place({"TEA-1": 3})["order_id"] if False else place({"TEA-1": 3}).body["order_id"]
    with pytest.raises(NotFound):
        order_lifecycle.cancel(order_id, BOB)
    cancelled = order_lifecycle.cancel(order_id, ALICE)
    assert cancelled.status is Status.CANCELLED
    assert stock_of("TEA-1") == (10, 0, 10)
    with pytest.raises(InvalidTransition):
        order_lifecycle.cancel(order_id, ALICE)
    assert stock_of("TEA-1") == (10, 0, 10)


def test_expiry_releases_units_and_a_late_payment_is_flagged_for_refund(
    stocked, place, pay, order_lifecycle, orders, clock
):
    stored = place({"TEA-1": 4}, window_s=60)
    order_id, total = stored.body["order_id"], stored.body["total_fen"]
    clock.advance(61)
    # When the sweeper runs after the window
    assert order_lifecycle.expire_due() == 1
    assert order_lifecycle.expire_due() == 0  # nothing twice
    assert stock_of("TEA-1") == (10, 0, 10)
    # And the payment arrives afterwards
    outcome = pay(order_id, total, txn="late-1")
    # Then it is recorded for refund, not accepted
    assert outcome.outcome == "needs_refund"
    assert orders.get(order_id).status is Status.CANCELLED
    assert orders.get_payment("late-1").status == "NEEDS_REFUND"
    assert "PaymentNeedsRefund" in events_of(order_id) and "OrderExpired" in events_of(order_id)


def test_payment_after_the_window_before_the_sweeper_expires_and_flags(stocked, place, pay, clock):
    stored = place({"TEA-1": 1}, window_s=60)
    clock.advance(120)
    outcome = pay(stored.body["order_id"], stored.body["total_fen"])
    assert outcome.outcome == "needs_refund" and outcome.order.status is Status.CANCELLED
    assert stock_of("TEA-1") == (10, 0, 10)


def test_wrong_amount_leaves_the_order_untouched(stocked, place, pay, orders):
    stored = place({"TEA-1": 1})
    with pytest.raises(AmountMismatch):
        pay(stored.body["order_id"], stored.body["total_fen"] - 1)
    order = orders.get(stored.body["order_id"])
    assert order.status is Status.PENDING_PAYMENT and order.version == 1


def test_second_transaction_for_a_paid_order_is_flagged(stocked, place, pay, orders):
    stored = place({"TEA-1": 1})
    pay(stored.body["order_id"], stored.body["total_fen"], txn="a")
    outcome = pay(stored.body["order_id"], stored.body["total_fen"], txn="b")
    assert outcome.outcome == "needs_refund"
    assert orders.get(stored.body["order_id"]).status is Status.PAID


def test_delivery_ships_then_completes(stocked, place, pay, order_lifecycle):
    stored = place({"TEA-1": 1})
    order_id = stored.body["order_id"]
    pay(order_id, stored.body["total_fen"])
    with pytest.raises(InvalidTransition):
        order_lifecycle.complete(order_id, ALICE)
    shipped = order_lifecycle.ship(order_id, "SF123456", ADMIN)
    assert shipped.status is Status.FULFILLING and shipped.tracking_number == "SF123456"
    done = order_lifecycle.complete(order_id, ALICE)
    assert done.status is Status.COMPLETED
    assert [h.action for h in done.history] == ["place", "pay", "ship", "complete"]


def test_pickup_hand_over_needs_the_code_and_limits_guesses(stocked, place, pay, order_lifecycle):
    stored = place({"TEA-1": 1}, fulfilment={"type": "pickup", "store_id": "S001"}, location="S001")
    order_id = stored.body["order_id"]
    pay(order_id, stored.body["total_fen"])
    with pytest.raises(Exception) as not_theirs:
        order_lifecycle.ready_for_pickup(order_id, Principal("x", Role.STORE_STAFF, "S002"))
    assert type(not_theirs.value).__name__ == "Forbidden"
    ready = order_lifecycle.ready_for_pickup(order_id, STAFF_S1)
    wrong = "000000" if ready.pickup_code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(WrongPickupCode):
            order_lifecycle.hand_over(order_id, wrong, STAFF_S1)
    with pytest.raises(LimitReached):
        order_lifecycle.hand_over(order_id, ready.pickup_code, STAFF_S1)


def test_pickup_hand_over_with_the_right_code_completes(stocked, place, pay, order_lifecycle):
    stored = place({"TEA-1": 1}, fulfilment={"type": "pickup", "store_id": "S001"}, location="S001")
    order_id = stored.body["order_id"]
    pay(order_id, stored.body["total_fen"])
    ready = order_lifecycle.ready_for_pickup(order_id, STAFF_S1)
    done = order_lifecycle.hand_over(order_id, ready.pickup_code, STAFF_S1)
    assert done.status is Status.COMPLETED
    assert stock_of("TEA-1", "S001") == (2, 0, 2)


def test_partial_refunds_sum_exactly_to_the_line_and_restock(stocked, place, pay, ask_refund, refunds, orders):
    # Given a paid order of 3 cups at 3,333 fen (payable 9,999 fen: no promotion applies)
    stored = place({"CUP-1": 3})
    order_id = stored.body["order_id"]
    pay(order_id, stored.body["total_fen"])
    payable = stored.body["lines"][0]["payable_fen"]
    # When the customer gets 1 cup back, then 2 more
    first = ask_refund(order_id, {"CUP-1": 1}, "broken")
    issued1 = refunds.decide_refund(order_id, first["refund_id"], True, True, ADMIN)
    with pytest.raises(Exception):  # noqa: B017 - more than what is left
        ask_refund(order_id, {"CUP-1": 3}, "all")
    second = ask_refund(order_id, {"CUP-1": 2}, "changed mind", key="refund-2")
    assert ask_refund(order_id, {"CUP-1": 2}, "changed mind", key="refund-2") == second  # a replay asks nothing more
    issued2 = refunds.decide_refund(order_id, second["refund_id"], True, False, ADMIN)
    # Then the two refunds add up to exactly what the line paid, and one unit went back on the shelf
    assert issued1["amount_fen"] + issued2["amount_fen"] == payable
    order = orders.get(order_id)
    assert order.status is Status.REFUNDED and order.refunded_fen == payable
    assert stock_of("CUP-1") == (3, 0, 3)  # 5 - 3 sold + 1 restocked
    with pytest.raises(InvalidTransition):
        refunds.decide_refund(order_id, second["refund_id"], True, False, ADMIN)
