"""Promotions in the price of a cart (shared/ordering/pricing.py with shared.promotions.model;
docs/pricing.md): the fixed order of application by example, and a hypothesis property over random
carts, promotions and coupons — lines sum to the total, no line or total below 0, every discount
within its eligible amount, and any partition of refunds sums to what was paid."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.catalog.model import Product
from shared.coupons.model import Benefit
from shared.coupons.model import Kind as CouponKind
from shared.kernel.errors import CouponNotUsable
from shared.kernel.scope import Scope
from shared.membership.model import Benefits, Level, checkout_benefits
from shared.ordering.pricing import CartLine, PricingRules, price_cart, refund_amount
from shared.promotions.model import Kind, Promotion, Tier, promotion_problems
from tests.unit.test_coupons_pricing import NOW
from tests.unit.test_coupons_pricing import at_checkout as coupon

PRODUCTS = {
    "TEA": Product(sku="TEA", name="茶", price_fen=16800, member_price_fen=15800, category="tea"),
    "MUG": Product(sku="MUG", name="杯", price_fen=2500, category="home"),
    "PEN": Product(sku="PEN", name="笔", price_fen=333, category="office"),
    "GIFT": Product(sku="GIFT", name="赠品", price_fen=990, category="gift"),
}


def promo(pid: str, kind: Kind, *tiers: Tier, **fields) -> Promotion:
    return Promotion(pid, kind, NOW - 1000, NOW + 1000, tiers=tiers, **fields)


def spend(pid: str, *steps: tuple[int, int], repeat: bool = False, scope: Scope | None = None) -> Promotion:
    tiers = [Tier(threshold_fen=t, off_fen=o) for t, o in steps]
    return promo(pid, Kind.SPEND_THRESHOLD, *tiers, repeat=repeat, scope=scope or Scope())


def priced(lines, promotions, coupons=(), *, member=False, fulfilment="delivery", gifts_short=(), discount_bp=0):
    return price_cart(
        [CartLine(s, q) for s, q in lines],
        PRODUCTS,
        is_member=member,
        fulfilment_type=fulfilment,
        rules=PricingRules(),
        coupon_ids=[c.coupon_id for c in coupons],
        coupons={c.coupon_id: c for c in coupons},
        promotions=promotions,
        gifts_short=gifts_short,
        member_discount_bp=discount_bp,
    )


# -- tiers, repeat, percent, quantity ----------------------------------------------------------
def test_the_highest_tier_reached_applies():
    tiers = spend("T", (10000, 1000), (30000, 4000))
    assert priced([("MUG", 3)], [tiers]).discount_fen == 0  # 75 yuan: no tier
    assert priced([("MUG", 4)], [tiers]).discount_fen == 1000  # 100 yuan
    assert priced([("TEA", 2)], [tiers]).discount_fen == 4000  # 336 yuan: the top tier, once


def test_repeat_takes_the_top_tier_for_every_time_its_threshold_fits():
    # 每满100减10: 5 x 168 = 840 yuan -> 8 times
    quote = priced([("TEA", 5)], [spend("R", (10000, 1000), repeat=True)])
    assert quote.discount_fen == 8000
    assert quote.applied[0].to_dict() == {"kind": "promotion", "id": "R", "amount_fen": 8000}


def test_percent_off_rounds_the_saving_down():
    # 满折: 9折 from 100 yuan; 3 x 333 + 4 x 2500 = 10999 -> 1099.9 off -> 1099
    nine = promo("N", Kind.SPEND_THRESHOLD, Tier(threshold_fen=10000, percent_off=10))
    assert priced([("PEN", 3), ("MUG", 4)], [nine]).discount_fen == 1099


def test_quantity_tiers_count_covered_units():
    # 满3件减5元, 满5件8折 on home goods only
    by_count = promo(
        "Q",
        Kind.QUANTITY_THRESHOLD,
        Tier(min_qty=3, off_fen=500),
        Tier(min_qty=5, off_fen=1500),
        scope=Scope(categories=frozenset({"home"})),
    )
    assert priced([("MUG", 2), ("PEN", 5)], [by_count]).discount_fen == 0  # 2 covered units
    quote = priced([("MUG", 3), ("PEN", 5)], [by_count])
    assert (quote.line("MUG").discount_fen, quote.line("PEN").discount_fen) == (500, 0)
    assert priced([("MUG", 6)], [by_count]).discount_fen == 1500


def test_a_line_takes_one_threshold_promotion_the_best_first():
    small = spend("A-SMALL", (10000, 500))
    big = spend("B-BIG", (30000, 3000), scope=Scope(skus=frozenset({"TEA"})))
    quote = priced([("TEA", 2), ("MUG", 4)], [small, big])
    # B saves 3000 on the tea; A is measured on what is left (4 mugs, 100 yuan) and saves 500
    assert [(a.id, a.amount_fen) for a in quote.applied] == [("B-BIG", 3000), ("A-SMALL", 500)]
    assert (quote.line("TEA").discount_fen, quote.line("MUG").discount_fen) == (3000, 500)


# -- limited-time price, member price ----------------------------------------------------------
def test_a_limited_price_is_final_and_excludes_other_promotions_and_coupons():
    limited = promo("L", Kind.LIMITED_PRICE, price_fen=9900, scope=Scope(skus=frozenset({"TEA"})))
    full = spend("F", (10000, 1000))
    quote = priced([("TEA", 2), ("MUG", 1)], [limited, full], [coupon(Benefit(CouponKind.FIXED, amount_fen=100))])
    tea = quote.line("TEA")
    assert (tea.unit_price_fen, tea.discount_fen) == (9900, 0)
    # the mug alone (25 yuan) does not reach the 100-yuan tier; the coupon covers the mug only
    assert [(a.kind, a.id, a.amount_fen) for a in quote.applied] == [("coupon", "cp1", 100)]
    assert quote.line("MUG").discount_fen == 100
    assert quote.promotions[0].to_dict() == {
        "promotion_id": "L",
        "kind": "limited_price",
        "amount_fen": 2 * (16800 - 9900),
        "skus": ["TEA"],
    }


def test_a_member_pays_the_lower_of_the_limited_and_the_member_price():
    above_member = promo("L", Kind.LIMITED_PRICE, price_fen=16000, scope=Scope(skus=frozenset({"TEA"})))
    assert priced([("TEA", 1)], [above_member]).line("TEA").unit_price_fen == 16000
    member = priced([("TEA", 1)], [above_member], member=True)
    assert member.line("TEA").unit_price_fen == 15800 and member.promotions == ()


# -- member benefits (docs/pricing.md, "Member benefits") -----------------------------------------
def test_the_member_discount_is_off_the_own_unit_price_rounded_in_the_merchants_favour():
    # 5% off: TEA's member price 15,800 -> 15,010; PEN 333 -> 333 - 16 = 317 (16.65 off, rounded down)
    quote = priced([("TEA", 2), ("PEN", 3)], [], member=True, discount_bp=500)
    assert quote.line("TEA").unit_price_fen == 15010 and quote.line("PEN").unit_price_fen == 317
    assert quote.subtotal_fen == 2 * 15010 + 3 * 317 and quote.discount_fen == 0  # a price, not a discount
    # without member prices the discount is off the list price
    assert priced([("TEA", 1)], [], discount_bp=500).line("TEA").unit_price_fen == 16800 - 840


def test_thresholds_are_measured_at_the_discounted_price_and_a_limited_price_must_beat_it():
    full = spend("FULL", (30000, 3000))
    assert priced([("TEA", 2)], [full], member=True).applied  # 31,600 reaches 300 yuan
    assert not priced([("TEA", 2)], [full], member=True, discount_bp=800).applied  # 29,072 does not
    limited = promo("L", Kind.LIMITED_PRICE, price_fen=15000, scope=Scope(skus=frozenset({"TEA"})))
    # 10% off the member price is 14,220: below the limited price, which then does not apply
    assert priced([("TEA", 1)], [limited], member=True, discount_bp=1000).line("TEA").unit_price_fen == 14220
    assert priced([("TEA", 1)], [limited], member=True, discount_bp=100).line("TEA").unit_price_fen == 15000


@given(
    level=st.builds(Level, st.just(1), st.just("银卡"), st.just(0), st.booleans(), st.integers(0, 10_000)),
    paid=st.none() | st.builds(Benefits, st.booleans(), st.integers(0, 10_000)),
    product=st.builds(
        lambda price, member: Product(
            sku="X", name="x", price_fen=price, member_price_fen=member and min(member, price)
        ),
        st.integers(0, 100_000),
        st.none() | st.integers(0, 100_000),
    ),
)
def test_the_best_of_level_and_paid_membership_is_never_worse_than_either(level, paid, product):
    best = checkout_benefits(level, paid)
    assert best.discount_bp == max(level.discount_bp, paid.discount_bp if paid else 0)
    assert best.member_price == (level.member_price or (paid is not None and paid.member_price))

    def unit(b: Benefits) -> int:
        quote = priced_one(product, b)
        return quote.lines[0].unit_price_fen

    assert unit(best) <= unit(Benefits(level.member_price, level.discount_bp))
    if paid is not None:
        assert unit(best) <= unit(paid)


def priced_one(product: Product, benefits: Benefits):
    return price_cart(
        [CartLine("X", 1)],
        {"X": product},
        is_member=benefits.member_price,
        fulfilment_type="pickup",
        rules=PricingRules(),
        member_discount_bp=benefits.discount_bp,
    )


def test_the_member_discount_is_not_off_a_flash_price_and_is_bounded():
    quote = price_cart(
        [CartLine("TEA", 1)],
        PRODUCTS,
        is_member=True,
        fulfilment_type="pickup",
        rules=PricingRules(),
        unit_price_override={"TEA": 9900},
        member_discount_bp=2000,
    )
    assert quote.line("TEA").unit_price_fen == 9900
    with pytest.raises(ValueError):
        priced([("TEA", 1)], [], discount_bp=10_001)


# -- gifts ---------------------------------------------------------------------------------------
def test_a_gift_is_a_line_at_zero_and_says_why_when_not_given():
    gift = promo("G", Kind.GIFT, Tier(threshold_fen=20000, gift_sku="GIFT", gift_qty=2))
    quote = priced([("TEA", 2)], [gift])
    assert quote.lines[-1].to_dict() == {
        "sku": "GIFT",
        "qty": 2,
        "unit_price_fen": 0,
        "discount_fen": 0,
        "payable_fen": 0,
    }
    assert quote.total_fen == 33600 and quote.subtotal_fen == 33600
    assert priced([("TEA", 1)], [gift]).lines[-1].sku == "TEA"  # 168 yuan: not reached
    short = priced([("TEA", 2)], [gift], gifts_short={"GIFT"})
    assert [line.sku for line in short.lines] == ["TEA"]
    assert short.promotions[0].to_dict()["skipped"] == "out_of_stock"
    in_cart = priced([("TEA", 2), ("GIFT", 1)], [gift])
    assert [line.sku for line in in_cart.lines] == ["TEA", "GIFT"] and in_cart.line("GIFT").unit_price_fen == 990


def test_a_coupon_that_does_not_stack_is_refused_beside_a_gift_or_a_discount():
    gift = promo("G", Kind.GIFT, Tier(threshold_fen=20000, gift_sku="GIFT", gift_qty=1))
    lone = coupon(Benefit(CouponKind.FIXED, amount_fen=100), stackable_with_promotions=False)
    for promotions in ([gift], [spend("S", (20000, 100))]):
        with pytest.raises(CouponNotUsable) as refused:
            priced([("TEA", 2)], promotions, [lone])
        assert refused.value.details["reason"] == "not_stackable_with_promotions"
    assert priced([("TEA", 1)], [gift], [lone]).discount_fen == 100  # not reached: no promotion applied


# -- the rules a definition keeps ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("promotion", "field"),
    [
        (spend("X", (10000, 1000), (5000, 2000)), "tiers"),  # thresholds not ascending
        (spend("X", (10000, 1000), (20000, 1000)), "tiers"),  # a higher tier that saves no more
        (spend("X", (1000, 1001)), "tiers.0.off_fen"),  # more off than its threshold
        (promo("X", Kind.SPEND_THRESHOLD, Tier(threshold_fen=100, percent_off=100)), "tiers.0.percent_off"),
        (promo("X", Kind.SPEND_THRESHOLD, Tier(threshold_fen=100, percent_off=10), repeat=True), "repeat"),
        (promo("X", Kind.SPEND_THRESHOLD, Tier(threshold_fen=100, off_fen=1, percent_off=1)), "tiers.0"),
        (promo("X", Kind.QUANTITY_THRESHOLD, Tier(threshold_fen=100, off_fen=1)), "tiers.0.threshold_fen"),
        (promo("X", Kind.SPEND_THRESHOLD), "tiers"),
        (promo("X", Kind.LIMITED_PRICE, price_fen=100), "scope.skus"),
        (promo("X", Kind.LIMITED_PRICE, scope=Scope(skus=frozenset({"TEA"}))), "price_fen"),
        (promo("X", Kind.GIFT, Tier(threshold_fen=100, gift_sku="G", gift_qty=0)), "tiers.0.gift_qty"),
        (promo("X", Kind.GIFT, Tier(threshold_fen=100)), "tiers.0.gift_sku"),
        (Promotion("X", Kind.SPEND_THRESHOLD, NOW, NOW, tiers=(Tier(threshold_fen=1, off_fen=1),)), "ends_at"),
        (Promotion("bad id!", Kind.SPEND_THRESHOLD, 0, 1, tiers=(Tier(threshold_fen=1, off_fen=1),)), "id"),
    ],
)
def test_a_promotion_that_breaks_a_rule_names_the_field(promotion, field):
    assert field in [p["field"] for p in promotion_problems(promotion)]


def test_a_promotion_runs_inside_its_window_only():
    window = spend("W", (100, 10))
    assert window.is_running(NOW) and not window.is_running(NOW + 1000) and not window.is_running(NOW - 1001)
    assert window.status(NOW + 1000) == "ended" and window.status(NOW - 2000) == "scheduled"


# -- the property ----------------------------------------------------------------------------------
scopes = st.sampled_from(
    [
        Scope(),
        Scope(skus=frozenset({"TEA"})),
        Scope(categories=frozenset({"home", "office"})),
        Scope(exclude_skus=frozenset({"PEN"})),
    ]
)


@st.composite
def spend_or_quantity(draw, pid: str) -> Promotion:
    by_spend = draw(st.booleans())
    percent = draw(st.booleans())
    count = draw(st.integers(1, 3))
    steps = sorted(draw(st.sets(st.integers(1, 60_000) if by_spend else st.integers(1, 12), min_size=count)))
    offs = sorted(draw(st.sets(st.integers(1, 99) if percent else st.integers(1, 30_000), min_size=len(steps))))
    tiers = []
    for step, off in zip(steps, offs[: len(steps)], strict=False):
        measure = {"threshold_fen": step} if by_spend else {"min_qty": step}
        benefit = {"percent_off": off} if percent else {"off_fen": min(off, step) if by_spend else off}
        tiers.append(Tier(**measure, **benefit))
    kind = Kind.SPEND_THRESHOLD if by_spend else Kind.QUANTITY_THRESHOLD
    return promo(pid, kind, *tiers, repeat=not percent and draw(st.booleans()), scope=draw(scopes))


@st.composite
def promotions(draw) -> list[Promotion]:
    found = [draw(spend_or_quantity(f"P{i}")) for i in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        skus = frozenset(draw(st.sets(st.sampled_from(["TEA", "MUG", "PEN"]), min_size=1)))
        found.append(promo("L", Kind.LIMITED_PRICE, price_fen=draw(st.integers(1, 20_000)), scope=Scope(skus=skus)))
    if draw(st.booleans()):
        tier = Tier(threshold_fen=draw(st.integers(1, 50_000)), gift_sku="GIFT", gift_qty=draw(st.integers(1, 3)))
        found.append(promo("G", Kind.GIFT, tier))
    # Only valid definitions are priced: the PUT refuses the others.
    return [p for p in found if not promotion_problems(p)]


coupon_benefits = st.one_of(
    st.builds(lambda a: Benefit(CouponKind.FIXED, amount_fen=a), st.integers(1, 80_000)),
    st.builds(lambda p: Benefit(CouponKind.PERCENT, percent_off=p), st.integers(1, 99)),
)
carts = st.lists(
    st.tuples(st.sampled_from(["TEA", "MUG", "PEN", "GIFT"]), st.integers(1, 9)),
    min_size=1,
    max_size=4,
    unique_by=lambda t: t[0],
)


@settings(max_examples=300, deadline=None)
@given(
    lines=carts,
    running=promotions(),
    benefit=st.none() | coupon_benefits,
    coupon_scope=st.sampled_from([Scope(), Scope(skus=frozenset({"MUG"}))]),
    shipping_coupon=st.booleans(),
    member=st.booleans(),
    fulfilment=st.sampled_from(["delivery", "pickup", "same_city"]),
    short=st.booleans(),
    discount_bp=st.sampled_from([0, 0, 1, 500, 3333, 9999, 10_000]),
    data=st.data(),
)
def test_promotions_and_coupons_add_up_to_the_fen(
    lines, running, benefit, coupon_scope, shipping_coupon, member, fulfilment, short, discount_bp, data
):
    coupons = [] if benefit is None else [coupon(benefit, scope=coupon_scope)]
    if shipping_coupon:
        coupons.append(coupon(Benefit(CouponKind.SHIPPING, amount_fen=700), "cp2"))
    try:
        quote = priced(
            lines,
            running,
            coupons,
            member=member,
            fulfilment=fulfilment,
            gifts_short={"GIFT"} if short else (),
            discount_bp=discount_bp,
        )
    except CouponNotUsable as refused:
        assert refused.details["reason"] in {"below_threshold", "out_of_scope", "no_shipping"}
        return
    # Lines sum to the total; nothing is below 0
    assert sum(line.payable_fen for line in quote.lines) + quote.shipping_fen == quote.total_fen
    assert quote.subtotal_fen - quote.discount_fen + quote.shipping_fen == quote.total_fen
    assert sum(line.discount_fen for line in quote.lines) == quote.discount_fen
    assert min(quote.total_fen, quote.shipping_fen, quote.discount_fen) >= 0
    for line in quote.lines:
        assert line.payable_fen == line.gross_fen - line.discount_fen and line.payable_fen >= 0
    # Every discount within its eligible amount
    _promotions_within_what_they_apply_to(quote, short)
    _coupons_within_what_they_apply_to(quote, lines, coupon_scope)
    # Any partition of refunds sums to what was paid
    paid = 0
    for line in quote.lines:
        done, parts = 0, []
        for part in data.draw(_partitions(line.qty)):
            parts.append(refund_amount(line, part, done))
            done += part
        assert sum(parts) == line.payable_fen
        paid += sum(parts)
    assert paid + quote.shipping_fen == quote.total_fen


def _promotions_within_what_they_apply_to(quote, short):
    gross = {line.sku: line.gross_fen for line in quote.lines}
    merchandise = [a for a in quote.applied if a.kind in ("promotion", "coupon")]
    assert sum(a.amount_fen for a in merchandise) == quote.discount_fen
    claimed: set[str] = set()
    for shaped in quote.promotions:
        if shaped.kind == "threshold":
            assert 0 < shaped.amount_fen <= sum(gross[sku] for sku in shaped.skus)
            assert claimed.isdisjoint(shaped.skus)  # a line takes one threshold promotion
            claimed |= set(shaped.skus)
        if shaped.kind == "limited_price":
            (sku,) = shaped.skus
            assert quote.line(sku).discount_fen == 0 and quote.line(sku).unit_price_fen < PRODUCTS[sku].price_fen
        if shaped.kind == "gift" and shaped.skipped is None:
            gift_line = quote.lines[-1]
            assert (gift_line.sku, gift_line.payable_fen, gift_line.qty) == ("GIFT", 0, shaped.gift_qty)
            assert not short


def _coupons_within_what_they_apply_to(quote, lines, coupon_scope):
    for applied in quote.applied:
        if applied.kind == "coupon":
            limited = {sku for p in quote.promotions if p.kind == "limited_price" for sku in p.skus}
            covered = [
                line
                for line in quote.lines[: len(lines)]
                if coupon_scope.covers(line.sku, PRODUCTS[line.sku].category) and line.sku not in limited
            ]
            assert 0 <= applied.amount_fen <= sum(line.gross_fen for line in covered)
        if applied.kind == "shipping_coupon":
            assert 0 <= applied.amount_fen <= 700


@st.composite
def _partitions(draw, qty: int) -> list[int]:
    """An ordered partition of `qty` units into refunds of at least one unit each."""
    parts: list[int] = []
    while qty > 0:
        parts.append(draw(st.integers(1, qty)))
        qty -= parts[-1]
    return parts
