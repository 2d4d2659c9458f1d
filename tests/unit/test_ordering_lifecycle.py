"""The order lifecycle on the in-memory ordering ports: payment (once, late, duplicate, wrong
amount), cancellation, expiry, fulfilment and the pickup code, and what happens when another
writer changes the order between the read and the write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.errors import (
    AmountMismatch,
    ConcurrentUpdate,
    Forbidden,
    InvalidTransition,
    LimitReached,
    NotFound,
    RuleViolation,
    WrongPickupCode,
)
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.ordering.checkout import Cart
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.lifecycle import OrderLifecycle
from shared.ordering.model import Action, Order, Status
from shared.ordering.placement import Placement
from shared.ordering.ports import OrderingUnitOfWork
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from shared.payments.hmac_webhook import PaymentNotice
from shared.platform import observability
from tests.fakes.ordering import MemoryOrderingUnitOfWork, MemoryUnitsOfWork, OrderingOnFakes, ordering_on_fakes

TEA = Product(sku="TEA-1", name="龙井", price_fen=10000)
CUP = Product(sku="CUP-1", name="杯子", price_fen=3333)
ALICE = Principal("alice", Role.CUSTOMER)
BOB = Principal("bob", Role.CUSTOMER)
STAFF_S1 = Principal("staff", Role.STORE_STAFF, "S001")
STAFF_S2 = Principal("staff2", Role.STORE_STAFF, "S002")
ADMIN = Principal("admin", Role.MERCHANT_ADMIN)
HOME = Address("Li Lei", "13700000000", "Shanghai", "1 Road")
PICKUP = Fulfilment(FulfilmentType.PICKUP, store_id="S001")
DELIVERY = Fulfilment(FulfilmentType.DELIVERY, address=HOME)


@pytest.fixture
def shop() -> OrderingOnFakes:
    return ordering_on_fakes(
        products=[TEA, CUP],
        stock={("TEA-1", "WH"): 10, ("CUP-1", "WH"): 5, ("TEA-1", "S001"): 3},
        locations=[Location("WH", "warehouse", "仓"), Location("S001", "store", "静安", "Shanghai")],
        payment_window_s=60,
    )


def place(shop: OrderingOnFakes, lines: dict[str, int], fulfilment: Fulfilment | None = None) -> Order:
    cart = Cart(tuple(CartLine(s, q) for s, q in lines.items()), (), fulfilment or DELIVERY)
    stored = shop.placement.place_order(cart, "alice", IdempotentRequest.of("orders:alice", None, lines))
    return shop.lifecycle.load(stored.body["order_id"])


def pay(shop: OrderingOnFakes, order: Order, txn: str = "t-1", amount: int | None = None):
    notice = PaymentNotice(order.order_id, txn, order.total_fen if amount is None else amount, "2026-11-23T00:00:00Z")
    return shop.lifecycle.apply_payment(notice)


def paid_pickup(shop: OrderingOnFakes) -> Order:
    order = place(shop, {"TEA-1": 1}, PICKUP)
    pay(shop, order)
    return shop.lifecycle.ready_for_pickup(order.order_id, STAFF_S1)


# -- payment -----------------------------------------------------------------------------------
def test_paying_commits_the_held_units_once_and_a_duplicate_changes_nothing(shop):
    order = place(shop, {"TEA-1": 2, "CUP-1": 1})
    first, second = pay(shop, order), pay(shop, order)
    assert (first.outcome, second.outcome) == ("paid", "duplicate")
    assert first.order.status is Status.PAID and first.order.paid_at_ms == shop.clock.now_ms()
    assert shop.tables.stock_of("TEA-1", "WH") == (8, 0, 8)
    assert shop.tables.stock_of("CUP-1", "WH") == (4, 0, 4)
    assert shop.tables.events_of(order.order_id) == ["OrderPaid", "OrderPlaced"]
    assert shop.reads.get_payment("t-1").status == "APPLIED"


def test_a_wrong_amount_changes_nothing(shop):
    order = place(shop, {"TEA-1": 1})
    with pytest.raises(AmountMismatch) as refused:
        pay(shop, order, amount=order.total_fen - 1)
    assert refused.value.details == {"expected_fen": order.total_fen, "got_fen": order.total_fen - 1}
    assert shop.reads.get(order.order_id) == order and shop.reads.get_payment("t-1") is None


def test_a_payment_after_the_window_expires_the_order_and_is_recorded_for_refund(shop):
    order = place(shop, {"TEA-1": 4})
    shop.clock.advance(61)  # past the window, before the sweeper
    outcome = pay(shop, order, txn="late-1")
    assert outcome.outcome == "needs_refund" and outcome.order.status is Status.CANCELLED
    assert outcome.order.cancel_reason == "expired"
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 0, 10)
    payment = shop.reads.get_payment("late-1")
    assert payment.status == "NEEDS_REFUND" and payment.reason == "payment arrived after the payment window"
    assert shop.tables.events_of(order.order_id) == ["OrderExpired", "OrderPlaced", "PaymentNeedsRefund"]


def test_a_payment_of_a_cancelled_order_is_recorded_once_and_its_repeat_is_a_duplicate(shop):
    order = place(shop, {"TEA-1": 1})
    shop.lifecycle.cancel(order.order_id, ALICE)
    first, again = pay(shop, order, txn="wx-9"), pay(shop, order, txn="wx-9")
    assert (first.outcome, again.outcome) == ("needs_refund", "duplicate")
    assert shop.reads.get(order.order_id).status is Status.CANCELLED
    assert shop.reads.get_payment("wx-9").reason == "order is CANCELLED"
    assert shop.tables.events_of(order.order_id).count("PaymentNeedsRefund") == 1


def test_a_second_transaction_for_a_paid_order_is_flagged_and_the_order_stays_paid(shop):
    order = place(shop, {"TEA-1": 1})
    pay(shop, order, txn="a")
    outcome = pay(shop, order, txn="b")
    assert outcome.outcome == "needs_refund" and outcome.order.status is Status.PAID
    assert shop.reads.get_payment("b").reason == "order already paid by a"
    assert shop.tables.stock_of("TEA-1", "WH") == (9, 0, 9)  # committed once


def alarms() -> int:
    """How many times the PaymentsNeedingRefund alarm metric was raised in this process so far."""
    return len(observability.metrics.metric_set.get("PaymentsNeedingRefund", {}).get("Value", []))


def notice(order_id: str, txn: str, amount: int = 10000) -> PaymentNotice:
    return PaymentNotice(order_id, txn, amount, "2026-11-23T00:00:00Z")


def test_a_payment_for_no_order_of_ours_is_recorded_for_refund_once_and_raises_the_alarm(shop):
    # Given no order o-none, and the alarm as it stands
    raised = alarms()
    # When the provider notifies a payment for it, twice
    first = shop.lifecycle.apply_payment(notice("o-none", "wx-lost"))
    again = shop.lifecycle.apply_payment(notice("o-none", "wx-lost"))
    # Then the money is recorded once as needing a refund, announced once, and listed for finance
    assert (first.outcome, again.outcome) == ("needs_refund", "duplicate")
    assert first.view() == {"order_id": "o-none", "outcome": "needs_refund"}
    recorded = shop.reads.get_payment("wx-lost")
    assert (recorded.order_id, recorded.status, recorded.reason) == ("o-none", "NEEDS_REFUND", "no such order")
    assert shop.tables.events_of("o-none") == ["PaymentNeedsRefund"]
    event = next(e for e in shop.tables.events if e.aggregate_id == "o-none")
    assert "customer_id" not in event.payload and event.payload["amount_fen"] == 10000
    assert alarms() == raised + 1
    assert shop.lifecycle.payments_needing_refund(10, None) == ([recorded], None)


def test_a_transaction_id_of_another_order_is_recorded_for_refund_and_pays_nothing(shop):
    # Given order X paid by wx-1, and order Y unpaid
    x, y = place(shop, {"TEA-1": 1}), place(shop, {"TEA-1": 1})
    pay(shop, x, txn="wx-1")
    raised = alarms()
    # When wx-1 is notified again, for Y, twice
    first, again = pay(shop, y, txn="wx-1"), pay(shop, y, txn="wx-1")
    # Then Y is not paid (its units stay held), X keeps its payment, and the clash is recorded once
    assert (first.outcome, again.outcome) == ("needs_refund", "duplicate")
    assert shop.reads.get(y.order_id) == y and shop.reads.get(x.order_id).status is Status.PAID
    assert shop.tables.stock_of("TEA-1", "WH") == (9, 1, 8)
    assert shop.reads.get_payment("wx-1").order_id == x.order_id
    listed, _ = shop.lifecycle.payments_needing_refund(10, None)
    assert [(p.transaction_id, p.order_id, p.reason) for p in listed] == [
        ("wx-1", y.order_id, f"transaction id already recorded for order {x.order_id}")
    ]
    assert shop.tables.events_of(y.order_id) == ["OrderPlaced", "PaymentNeedsRefund"]
    assert alarms() == raised + 1
    # And Y can still be paid by a transaction of its own
    assert pay(shop, y, txn="wx-2").outcome == "paid"


def test_a_transaction_id_of_another_order_sent_for_no_order_is_recorded_beside_it(shop):
    x = place(shop, {"TEA-1": 1})
    pay(shop, x, txn="wx-1")
    assert shop.lifecycle.apply_payment(notice("o-none", "wx-1")).outcome == "needs_refund"
    listed, _ = shop.lifecycle.payments_needing_refund(10, None)
    assert [(p.order_id, p.status) for p in listed] == [("o-none", "NEEDS_REFUND")]
    assert shop.reads.get_payment("wx-1").status == "APPLIED"


def test_finance_lists_payments_needing_refund_newest_first_a_page_at_a_time(shop):
    for i in range(3):
        shop.lifecycle.apply_payment(notice(f"o-gone-{i}", f"wx-{i}"))
        shop.clock.advance(1)
    order = place(shop, {"TEA-1": 1})
    pay(shop, order, txn="wx-ok")  # applied: not listed
    page, cursor = shop.lifecycle.payments_needing_refund(2, None)
    rest, end = shop.lifecycle.payments_needing_refund(2, cursor)
    assert [p.transaction_id for p in page + rest] == ["wx-2", "wx-1", "wx-0"] and end is None


# -- cancellation and expiry -------------------------------------------------------------------
def test_only_its_customer_cancels_and_the_units_go_back_once(shop):
    order = place(shop, {"TEA-1": 3})
    with pytest.raises(NotFound):
        shop.lifecycle.cancel(order.order_id, BOB)
    cancelled = shop.lifecycle.cancel(order.order_id, ALICE)
    assert cancelled.status is Status.CANCELLED and cancelled.cancel_reason == "customer"
    with pytest.raises(InvalidTransition):
        shop.lifecycle.cancel(order.order_id, ALICE)
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 0, 10)
    assert shop.tables.events_of(order.order_id) == ["OrderCancelled", "OrderPlaced"]


def test_the_sweeper_expires_due_orders_once_and_leaves_the_others(shop):
    due = place(shop, {"TEA-1": 2})
    shop.clock.advance(30)
    not_yet = place(shop, {"TEA-1": 1})
    paid = place(shop, {"CUP-1": 1})
    pay(shop, paid)
    shop.clock.advance(31)  # `due` is 61 s old, `not_yet` 31 s
    assert shop.lifecycle.expire_due() == 1
    assert shop.lifecycle.expire_due() == 0
    assert shop.reads.get(due.order_id).status is Status.CANCELLED
    assert shop.reads.get(not_yet.order_id).status is Status.PENDING_PAYMENT
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 1, 9)


def test_the_sweeper_stops_at_its_limit(shop):
    for _ in range(3):
        place(shop, {"TEA-1": 1})
    shop.clock.advance(61)
    assert shop.lifecycle.expire_due(limit=2) == 2
    assert shop.lifecycle.expire_due() == 1


def test_a_flash_order_gives_its_units_to_the_sale_not_to_the_stock_item(shop):
    quote = price_cart(
        [CartLine("TEA-1", 2)], {"TEA-1": TEA}, is_member=False, fulfilment_type="delivery", rules=PricingRules()
    )
    flash = Placement(quote, "WH", {"type": "delivery"}, payment_window_s=60, flash_sale_id="fs-1")

    class TakenBefore:
        def hold(self, uow: OrderingUnitOfWork, order: Order) -> None:
            """The units left the sale's shard before the order was written."""

    first = shop.placement.place(flash, "alice", IdempotentRequest.of("f", None, {}), holder=TakenBefore())
    second = shop.placement.place(flash, "alice", IdempotentRequest.of("f", None, {}), holder=TakenBefore())
    shop.lifecycle.cancel(first.body["order_id"], ALICE)
    pay(shop, shop.reads.get(second.body["order_id"]))
    assert shop.releaser.returned == {"fs-1": 2}
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 0, 10)  # never held, never committed


# -- fulfilment --------------------------------------------------------------------------------
def test_a_delivery_is_shipped_by_staff_then_completed_by_its_customer(shop):
    order = place(shop, {"TEA-1": 1})
    pay(shop, order)
    with pytest.raises(InvalidTransition):
        shop.lifecycle.complete(order.order_id, ALICE)
    shipped = shop.lifecycle.ship(order.order_id, "SF123456", ADMIN)
    assert shipped.status is Status.FULFILLING and shipped.tracking_number == "SF123456"
    with pytest.raises(NotFound):
        shop.lifecycle.complete(order.order_id, BOB)
    done = shop.lifecycle.complete(order.order_id, ALICE)
    assert [h.action for h in done.history] == ["place", "pay", "ship", "complete"]
    assert shop.tables.events_of(order.order_id) == ["OrderCompleted", "OrderFulfilled", "OrderPaid", "OrderPlaced"]


def test_only_the_fulfilling_store_or_an_admin_fulfils(shop):
    order = place(shop, {"TEA-1": 1}, PICKUP)
    pay(shop, order)
    with pytest.raises(Forbidden):
        shop.lifecycle.ready_for_pickup(order.order_id, STAFF_S2)
    with pytest.raises(RuleViolation):
        shop.lifecycle.ship(order.order_id, "SF1", STAFF_S1)  # pickup orders are handed over
    with pytest.raises(RuleViolation):
        shop.lifecycle.complete(order.order_id, STAFF_S1)


def test_the_right_pickup_code_completes_the_order(shop):
    ready = paid_pickup(shop)
    assert ready.pickup_code is not None and len(ready.pickup_code) == 6
    done = shop.lifecycle.hand_over(ready.order_id, ready.pickup_code, STAFF_S1)
    assert done.status is Status.COMPLETED
    assert shop.tables.stock_of("TEA-1", "S001") == (2, 0, 2)


def test_wrong_pickup_codes_are_counted_and_the_sixth_try_is_refused_even_with_the_code(shop):
    ready = paid_pickup(shop)
    wrong = "000000" if ready.pickup_code != "000000" else "111111"
    left = []
    for _ in range(5):
        with pytest.raises(WrongPickupCode) as refused:
            shop.lifecycle.hand_over(ready.order_id, wrong, STAFF_S1)
        left.append(refused.value.details["attempts_left"])
    assert left == [4, 3, 2, 1, 0]
    with pytest.raises(LimitReached):  # 429
        shop.lifecycle.hand_over(ready.order_id, ready.pickup_code, STAFF_S1)
    assert shop.reads.get(ready.order_id).pickup_attempts == 5


def locked_out(shop: OrderingOnFakes) -> Order:
    ready = paid_pickup(shop)
    wrong = "000000" if ready.pickup_code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(WrongPickupCode):
            shop.lifecycle.hand_over(ready.order_id, wrong, STAFF_S1)
    return shop.reads.get(ready.order_id)


def test_a_merchant_admin_lifts_the_lock_out_audited_and_the_right_code_then_hands_over(shop):
    # Given a pickup locked after 5 wrong codes, refusing even the right one and even an admin
    order = locked_out(shop)
    with pytest.raises(LimitReached):
        shop.lifecycle.hand_over(order.order_id, order.pickup_code, ADMIN)
    # When a merchant admin resets it
    shop.clock.advance(30)
    reset = shop.lifecycle.reset_pickup_attempts(order.order_id, ADMIN)
    # Then the count starts again, the code is the same, and the history says who and when
    assert (reset.pickup_attempts, reset.pickup_code, reset.status) == (0, order.pickup_code, Status.FULFILLING)
    entry = reset.history[-1]
    assert (entry.action, entry.by, entry.at_ms) == ("reset_pickup_attempts", "admin", shop.clock.now_ms())
    assert entry.to_dict()["note"] == "after 5 wrong codes"
    # And the store hands it over with the customer's code
    assert shop.lifecycle.hand_over(order.order_id, order.pickup_code, STAFF_S1).status is Status.COMPLETED


def test_only_a_merchant_admin_resets_and_only_a_pickup_waiting_for_its_code(shop):
    order = locked_out(shop)
    for who in (STAFF_S1, Principal("G001", Role.GUIDE, "S001"), ALICE):
        with pytest.raises(Forbidden):
            shop.lifecycle.reset_pickup_attempts(order.order_id, who)
    assert shop.reads.get(order.order_id).pickup_attempts == 5
    delivery = place(shop, {"TEA-1": 1})
    with pytest.raises(InvalidTransition):  # 409: not FULFILLING
        shop.lifecycle.reset_pickup_attempts(delivery.order_id, ADMIN)
    with pytest.raises(NotFound):
        shop.lifecycle.reset_pickup_attempts("o-none", ADMIN)
    second = place(shop, {"TEA-1": 1}, PICKUP)
    pay(shop, second, txn="t-2")
    untouched = shop.lifecycle.ready_for_pickup(second.order_id, STAFF_S1)
    assert shop.lifecycle.reset_pickup_attempts(untouched.order_id, ADMIN) == untouched  # nothing to lift


# -- who sees what -----------------------------------------------------------------------------
def test_an_order_is_visible_to_its_customer_its_store_and_head_office_only(shop):
    order = place(shop, {"TEA-1": 1}, PICKUP)
    for who in (ALICE, STAFF_S1, ADMIN, Principal("fin", Role.FINANCE)):
        assert shop.lifecycle.load_visible(order.order_id, who) == order
    for who in (BOB, STAFF_S2):
        with pytest.raises(NotFound):
            shop.lifecycle.load_visible(order.order_id, who)


# -- another writer in between -----------------------------------------------------------------
class Meddling(MemoryUnitsOfWork):
    """Before each of the first `times` commits, another writer changes the stored order."""

    def __init__(self, units: MemoryUnitsOfWork, order_id: str, change: Callable[[Order], Order], times: int) -> None:
        super().__init__(units.tables)
        self.order_id, self.change, self.times = order_id, change, times

    def __call__(self, *, retry_conflicts: bool = True) -> MemoryOrderingUnitOfWork:
        uow = super().__call__(retry_conflicts=retry_conflicts)
        commit = uow.commit

        def meddled_commit() -> None:
            if self.times > 0:
                self.times -= 1
                stored = self.tables.orders[self.order_id]
                self.tables.orders[self.order_id] = self.change(stored)
            commit()

        uow.commit = meddled_commit  # type: ignore[method-assign]
        return uow


def test_a_cancel_that_meets_a_payment_decides_again_on_the_paid_order(shop):
    order = place(shop, {"TEA-1": 1})

    def paid_meanwhile(stored: Order) -> Order:
        return stored.transition(Action.PAY, "payment", shop.clock.now_ms(), transaction_id="t")

    meddling = Meddling(shop.units, order.order_id, paid_meanwhile, times=1)
    lifecycle = OrderLifecycle(meddling, shop.reads, shop.releaser, shop.clock)
    with pytest.raises(InvalidTransition):  # read again: a PAID order cannot be cancelled
        lifecycle.cancel(order.order_id, ALICE)
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 1, 9)  # the cancel's release never applied


def test_an_order_that_keeps_changing_is_a_concurrent_update_after_a_few_tries(shop):
    order = place(shop, {"TEA-1": 1})

    def bumped(stored: Order) -> Order:
        return replace(stored, version=stored.version + 1)

    meddling = Meddling(shop.units, order.order_id, bumped, times=99)
    lifecycle = OrderLifecycle(meddling, shop.reads, shop.releaser, shop.clock)
    with pytest.raises(ConcurrentUpdate):  # 409: the client may retry
        lifecycle.cancel(order.order_id, ALICE)
    assert shop.tables.stock_of("TEA-1", "WH") == (10, 1, 9)
