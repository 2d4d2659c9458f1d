"""Examples of the pricing rules (shared/ordering/pricing.py); the invariants are in test_pricing_properties.py."""

from __future__ import annotations

import pytest

from shared.catalog.model import Product
from shared.kernel.errors import DuplicateSku, RuleViolation, UnknownCoupon, UnknownSku
from shared.kernel.money import allocate
from shared.ordering.pricing import CartLine, PricedLine, PricingRules, price_cart, refund_amount
from shared.promotions.model import Kind, Promotion, Tier, promotion_problems
from tests.fakes.promotions import full_300_off_30

TEA = Product(sku="TEA", name="龙井", price_fen=16800, member_price_fen=15800)
MUG = Product(sku="MUG", name="杯", price_fen=2500)
PEN = Product(sku="PEN", name="笔", price_fen=300)
PRODUCTS = {p.sku: p for p in (TEA, MUG, PEN)}
RULES = PricingRules()
PROMOTIONS = (full_300_off_30(),)  # the 满300减30 that was a setting, as a promotion


def quote(lines, *, member=False, fulfilment="delivery", rules=RULES, promotions=PROMOTIONS, **kwargs):
    return price_cart(
        [CartLine(sku, qty) for sku, qty in lines],
        PRODUCTS,
        is_member=member,
        fulfilment_type=fulfilment,
        rules=rules,
        promotions=promotions,
        **kwargs,
    )


def test_a_small_delivery_pays_list_price_and_flat_shipping():
    # Given a cart under both thresholds, When it is quoted for delivery
    q = quote([("MUG", 2)])
    # Then it pays list price and 10 yuan shipping
    assert q.to_dict() == {
        "lines": [{"sku": "MUG", "qty": 2, "unit_price_fen": 2500, "discount_fen": 0, "payable_fen": 5000}],
        "subtotal_fen": 5000,
        "discount_fen": 0,
        "shipping_fen": 1000,
        "total_fen": 6000,
        "applied": [],
        "promotions": [],
    }


def test_pickup_is_free_and_same_city_costs_more():
    assert quote([("MUG", 1)], fulfilment="pickup").shipping_fen == 0
    assert quote([("MUG", 1)], fulfilment="same_city").shipping_fen == 1500
    assert quote([("MUG", 1)], fulfilment="ship_from_store").shipping_fen == 1000


def test_members_pay_the_member_price_in_the_unit_price_not_as_a_discount():
    q = quote([("TEA", 1), ("MUG", 1)], member=True)
    assert q.line("TEA").unit_price_fen == 15800
    assert q.line("MUG").unit_price_fen == 2500  # no member price: list price
    assert q.discount_fen == 0 and q.applied == ()


def test_full_reduction_is_allocated_to_lines_by_value_and_lines_sum_to_total():
    # Given 2 x 168 + 1 x 25 + 1 x 3 = 364 yuan: over the 300 threshold
    q = quote([("TEA", 2), ("MUG", 1), ("PEN", 1)])
    # Then 30 yuan come off, split 33600 : 2500 : 300 by largest remainder
    assert [a.to_dict() for a in q.applied] == [{"kind": "promotion", "id": "FULL-300-OFF-30", "amount_fen": 3000}]
    assert [line.discount_fen for line in q.lines] == [2769, 206, 25]
    assert q.discount_fen == 3000
    assert q.shipping_fen == 0  # 334 yuan after the reduction: free shipping
    assert sum(line.payable_fen for line in q.lines) + q.shipping_fen == q.total_fen == 36400 - 3000


def test_the_promotion_threshold_uses_member_prices():
    # Given one tea and some mugs: 168 + 125 = 293 yuan at list price, 158 + 125 = 283 for a member
    assert quote([("TEA", 1), ("MUG", 5)]).discount_fen == 0
    assert quote([("TEA", 1), ("MUG", 5)], member=True).discount_fen == 0  # 158 + 125 = 283
    assert quote([("TEA", 1), ("MUG", 6)], member=True).discount_fen == 3000  # 158 + 150 = 308


def test_free_shipping_is_judged_after_discounts():
    rules = PricingRules(free_shipping_threshold_fen=30000)
    # 2 x 168 = 336, minus 30 = 306: still free; a member's 2 x 158 = 316 - 30 = 286: not free
    assert quote([("TEA", 2)], rules=rules).shipping_fen == 0
    assert quote([("TEA", 2)], member=True, rules=rules).shipping_fen == 1000


def test_a_flash_price_replaces_the_list_and_member_price_and_skips_the_promotion():
    q = quote([("TEA", 2), ("MUG", 1)], member=True, unit_price_override={"TEA": 9900})
    assert q.line("TEA").unit_price_fen == 9900
    assert q.discount_fen == 0  # 25 yuan of eligible merchandise: under the threshold
    q = quote([("TEA", 1), ("MUG", 13)], unit_price_override={"TEA": 9900})
    assert q.line("TEA").discount_fen == 0 and q.line("MUG").discount_fen == 3000


def test_unknown_or_duplicate_skus_and_any_coupon_are_refused():
    with pytest.raises(UnknownSku) as unknown:
        quote([("MUG", 1), ("NOPE", 1), ("NADA", 2)])
    assert unknown.value.details == {"sku": "NOPE", "skus": ["NOPE", "NADA"]}
    with pytest.raises(DuplicateSku):
        quote([("MUG", 1), ("MUG", 2)])
    with pytest.raises(UnknownCoupon) as coupon:
        quote([("MUG", 1)], coupon_ids=["C-1"])
    assert coupon.value.details["coupon_id"] == "C-1"
    with pytest.raises(RuleViolation):
        quote([])


def test_a_promotion_refuses_a_reduction_larger_than_its_threshold():
    too_much = Promotion("P", Kind.SPEND_THRESHOLD, 0, 1, tiers=(Tier(threshold_fen=1000, off_fen=1001),))
    assert promotion_problems(too_much) == [
        {"field": "tiers.0.off_fen", "problem": "must not exceed its threshold_fen"}
    ]
    assert quote([("TEA", 2)], promotions=()).discount_fen == 0  # no promotion running: nothing off


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (10, [0, 5, 5], [0, 5, 5]),
        (1, [1, 3], [0, 1]),
        (0, [0, 0], [0, 0]),
        (7, [2], [7]),
        (5, [1, 1, 1, 1], [2, 1, 1, 1]),
    ],
)
def test_allocate_by_largest_remainder(amount, weights, expected):
    assert allocate(amount, weights) == expected


def test_allocate_refuses_what_cannot_be_split():
    with pytest.raises(ValueError):
        allocate(1, [0, 0])
    with pytest.raises(ValueError):
        allocate(-1, [1])


def test_refunds_keep_the_odd_fen_for_the_last_units():
    line = PricedLine("TEA", 3, 400, 2, 1198)  # 399.33 per unit
    assert [refund_amount(line, 1, done) for done in range(3)] == [399, 399, 400]
    assert refund_amount(line, 3) == 1198
    with pytest.raises(RuleViolation):
        refund_amount(line, 2, already_refunded_qty=2)
