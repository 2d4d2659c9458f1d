"""The bounds of shared/kernel/values.py and pricing's total cap: every order that can be placed
can be paid, no amount reaches 2^53, text is not blank, digits are ASCII (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from functions.checkout.order_models import HandOverIn
from functions.notifications.models import ContactIn
from shared.catalog.model import Product
from shared.kernel import values
from shared.kernel.errors import OrderTooLarge
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from shared.payments.hmac_webhook import _NoticeBody

MAX_LINES = 50  # functions.checkout.models.MAX_LINES


def accepts(annotated: Any, value: Any) -> bool:
    try:
        TypeAdapter(annotated).validate_python(value)
    except ValidationError:
        return False
    return True


def test_the_largest_order_the_types_allow_is_below_two_to_the_53():
    assert values.MAX_PRICE_FEN * values.MAX_QUANTITY * MAX_LINES < 2**53
    assert values.MAX_AMOUNT_FEN < 2**53 and values.MAX_COUNT < 2**53


def test_prices_amounts_and_quantities_stop_at_their_bounds():
    assert accepts(values.PriceFen, values.MAX_PRICE_FEN) and not accepts(values.PriceFen, values.MAX_PRICE_FEN + 1)
    assert accepts(values.Fen, values.MAX_AMOUNT_FEN) and not accepts(values.Fen, values.MAX_AMOUNT_FEN + 1)
    assert not accepts(values.Quantity, values.MAX_QUANTITY + 1)
    assert not accepts(values.Fen, 2**53)


def test_an_order_above_one_payment_is_refused_at_the_quote():
    # Given 50 lines of the dearest product at the largest quantity
    products = {f"P{i}": Product(sku=f"P{i}", name="金", price_fen=values.MAX_PRICE_FEN) for i in range(MAX_LINES)}
    lines = [CartLine(sku, values.MAX_QUANTITY) for sku in products]
    # When it is priced, Then it is refused: no payment could carry it
    with pytest.raises(OrderTooLarge):
        price_cart(lines, products, is_member=False, fulfilment_type="pickup", rules=PricingRules())
    # And one such line alone is exactly the most a payment carries, and is priced
    quote = price_cart(lines[:1], products, is_member=False, fulfilment_type="pickup", rules=PricingRules())
    assert quote.subtotal_fen == values.MAX_AMOUNT_FEN >= quote.total_fen


@settings(max_examples=200, deadline=None)
@given(
    prices=st.lists(st.integers(0, values.MAX_PRICE_FEN), min_size=1, max_size=MAX_LINES),
    qty=st.integers(1, values.MAX_QUANTITY),
    fulfilment=st.sampled_from(["delivery", "pickup", "ship_from_store", "same_city"]),
)
def test_every_priced_order_can_be_paid(prices, qty, fulfilment):
    products = {f"P{i}": Product(sku=f"P{i}", name="x", price_fen=p) for i, p in enumerate(prices)}
    try:
        quote = price_cart(
            [CartLine(s, qty) for s in products],
            products,
            is_member=False,
            fulfilment_type=fulfilment,
            rules=PricingRules(),
        )
    except OrderTooLarge:
        return
    # Then the payment of its total passes the webhook's schema
    _NoticeBody.model_validate(
        {"order_id": "o", "transaction_id": "t", "amount_fen": quote.total_fen, "paid_at": "2026-01-01T00:00:00Z"}
    )
    assert (
        max(quote.subtotal_fen, quote.total_fen, *(line.payable_fen for line in quote.lines)) <= values.MAX_AMOUNT_FEN
    )


@pytest.mark.parametrize("text", ["", " ", "   ", "\t\n", "\u3000", " \u3000 "])
def test_blank_text_is_refused(text):
    assert not accepts(values.ShortText, text)
    assert not accepts(values.LongText, text)
    assert not accepts(values.Name, text)


@pytest.mark.parametrize("code", ["１２３４５６", "١٢٣٤٥٦", "12345６", "12345", "1234567", " 123456"])
def test_a_pickup_code_is_six_ascii_digits(code):
    with pytest.raises(ValidationError):
        HandOverIn.model_validate({"pickup_code": code})
    assert HandOverIn.model_validate({"pickup_code": "012345"}).pickup_code == "012345"


@pytest.mark.parametrize("phone", ["+86 137 0000 0000", "137-0000-0000", "13700000000", "+8613700000000"])
def test_contact_phones_are_what_addresses_take(phone):
    assert ContactIn.model_validate({"phone": phone}).phone == phone
    assert accepts(values.Phone, phone)


@pytest.mark.parametrize("phone", ["１３７００００００００", "phone", "12"])
def test_phones_with_other_digits_or_too_few_are_refused(phone):
    with pytest.raises(ValidationError):
        ContactIn.model_validate({"phone": phone})
