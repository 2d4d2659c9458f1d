"""Coupons in the price of a cart (shared/ordering/pricing.py with shared.coupons.checkout): a
hypothesis property over random carts, the promotion and coupons — lines sum to the total, no line
or total below 0, every coupon within what it applies to, and any partition of refunds sums to
what was paid — and the rules by example."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.catalog.model import Product
from shared.coupons.checkout import CouponAtCheckout
from shared.coupons.model import Benefit, Channel, Coupon, Kind, Scope, Status, Terms, Window
from shared.kernel.errors import CouponExpired, CouponInUse, CouponNotUsable, UnknownCoupon
from shared.ordering.pricing import CartLine, PricingRules, price_cart, refund_amount
from tests.fakes.promotions import full_300_off_30

NOW = 1_767_225_600_000
PRODUCTS = {
    "TEA": Product(sku="TEA", name="茶", price_fen=16800, category="tea"),
    "MUG": Product(sku="MUG", name="杯", price_fen=2500, category="home"),
    "PEN": Product(sku="PEN", name="笔", price_fen=333, category="office"),
}


def at_checkout(benefit: Benefit, coupon_id: str = "cp1", **terms) -> CouponAtCheckout:
    coupon = Coupon(
        coupon_id=coupon_id,
        template_id="ct1",
        customer_id="c-1",
        code="CODE",
        name="券",
        terms=Terms(benefit, **terms),
        use_window=Window(NOW - 1000, NOW + 1000),
        claimed_at_ms=NOW - 1000,
        shard=0,
    )
    return CouponAtCheckout(coupon)


RULES = PricingRules()
PROMOTIONS = (full_300_off_30(),)  # the 满300减30 that was a setting, as a promotion


def priced(lines, coupons, fulfilment="delivery", rules=RULES, overrides=None, promotions=PROMOTIONS):
    return price_cart(
        [CartLine(s, q) for s, q in lines],
        PRODUCTS,
        is_member=False,
        fulfilment_type=fulfilment,
        rules=rules,
        unit_price_override=overrides,
        coupon_ids=[c.coupon_id for c in coupons],
        coupons={c.coupon_id: c for c in coupons},
        promotions=promotions,
    )


benefits = st.one_of(
    st.builds(lambda a: Benefit(Kind.FIXED, amount_fen=a), st.integers(1, 50_000)),
    st.builds(
        lambda a, t: Benefit(Kind.THRESHOLD, amount_fen=min(a, t), threshold_fen=t),
        st.integers(1, 20_000),
        st.integers(1, 20_000),
    ),
    st.builds(
        lambda p, cap: Benefit(Kind.PERCENT, percent_off=p, cap_fen=cap),
        st.integers(1, 99),
        st.one_of(st.none(), st.integers(1, 10_000)),
    ),
)
scopes = st.sampled_from(
    [
        Scope(),
        Scope(skus=frozenset({"TEA"})),
        Scope(categories=frozenset({"home", "office"})),
        Scope(exclude_skus={"PEN"}),
    ]
)
carts = st.lists(
    st.tuples(st.sampled_from(sorted(PRODUCTS)), st.integers(1, 7)), min_size=1, max_size=3, unique_by=lambda t: t[0]
)


@settings(max_examples=300, deadline=None)
@given(
    lines=carts,
    benefit=benefits,
    scope=scopes,
    shipping_coupon=st.booleans(),
    fulfilment=st.sampled_from(["delivery", "pickup", "same_city"]),
    flash=st.booleans(),
)
def test_lines_sum_to_the_total_nothing_is_negative_and_refunds_sum_to_what_was_paid(
    lines, benefit, scope, shipping_coupon, fulfilment, flash
):
    coupons = [at_checkout(benefit, scope=scope)]
    if shipping_coupon:
        coupons.append(at_checkout(Benefit(Kind.SHIPPING, amount_fen=700), coupon_id="cp2"))
    overrides = {lines[0][0]: 100} if flash else None
    try:
        quote = priced(lines, coupons, fulfilment, overrides=overrides)
    except CouponNotUsable as refused:
        # Refused only for a reason the rules name, never silently dropped
        assert refused.details["reason"] in {"below_threshold", "out_of_scope", "no_shipping"}
        return
    assert sum(line.payable_fen for line in quote.lines) + quote.shipping_fen == quote.total_fen
    assert all(line.payable_fen >= 0 for line in quote.lines) and quote.total_fen >= 0 and quote.shipping_fen >= 0
    assert sum(line.discount_fen for line in quote.lines) == quote.discount_fen
    merchandise = {a.id: a.amount_fen for a in quote.applied if a.kind in ("coupon", "promotion")}
    assert sum(merchandise.values()) == quote.discount_fen
    covered = sum(
        line.gross_fen
        for line in quote.lines
        if scope.covers(line.sku, PRODUCTS[line.sku].category) and not (flash and line.sku == lines[0][0])
    )
    assert 0 <= merchandise["cp1"] <= covered
    for line in quote.lines:
        if flash and line.sku == lines[0][0]:
            assert line.discount_fen == 0  # a flash price takes no share of any discount
        parts = [refund_amount(line, 1, done) for done in range(line.qty)]
        assert sum(parts) == line.payable_fen


def test_a_coupon_is_allocated_by_largest_remainder_over_the_lines_it_covers():
    quote = priced([("TEA", 1), ("MUG", 1), ("PEN", 1)], [at_checkout(Benefit(Kind.FIXED, amount_fen=1000))])
    # 1000 over 16800 / 2500 / 333 (of 19633): exact shares 855.70 / 127.34 / 16.96; the floors
    # 855 + 127 + 16 leave 2 fen, which go to the largest remainders (the pen's, then the tea's)
    assert [line.discount_fen for line in quote.lines] == [856, 127, 17]


def test_the_promotion_first_then_the_coupon_on_what_is_left():
    quote = priced([("TEA", 2)], [at_checkout(Benefit(Kind.PERCENT, percent_off=10))])
    assert [(a.kind, a.amount_fen) for a in quote.applied] == [("promotion", 3000), ("coupon", 3060)]
    with pytest.raises(CouponNotUsable) as refused:
        priced([("TEA", 2)], [at_checkout(Benefit(Kind.FIXED, amount_fen=1), stackable_with_promotions=False)])
    assert refused.value.details["reason"] == "not_stackable_with_promotions"


def test_a_shipping_coupon_takes_off_the_shipping_only():
    quote = priced([("PEN", 1)], [at_checkout(Benefit(Kind.SHIPPING))])
    assert (quote.shipping_fen, quote.total_fen, quote.discount_fen) == (0, 333, 0)
    assert [(a.kind, a.amount_fen) for a in quote.applied] == [("shipping_coupon", 1000)]
    with pytest.raises(CouponNotUsable):
        priced([("PEN", 1)], [at_checkout(Benefit(Kind.SHIPPING))], fulfilment="pickup")


def test_coupon_refusals_name_the_coupon():
    with pytest.raises(UnknownCoupon) as unknown:
        price_cart(
            [CartLine("TEA", 1)],
            PRODUCTS,
            is_member=False,
            fulfilment_type="pickup",
            rules=PricingRules(),
            coupon_ids=["x"],
        )
    assert unknown.value.details == {"coupon_id": "x", "coupon_ids": ["x"]}
    two = [at_checkout(Benefit(Kind.FIXED, amount_fen=1), "a"), at_checkout(Benefit(Kind.FIXED, amount_fen=1), "b")]
    with pytest.raises(CouponNotUsable) as refused:
        priced([("TEA", 1)], two)
    assert refused.value.details["reason"] == "one_per_kind"


def test_checkout_refuses_an_offline_locked_or_expired_coupon():
    offline = at_checkout(Benefit(Kind.FIXED, amount_fen=1), channels=frozenset({Channel.OFFLINE}))
    with pytest.raises(CouponNotUsable):
        offline.check_usable(NOW)
    fine = at_checkout(Benefit(Kind.FIXED, amount_fen=1))
    fine.check_usable(NOW)
    with pytest.raises(CouponExpired):
        fine.check_usable(NOW + 1000)
    locked = CouponAtCheckout(Coupon(**{**fine.coupon.__dict__, "status": Status.LOCKED}))
    with pytest.raises(CouponInUse):
        locked.check_usable(NOW)
