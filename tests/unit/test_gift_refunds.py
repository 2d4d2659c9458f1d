"""Gifts (满赠) and thresholds on partial refunds (docs/pricing.md, "Refunds below a threshold"),
pure: an order priced by `price_cart` with its promotions, refunded through `Order.refund`.

- unshipped (PAID): the gift units the lines left no longer earn come back with the refund, at 0;
- shipped: the customer keeps them and pays their value out of the refund, deducted from the
  refund's lines by largest remainder; returning them later pays the same fen back to those lines;
  a refund too small to pay for them is refused (`gift_must_be_returned`);
- a 满减 promotion or a 满 X 减 Y coupon: the refunded lines pay back what they paid, their
  allocated share of the saving already off, and nothing more is taken back.
A hypothesis property over random gift orders and random sequences of partial refunds, and the
books through the commission ledger (paid - refunded = merchant net + commissions, after a
deduction, its payback and the last refund).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.catalog.model import Product
from shared.commission.ledger import CommissionLedger
from shared.commission.rules import CommissionRulesAdmin
from shared.coupons.checkout import CouponAtCheckout
from shared.coupons.model import Benefit, Coupon, Kind, Terms, Window
from shared.kernel.clock import FakeClock, iso
from shared.kernel.credited import Credited
from shared.kernel.errors import RuleViolation
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.consumers import RetryPolicy, Runtime, consume
from shared.ordering.model import Action, Order, Status, charged_units
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from shared.promotions.model import Kind as PromotionKind
from shared.promotions.model import Promotion, Tier
from tests.events import load
from tests.fakes.commission import MemoryCatalogue, MemoryLedger, MemoryRules
from tests.fakes.messaging import MemoryMarks, MemoryQueue

NOW = 1_767_225_600_000
PRODUCTS = {
    "TEA": Product(sku="TEA", name="茶", price_fen=12000),
    "BAG": Product(sku="BAG", name="袋", price_fen=9000),
    "PEN": Product(sku="PEN", name="笔", price_fen=333),
    "CUP": Product(sku="CUP", name="杯", price_fen=3333),
    "VASE": Product(sku="VASE", name="瓶", price_fen=15000),
}


def gift_promotion(*tiers: tuple[int, str, int], pid: str = "GIFT") -> Promotion:
    return Promotion(
        pid,
        PromotionKind.GIFT,
        NOW - 1,
        NOW + 10**9,
        tiers=tuple(Tier(threshold_fen=t, gift_sku=sku, gift_qty=q) for t, sku, q in tiers),
    )


def order_of(lines: dict[str, int], promotions=(), coupons=(), status: Status = Status.PAID) -> Order:
    quote = price_cart(
        [CartLine(s, q) for s, q in lines.items()],
        PRODUCTS,
        is_member=False,
        fulfilment_type="pickup",
        rules=PricingRules(),
        promotions=promotions,
        coupon_ids=[c.coupon_id for c in coupons],
        coupons={c.coupon_id: c for c in coupons},
    )
    order = Order.place("o1", "alice", quote, {"type": "pickup"}, "WH", NOW, 900)
    order = order.transition(Action.PAY, "alice", NOW, transaction_id="t1")
    if status is not Status.PAID:
        order = order.transition(Action.READY_FOR_PICKUP, "staff", NOW)
    if status is Status.COMPLETED:
        order = order.transition(Action.HAND_OVER, "staff", NOW)
    return order


def refund(order: Order, units: dict[str, int]) -> tuple[Order, list[dict], int]:
    after, lines = order.refund(units, "admin", NOW, "r")
    assert sum(line["amount_fen"] for line in lines) == after.refunded_fen - order.refunded_fen
    return after, lines, after.refunded_fen - order.refunded_fen


def test_a_shipped_gift_kept_below_its_threshold_is_paid_for_then_paid_back_when_it_comes_back():
    # Given 满200赠杯 (a cup, 33.33 yuan) on 2 teas (240 yuan), shipped
    order = order_of({"TEA": 2}, [gift_promotion((20000, "CUP", 1))], status=Status.FULFILLING)
    assert [line.sku for line in order.lines] == ["TEA", "CUP"] and order.total_fen == 24000
    # When one tea comes back (120 yuan left: below 200) and the cup stays
    order, lines, amount = refund(order, {"TEA": 1})
    # Then the cup's value is deducted: 120.00 - 33.33
    assert amount == 12000 - 3333 and lines == [{"sku": "TEA", "qty": 1, "amount_fen": 8667}]
    assert order.gift_charges == {"CUP": {"TEA": 3333}}
    # When the cup comes back after all, the 33.33 goes back to the tea line it was taken from
    order, lines, amount = refund(order, {"CUP": 1})
    assert amount == 3333 and order.gift_charges == {}
    assert lines == [{"sku": "CUP", "qty": 1, "amount_fen": 0}, {"sku": "TEA", "qty": 0, "amount_fen": 3333}]
    # And the last tea refunds its 120: every refund sums to what was paid
    order, _, amount = refund(order, {"TEA": 1})
    assert amount == 12000 and order.refunded_fen == 24000 and order.status is Status.REFUNDED


def test_a_shipped_order_refunded_in_every_line_but_the_gift_keeps_the_gifts_value_and_its_status():
    order = order_of({"TEA": 2}, [gift_promotion((20000, "CUP", 1))], status=Status.COMPLETED)
    order, _, amount = refund(order, {"TEA": 2})
    assert amount == 24000 - 3333 and order.status is Status.COMPLETED  # the cup is the customer's, paid
    order, _, amount = refund(order, {"CUP": 1})
    assert amount == 3333 and order.refunded_fen == 24000 and order.status is Status.REFUNDED


def test_an_unshipped_orders_gift_comes_back_with_the_refund_that_breaks_its_threshold():
    order = order_of({"TEA": 2}, [gift_promotion((20000, "CUP", 1))])
    # One tea back leaves 120 yuan, below 200: the cup, never handed over, comes back with it at 0
    order, lines, amount = refund(order, {"TEA": 1})
    assert amount == 12000 and order.gift_charges == {}
    assert lines == [{"sku": "TEA", "qty": 1, "amount_fen": 12000}, {"sku": "CUP", "qty": 1, "amount_fen": 0}]
    assert order.refunded_qty == {"TEA": 1, "CUP": 1}


def test_a_refund_that_keeps_the_threshold_leaves_the_gift_alone():
    order = order_of({"TEA": 2, "PEN": 3}, [gift_promotion((20000, "CUP", 1))], status=Status.FULFILLING)
    order, lines, amount = refund(order, {"PEN": 3})  # 240 yuan of tea left: still above 200
    assert amount == 999 and order.gift_charges == {} and len(lines) == 1


def test_a_lower_tier_still_reached_keeps_its_units_and_charges_the_rest():
    # 满100赠1, 满200赠2 cups; 2 teas earn 2, one tea earns 1
    promotion = gift_promotion((10000, "CUP", 1), (20000, "CUP", 2))
    order = order_of({"TEA": 2}, [promotion], status=Status.FULFILLING)
    assert order.line("CUP").qty == 2
    order, _, amount = refund(order, {"TEA": 1})
    assert amount == 12000 - 3333 and charged_units(order.gifts[0], order.gift_charges) == 1
    unshipped = order_of({"TEA": 2}, [promotion])
    unshipped, lines, amount = refund(unshipped, {"TEA": 1})
    assert amount == 12000 and {"sku": "CUP", "qty": 1, "amount_fen": 0} in lines


def test_a_refund_too_small_to_pay_for_the_gift_must_bring_it_back():
    # 满200赠瓶 (a 150-yuan vase) on tea 120 + bag 90: the bag's 90 cannot pay for the vase
    order = order_of({"TEA": 1, "BAG": 1}, [gift_promotion((20000, "VASE", 1))], status=Status.FULFILLING)
    with pytest.raises(RuleViolation) as refused:
        refund(order, {"BAG": 1})
    assert refused.value.details["reason"] == "gift_must_be_returned"
    assert (refused.value.details["gift_sku"], refused.value.details["gift_qty"]) == ("VASE", 1)
    assert refused.value.details["deduction_fen"] == 15000
    order, _, amount = refund(order, {"BAG": 1, "VASE": 1})
    assert amount == 9000 and order.gift_charges == {}


def test_the_deduction_is_spread_over_the_refunds_lines_by_largest_remainder():
    # Tea 120 + pen 3.33 x 3 = 129.99, 满125 gives a cup (33.33): both lines refunded at once
    order = order_of({"TEA": 1, "PEN": 3}, [gift_promotion((12500, "CUP", 1))], status=Status.FULFILLING)
    order, lines, amount = refund(order, {"TEA": 1, "PEN": 1})
    assert amount == 12000 + 333 - 3333
    by_sku = {line["sku"]: line["amount_fen"] for line in lines}
    # 3,333 over 12,000 : 333 -> 3,243.0 and 89.99..., largest remainder
    assert by_sku == {"TEA": 12000 - 3243, "PEN": 333 - 90}
    assert order.gift_charges == {"CUP": {"TEA": 3243, "PEN": 90}}


def test_the_terms_are_the_orders_not_the_promotions_now():
    promotion = gift_promotion((20000, "CUP", 1))
    order = order_of({"TEA": 2}, [promotion], status=Status.FULFILLING)
    assert order.gifts[0].tiers == ((20000, 0, 1),) and order.gifts[0].value_fen == 3333
    assert order.gifts[0].skus == ("TEA",)


def test_a_threshold_promotion_or_coupon_broken_by_a_partial_refund_refunds_the_allocated_amount():
    # 满200减20 as a promotion, and as a coupon (满 X 减 Y): 120 + 90 = 210, 20 off allocated 120 : 90
    spend = Promotion(
        "OFF", PromotionKind.SPEND_THRESHOLD, NOW - 1, NOW + 10**9, tiers=(Tier(threshold_fen=20000, off_fen=2000),)
    )
    coupon = CouponAtCheckout(
        Coupon(
            coupon_id="cp1",
            template_id="ct1",
            customer_id="alice",
            code="CODE",
            name="券",
            terms=Terms(Benefit(Kind.THRESHOLD, amount_fen=2000, threshold_fen=20000)),
            use_window=Window(NOW - 1000, NOW + 1000),
            claimed_at_ms=NOW - 1000,
            shard=0,
        )
    )
    for order in (order_of({"TEA": 1, "BAG": 1}, [spend]), order_of({"TEA": 1, "BAG": 1}, coupons=[coupon])):
        assert [line.payable_fen for line in order.lines] == [12000 - 1143, 9000 - 857]
        # The bag comes back (120 left, below 200): it pays back what it paid, its share already off
        after, _, amount = refund(order, {"BAG": 1})
        assert amount == 9000 - 857 and after.gift_charges == {}
        after, _, amount = refund(after, {"TEA": 1})
        assert after.refunded_fen == order.total_fen and after.status is Status.REFUNDED


# -- the property --------------------------------------------------------------------------------
SKUS = ("TEA", "BAG", "PEN")
GIFTS = ("CUP", "VASE")


@st.composite
def gift_orders(draw):
    lines = draw(st.dictionaries(st.sampled_from(SKUS), st.integers(1, 4), min_size=1))
    promotions = []
    for i, gift in enumerate(draw(st.lists(st.sampled_from(GIFTS), unique=True, min_size=1, max_size=2))):
        thresholds = sorted(draw(st.lists(st.integers(1, 60_000), unique=True, min_size=1, max_size=3)))
        tiers = tuple((t, gift, q + 1) for q, t in enumerate(thresholds))
        promotions.append(gift_promotion(*tiers, pid=f"G{i}"))
    if draw(st.booleans()):
        promotions.append(
            Promotion("OFF", PromotionKind.SPEND_THRESHOLD, NOW - 1, NOW + 10**9, tiers=(Tier(20000, off_fen=1999),))
        )
    status = draw(st.sampled_from([Status.PAID, Status.FULFILLING, Status.COMPLETED]))
    return order_of(lines, promotions, status=status)


def _kept_beyond_earned(order: Order) -> dict[str, int]:
    shape = {line.sku: (line.qty, line.unit_price_fen) for line in order.lines}
    return {
        g.sku: max(0, shape[g.sku][0] - order.refunded_qty.get(g.sku, 0) - g.earned(shape, order.refunded_qty))
        for g in order.gifts
    }


@settings(max_examples=300, deadline=None)
@given(gift_orders(), st.data())
def test_property_refunds_never_exceed_what_was_paid_and_no_gift_is_kept_below_threshold_unpaid(order, data):
    paid = order.total_fen
    while order.status is not Status.REFUNDED:
        open_units = {line.sku: line.qty - order.refunded_qty.get(line.sku, 0) for line in order.lines}
        open_units = {s: q for s, q in open_units.items() if q}
        skus = data.draw(st.lists(st.sampled_from(sorted(open_units)), unique=True, min_size=1))
        units = {s: data.draw(st.integers(1, open_units[s])) for s in skus}
        for _ in GIFTS:
            try:
                after, lines, amount = refund(order, units)
                break
            except RuleViolation as refused:
                assert refused.details["reason"] == "gift_must_be_returned" and order.status is not Status.PAID
                units[refused.details["gift_sku"]] = open_units[refused.details["gift_sku"]]
        else:
            after, lines, amount = refund(order, units)  # with the gifts it goes through
        assert amount >= 0 and all(line["amount_fen"] >= 0 for line in lines)
        assert after.refunded_fen <= paid
        # No gift kept below its threshold without its value deducted (unshipped: none kept at all)
        for gift in after.gifts:
            beyond = _kept_beyond_earned(after)[gift.sku]
            if after.status is Status.PAID:
                assert beyond == 0 or open_units.get(gift.sku, 0) == 0
            assert sum(after.gift_charges.get(gift.sku, {}).values()) == beyond * gift.value_fen
        order = after
    # Everything refunded: the refunds sum to exactly what was paid, nothing stays charged
    assert order.refunded_fen == paid and order.gift_charges == {}


# -- the books: what the commission ledger makes of these refunds ---------------------------------
def test_the_books_close_through_the_commission_ledger_with_a_gift_deduction_and_its_payback():
    clock, marks = FakeClock(), MemoryMarks()
    ledger, rules = MemoryLedger(marks), MemoryRules()
    CommissionRulesAdmin(rules, 3_000, clock).put({"rates_bp": {"store": 1_000, "guide": 500}, "fixed_fen": {}})
    credited = Credited(dealer_id="D1", store_id="S1", guide_id="G1")
    consumer = CommissionLedger(ledger, rules, MemoryCatalogue(), lambda _: credited, 0)
    runtime = Runtime(marks, MemoryQueue(), RetryPolicy(base_s=0), clock.now_ms)

    def deliver(kind: EventType, body: dict) -> None:
        clock.advance(1)
        event = DomainEvent(kind, "o1", {**body, "credited": credited.to_dict()}, occurred_at=iso(clock.now_ms()))
        record = json.loads(json.dumps(load("sqs_batch")["Records"][0]))
        record.update(messageId=event.event_id, receiptHandle="r", body=json.dumps(event.to_message()))
        assert consume({"Records": [record]}, consumer, runtime) == {"batchItemFailures": []}

    def books(order: Order) -> tuple[int, int]:
        kept = sum(e.amount_fen for e in ledger.entries("o1"))
        return order.total_fen - order.refunded_fen, kept

    order = order_of({"TEA": 2}, [gift_promotion((20000, "CUP", 1))], status=Status.FULFILLING)
    deliver(EventType.ORDER_PAID, order.event_payload())
    assert books(order) == (24000, 24000 * 1_500 // 10_000)
    for n, units in enumerate(({"TEA": 1}, {"CUP": 1}, {"TEA": 1})):
        after, lines = order.refund(units, "admin", NOW, f"r{n}")
        deliver(EventType.REFUND_ISSUED, after.event_payload(refund_id=f"r{n}", refund_lines=lines))
        stays_paid, commissions = books(after)
        # paid - refunded = merchant net + commissions: the payees keep their 15% of what stays paid
        # (the gift's deduction included, and given up again with its payback), to a fen per payee
        assert abs(commissions - stays_paid * 1_500 // 10_000) <= 2 and stays_paid - commissions >= 0
        order = after
    assert books(order) == (0, 0)  # refunded in full, gift included: nothing paid, nothing kept
