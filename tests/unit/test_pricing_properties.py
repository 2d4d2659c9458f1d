"""Invariants of pricing (hypothesis): whatever the cart, the money adds up to the fen."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.catalog.model import Product
from shared.ordering.pricing import (
    FULFILMENT_TYPES,
    CartLine,
    PricedLine,
    PricingRules,
    allocate,
    price_cart,
    refund_amount,
)
from shared.promotions.model import Kind, Promotion, Tier

fen = st.integers(min_value=0, max_value=2_000_000)


@st.composite
def products(draw) -> Product:
    sku = draw(st.from_regex(r"[A-Z]{2}-[0-9]{1,4}", fullmatch=True))
    price = draw(fen)
    member = draw(st.none() | st.integers(min_value=0, max_value=price))
    return Product(sku=sku, name=sku, price_fen=price, member_price_fen=member)


@st.composite
def carts(draw):
    catalogue = draw(st.lists(products(), min_size=1, max_size=12, unique_by=lambda p: p.sku))
    chosen = draw(st.lists(st.sampled_from(catalogue), min_size=1, max_size=len(catalogue), unique_by=lambda p: p.sku))
    lines = [CartLine(p.sku, draw(st.integers(min_value=1, max_value=200))) for p in chosen]
    overrides = {p.sku: draw(fen) for p in chosen if draw(st.booleans()) and draw(st.booleans())}
    return lines, {p.sku: p for p in catalogue}, overrides


@st.composite
def rules(draw) -> tuple[PricingRules, tuple[Promotion, ...]]:
    """Shipping rules, and an order-level 满减 (the promotion that was a setting before)."""
    threshold = draw(st.integers(min_value=1, max_value=5_000_000))
    off = draw(st.integers(min_value=0, max_value=threshold))
    flat = {
        kind: draw(st.integers(min_value=0, max_value=5000)) for kind in ("delivery", "ship_from_store", "same_city")
    }
    shipping = PricingRules(
        free_shipping_threshold_fen=draw(st.integers(min_value=0, max_value=5_000_000)),
        shipping_fen=flat,
    )
    tier = Tier(threshold_fen=threshold, off_fen=off)
    return shipping, ((Promotion("P", Kind.SPEND_THRESHOLD, 0, 1, tiers=(tier,)),) if off else ())


@settings(max_examples=400)
@given(carts(), rules(), st.booleans(), st.sampled_from(sorted(FULFILMENT_TYPES)), st.integers(0, 10_000))
def test_lines_sum_to_the_total_and_nothing_is_negative(cart, pricing_rules, is_member, fulfilment, discount_bp):
    lines, catalogue, overrides = cart
    shipping, promotions = pricing_rules
    quote = price_cart(
        lines,
        catalogue,
        is_member=is_member,
        fulfilment_type=fulfilment,
        rules=shipping,
        unit_price_override=overrides,
        promotions=promotions,
        member_discount_bp=discount_bp,
    )
    assert sum(line.payable_fen for line in quote.lines) + quote.shipping_fen == quote.total_fen
    assert sum(line.unit_price_fen * line.qty for line in quote.lines) == quote.subtotal_fen
    assert (
        sum(line.discount_fen for line in quote.lines) == quote.discount_fen == sum(a.amount_fen for a in quote.applied)
    )
    assert quote.subtotal_fen - quote.discount_fen + quote.shipping_fen == quote.total_fen
    for line in quote.lines:
        assert line.payable_fen == line.unit_price_fen * line.qty - line.discount_fen
        assert min(line.unit_price_fen, line.discount_fen, line.payable_fen) >= 0
        if line.sku in overrides:
            assert line.unit_price_fen == overrides[line.sku] and line.discount_fen == 0
    assert min(quote.shipping_fen, quote.total_fen) >= 0
    if fulfilment == "pickup":
        assert quote.shipping_fen == 0
    assert [line.sku for line in quote.lines] == [line.sku for line in lines]


@st.composite
def partitions(draw, total: int) -> list[int]:
    """An ordered partition of `total` units into refunds of at least one unit each."""
    parts: list[int] = []
    left = total
    while left:
        part = draw(st.integers(min_value=1, max_value=left))
        parts.append(part)
        left -= part
    return parts


@st.composite
def lines_and_partitions(draw):
    qty = draw(st.integers(min_value=1, max_value=300))
    unit = draw(st.integers(min_value=0, max_value=100_000))
    discount = draw(st.integers(min_value=0, max_value=unit * qty))
    line = PricedLine("SKU", qty, unit, discount, unit * qty - discount)
    return line, draw(partitions(qty))


@settings(max_examples=400)
@given(lines_and_partitions())
def test_refunding_a_line_in_any_parts_sums_exactly_to_what_it_paid(line_and_parts):
    line, parts = line_and_parts
    refunded = 0
    amounts = []
    for part in parts:
        amounts.append(refund_amount(line, part, refunded))
        refunded += part
    assert sum(amounts) == line.payable_fen
    assert all(a >= 0 for a in amounts)
    # Each unit refunds what a unit paid: the floor or the ceiling of payable / qty.
    for part, amount in zip(parts, amounts, strict=True):
        assert part * (line.payable_fen // line.qty) <= amount <= part * -(-line.payable_fen // line.qty)


@settings(max_examples=400)
@given(lines_and_partitions())
def test_refunds_that_forget_earlier_ones_never_exceed_what_was_paid(line_and_parts):
    line, parts = line_and_parts
    assert sum(refund_amount(line, part) for part in parts) <= line.payable_fen


@settings(max_examples=400)
@given(fen, st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=60).filter(any))
def test_allocate_sums_exactly_and_each_part_is_floor_or_ceil_of_its_share(amount, weights):
    parts = allocate(amount, weights)
    total = sum(weights)
    assert sum(parts) == amount
    for part, weight in zip(parts, weights, strict=True):
        assert amount * weight // total <= part <= -(-amount * weight // total)
