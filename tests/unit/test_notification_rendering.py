"""Who hears what, and the words they read: recipients, templates (SMS length, data minimisation,
WeChat field limits, both languages) and birthdays, pure."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.kernel.events import DomainEvent, EventType
from shared.notifications.delivery import birthday_keys
from shared.notifications.model import Channel, Locale
from shared.notifications.recipients import Addressee, Audience, plan
from shared.notifications.templates import SMS_LIMIT, TEMPLATES, WECHAT_LIMITS, params_of, render

ORDER = {
    "order_id": "o0193a5b2c3d4e5f6a7b8c9d0e1f2a3b4c5",
    "customer_id": "c-1",
    "status": "PAID",
    "total_fen": 16800,
    "fulfilment": {"type": "pickup", "store_id": "S001"},
    "store_id": "S001",
    "lines": [{"sku": "TEA-001", "qty": 1, "payable_fen": 16800}],
}


def event(event_type: EventType, **payload: object) -> DomainEvent:
    return DomainEvent(event_type, "o-1", {**ORDER, **payload})


@pytest.mark.parametrize(
    ("event_type", "payload", "expected"),
    [
        (EventType.ORDER_PLACED, {}, [Addressee(Audience.CUSTOMER, "c-1", "OrderPlaced")]),
        (
            EventType.ORDER_PAID,
            {},
            [
                Addressee(Audience.CUSTOMER, "c-1", "OrderPaid"),
                Addressee(Audience.STORE_STAFF, "S001", "StoreOrderPaid"),
            ],
        ),
        (EventType.ORDER_PAID, {"store_id": "WH"}, [Addressee(Audience.CUSTOMER, "c-1", "OrderPaid")]),
        (EventType.ORDER_FULFILLED, {"how": "shipped"}, [Addressee(Audience.CUSTOMER, "c-1", "OrderShipped")]),
        (
            EventType.ORDER_FULFILLED,
            {"how": "ready_for_pickup", "pickup_code": "123456"},
            [Addressee(Audience.CUSTOMER, "c-1", "OrderReadyForPickup")],
        ),
        (EventType.ORDER_EXPIRED, {}, [Addressee(Audience.CUSTOMER, "c-1", "OrderExpired")]),
        (EventType.REFUND_ISSUED, {"amount_fen": 500}, [Addressee(Audience.CUSTOMER, "c-1", "RefundIssued")]),
        (
            EventType.PAYMENT_NEEDS_REFUND,
            {"amount_fen": 16800},
            [
                Addressee(Audience.CUSTOMER, "c-1", "PaymentNeedsRefund"),
                Addressee(Audience.ADMINS, "", "PaymentNeedsRefundAdmin"),
            ],
        ),
        (EventType.ORDER_COMPLETED, {}, []),
    ],
)
def test_recipients_of_order_events(event_type, payload, expected):
    assert plan(event(event_type, **payload)) == expected


def test_low_stock_at_a_store_tells_its_staff_and_the_admins_at_the_warehouse_only_the_admins():
    store = DomainEvent(EventType.LOW_STOCK, "X@S002", {"sku": "X", "location": "S002", "available": 1, "threshold": 5})
    warehouse = DomainEvent(EventType.LOW_STOCK, "X@WH", {"sku": "X", "location": "WH", "available": 1, "threshold": 5})
    assert plan(store) == [
        Addressee(Audience.STORE_STAFF, "S002", "LowStock"),
        Addressee(Audience.ADMINS, "", "LowStock"),
    ]
    assert plan(warehouse) == [Addressee(Audience.ADMINS, "", "LowStock")]


def test_every_template_renders_on_every_channel_in_both_languages():
    params = {
        **ORDER,
        "tracking_number": "SF123",
        "pickup_code": "654321",
        "amount_fen": 500,
        "sku": "TEA-001",
        "location": "S001",
        "available": 3,
        "threshold": 5,
    }
    for kind in TEMPLATES:
        for locale in Locale:
            for channel in Channel:
                rendered = render(kind, channel, locale, params_of(params, locale))
                assert rendered.text and "{" not in rendered.text, (kind, locale, channel)
                if channel is Channel.EMAIL:
                    assert rendered.body and "{" not in rendered.body
                if channel is Channel.WECHAT:
                    assert rendered.template_id and rendered.data


def test_the_paid_sms_reads_right_in_chinese_and_english():
    zh = render("OrderPaid", Channel.SMS, Locale.ZH, params_of(ORDER, Locale.ZH)).text
    en = render("OrderPaid", Channel.SMS, Locale.EN, params_of(ORDER, Locale.EN)).text
    assert zh == "【云店】订单F2A3B4C5已支付¥168.00，正在为您备货。"
    assert en == "[CloudStore] Order F2A3B4C5: CNY 168.00 received. Thanks!"


def test_wechat_payload_has_the_template_fields_and_the_order_page():
    rendered = render("OrderPaid", Channel.WECHAT, Locale.ZH, params_of(ORDER, Locale.ZH), {"OrderPaid": "REAL-ID"})
    assert rendered.template_id == "REAL-ID"
    assert rendered.data == {
        "character_string1": {"value": "F2A3B4C5"},
        "amount2": {"value": "¥168.00"},
        "phrase3": {"value": "已支付"},
    }
    assert rendered.page == f"pages/orders/detail?id={ORDER['order_id']}"


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=80)


@given(
    kind=st.sampled_from(sorted(TEMPLATES)),
    locale=st.sampled_from(list(Locale)),
    amount=st.integers(min_value=0, max_value=10**12),
    sku=text,
    location=text,
    store=text,
    tracking=text,
    available=st.integers(min_value=0, max_value=10**9),
)
def test_an_sms_never_exceeds_70_characters(kind, locale, amount, sku, location, store, tracking, available):
    payload = {
        **ORDER,
        "total_fen": amount,
        "amount_fen": amount,
        "sku": sku,
        "location": location,
        "store_id": store,
        "tracking_number": tracking,
        "pickup_code": "123456",
        "available": available,
        "threshold": 10,
    }
    params = params_of(payload, locale)
    sms = render(kind, Channel.SMS, locale, params).text
    assert len(sms) <= SMS_LIMIT
    # The amount and the order reference are never shortened
    if "{amount}" in TEMPLATES[kind].sms[locale]:
        assert params["amount"] in sms
    if "{ref}" in TEMPLATES[kind].sms[locale]:
        assert params["ref"] in sms
    # And WeChat fields keep within their kinds' limits
    for field, value in (render(kind, Channel.WECHAT, locale, params).data or {}).items():
        assert len(value["value"]) <= WECHAT_LIMITS[field.rstrip("0123456789")]


def test_an_sms_carries_no_personal_data_from_the_payload():
    # Given an event that (wrongly) carries the delivery address and phone
    payload = {**ORDER, "address": {"recipient": "李雷", "phone": "13900139000", "detail": "徐汇区2号"}}
    for kind in TEMPLATES:
        for locale in Locale:
            sms = render(kind, Channel.SMS, locale, params_of(payload, locale)).text
            assert "李雷" not in sms and "13900139000" not in sms and "徐汇" not in sms
            assert ORDER["order_id"] not in sms  # only the last eight characters


@pytest.mark.parametrize(
    ("today", "keys"),
    [
        (date(2027, 3, 15), ["0315"]),
        (date(2027, 2, 28), ["0228", "0229"]),  # no 29 February in 2027: greet them on the 28th
        (date(2028, 2, 28), ["0228"]),
        (date(2028, 2, 29), ["0229"]),
    ],
)
def test_birthday_keys(today, keys):
    assert birthday_keys(today) == keys
