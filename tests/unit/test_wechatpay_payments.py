"""The WeChat Pay use cases (shared/payments/wechatpay.py) on in-memory ports, against the local WeChat
Pay in-process: the JSAPI prepay and its idempotency, verified answers, and callbacks verified,
decrypted and checked before the payment path sees them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from infra.local.wechatpay_server import JSAPI
from shared.kernel.errors import BadSignature, MalformedRequest, NotFound, RuleViolation
from shared.payments import wechatpay_crypto as crypto
from shared.payments.model import (
    PREPAY_VALID_MS,
    NotOurs,
    OrderNotPayable,
    PayerChanged,
    PaymentNotice,
    ProviderRefused,
    ProviderUnavailable,
    china_time,
    order_id_of,
    out_trade_no,
)
from tests.fakes.payments import NOTIFY_URL, WeChatPayWorld, keys

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture
def world() -> WeChatPayWorld:
    return WeChatPayWorld.build()


def jsapi_calls(world: WeChatPayWorld) -> list[dict]:
    return [body for method, path, body in world.wechatpay.requests if path == JSAPI]


def test_out_trade_no_is_the_order_id_without_its_o_and_back():
    oid = "o" + "0123456789abcdef" * 2
    assert out_trade_no(oid) == "0123456789abcdef" * 2 and order_id_of(out_trade_no(oid)) == oid
    assert order_id_of(out_trade_no("M-2026-001")) == "M-2026-001"
    with pytest.raises(RuleViolation):
        out_trade_no("o" * 40)
    with pytest.raises(NotOurs):
        order_id_of("../etc")


def test_prepay_calls_jsapi_with_the_order_and_answers_what_wx_request_payment_takes(world):
    # Given an unpaid order
    order = world.order(total_fen=16800)
    # When its customer asks to pay with WeChat
    answer = world.payments.prepay(order.order_id, "c-1", OPENID)
    # Then JSAPI was called once with the order
    (body,) = jsapi_calls(world)
    assert body == {
        "appid": keys().appid,
        "mchid": keys().mchid,
        "description": f"Order {order.order_id}",
        "out_trade_no": order.order_id[1:],
        "time_expire": china_time(order.expires_at_ms),
        "notify_url": NOTIFY_URL,
        "amount": {"total": 16800, "currency": "CNY"},
        "payer": {"openid": OPENID},
    }
    assert body["time_expire"].endswith("+08:00")
    # And the answer is wx.requestPayment's, its paySign made with the merchant key
    prepay_id = world.wechatpay.transactions[order.order_id[1:]].prepay_id
    assert answer["package"] == f"prepay_id={prepay_id}" and answer["signType"] == "RSA"
    assert set(answer) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    signed = crypto.lines(keys().appid, answer["timeStamp"], answer["nonceStr"], answer["package"])
    assert crypto.verify(keys().merchant_key.public_key(), signed, answer["paySign"])


def test_the_same_order_gets_the_same_prepay_while_it_is_usable_then_a_fresh_one(world):
    order = world.order(expires_at_ms=world.clock.now_ms() + 3 * 3600 * 1000)
    first = world.payments.prepay(order.order_id, "c-1", OPENID)
    world.clock.advance(60)
    again = world.payments.prepay(order.order_id, "c-1", OPENID)
    assert again == first and len(jsapi_calls(world)) == 1
    # After the prepay's two hours (less the margin), a new JSAPI call
    world.clock.advance(PREPAY_VALID_MS / 1000)
    later = world.payments.prepay(order.order_id, "c-1", OPENID)
    assert later["package"] != first["package"] and len(jsapi_calls(world)) == 2
    assert world.prepays.items[order.order_id].package == later["package"]


def test_only_its_customer_and_only_a_payable_order(world):
    mine = world.order()
    with pytest.raises(NotFound):
        world.payments.prepay(mine.order_id, "c-2", OPENID)
    with pytest.raises(NotFound):
        world.payments.prepay("o" + "f" * 32, "c-1", OPENID)
    paid = world.order("o" + "1" * 32, status="PAID")
    with pytest.raises(OrderNotPayable):
        world.payments.prepay(paid.order_id, "c-1", OPENID)
    due = world.order("o" + "2" * 32, expires_at_ms=world.clock.now_ms())
    with pytest.raises(OrderNotPayable, match="window"):
        world.payments.prepay(due.order_id, "c-1", OPENID)
    assert jsapi_calls(world) == []


def test_another_payer_cannot_take_over_a_started_payment(world):
    order = world.order()
    world.payments.prepay(order.order_id, "c-1", OPENID)
    with pytest.raises(PayerChanged):
        world.payments.prepay(order.order_id, "c-1", "oTHER_OPENID")


def test_two_prepays_at_once_keep_one(world):
    # Given another request stored its prepay between our read and our write
    order = world.order()
    first = world.payments.prepay(order.order_id, "c-1", OPENID)
    stored = world.prepays.items[order.order_id]
    # When a write that read "nothing stored" comes second, the stored one stands
    assert world.prepays.keep(replace(stored, prepay_id="wx-late"), replacing=None) == stored
    assert world.payments.prepay(order.order_id, "c-1", OPENID) == first


def test_an_unverified_answer_a_refusal_and_no_answer_store_nothing(world):
    order = world.order(expires_at_ms=world.clock.now_ms() + 3 * 3600 * 1000)
    # A 2xx answer signed with another key is taken as forged
    world.wechatpay.keys = replace(keys(), platform_key=keys().merchant_key)
    with pytest.raises(ProviderUnavailable, match="did not verify"):
        world.payments.prepay(order.order_id, "c-1", OPENID)
    world.wechatpay.keys = keys()
    # No answer (a timeout)
    world.transport.fail_next = 1
    with pytest.raises(ProviderUnavailable):
        world.payments.prepay(order.order_id, "c-1", OPENID)
    assert world.prepays.items == {}
    # WeChat Pay's refusal names its code: the order was paid at WeChat Pay meanwhile
    world.payments.prepay(order.order_id, "c-1", OPENID)
    world.wechatpay.transactions[order.order_id[1:]].trade_state = "SUCCESS"
    world.clock.advance(PREPAY_VALID_MS / 1000)
    with pytest.raises(ProviderRefused) as refused:
        world.payments.prepay(order.order_id, "c-1", OPENID)
    assert refused.value.details["provider_code"] == "ORDERPAID"


def test_requests_with_a_stale_clock_are_refused_by_wechat_pay(world):
    order = world.order()
    world.wechatpay.clock = lambda: world.clock.now_ms() / 1000 + 301
    with pytest.raises(ProviderRefused) as refused:
        world.payments.prepay(order.order_id, "c-1", OPENID)
    assert refused.value.details["provider_code"] == "SIGN_ERROR"


# -- callbacks ---------------------------------------------------------------------------------
def paid(world: WeChatPayWorld, total_fen: int = 16800):
    order = world.order(total_fen=total_fen)
    world.payments.prepay(order.order_id, "c-1", OPENID)
    trade_no = order.order_id[1:]
    delivered: list[tuple[dict, bytes]] = []
    world.wechatpay.post = lambda url, headers, body: delivered.append((headers, body)) or 204
    world.wechatpay.pay(trade_no, retry=False)
    return order, trade_no, delivered[0]


@pytest.mark.parametrize("mode", ["public_key", "certificate"])
def test_a_genuine_callback_becomes_the_payment_notice_the_payment_path_applies(mode):
    world = WeChatPayWorld.build(mode)
    order, trade_no, (headers, body) = paid(world)
    assert world.payments.notified(headers, body) == "applied"
    transaction = world.wechatpay.transactions[trade_no]
    assert world.applied.applied == [
        PaymentNotice(
            order.order_id, str(transaction.transaction_id), 16800, str(transaction.success_time), "wechatpay"
        )
    ]
    # WeChat Pay repeats callbacks: each is handed on, the payment path applies a transaction once
    assert world.payments.notified(headers, body) == "applied" and len(world.applied.applied) == 2


def test_the_amount_is_handed_on_as_paid_for_the_payment_path_to_compare(world):
    order, trade_no, _ = paid(world)
    headers, body = world.wechatpay.callback(trade_no, amount_delta=-1)
    world.payments.notified(headers, body)
    assert world.applied.applied[-1].amount_fen == order.total_fen - 1


@pytest.mark.parametrize(
    "hostile, refusal",
    [
        ({"sign_with_other_key": True}, "does not match"),
        ({"timestamp_offset_s": -360}, "stale"),
        ({"timestamp_offset_s": 301}, "stale"),
        ({"tamper_ciphertext": True}, "decrypt"),
    ],
)
def test_hostile_callbacks_are_bad_signatures_and_apply_nothing(world, hostile, refusal):
    _, trade_no, _ = paid(world)
    headers, body = world.wechatpay.callback(trade_no, **hostile)
    with pytest.raises(BadSignature, match=refusal):
        world.payments.notified(headers, body)
    assert world.applied.applied == []


def test_a_body_altered_after_signing_or_under_an_unknown_serial_is_refused(world):
    _, _, (headers, body) = paid(world)
    altered = body.replace(b'"summary"', b'"Summary"')
    with pytest.raises(BadSignature):
        world.payments.notified(headers, altered)
    with pytest.raises(BadSignature, match="do not hold"):
        world.payments.notified({**headers, "wechatpay-serial": keys().certificate_serial}, body)
    assert world.applied.applied == []


@pytest.mark.parametrize(
    "change",
    [
        {"mchid": "1900000999"},
        {"appid": "wx0000000000000000"},
        {"trade_state": "NOTPAY"},
        {"amount": {"total": 16800, "currency": "USD"}},
        {"amount": {"total": 168.0, "currency": "CNY"}},
        {"transaction_id": ""},
        {"out_trade_no": "../../x"},
    ],
)
def test_a_genuine_callback_for_another_merchant_app_state_or_currency_is_not_ours(world, change):
    _, trade_no, _ = paid(world)
    resource = {**world.wechatpay.transaction_resource(world.wechatpay.transactions[trade_no]), **change}
    headers, body = world.wechatpay.notification(resource)
    with pytest.raises(NotOurs):
        world.payments.notified(headers, body)
    assert world.applied.applied == []


def test_other_events_are_acknowledged_without_effect_and_bodies_of_other_shapes_are_malformed(world):
    headers, body = world.wechatpay.notification(
        {"refund_status": "SUCCESS"}, event_type="REFUND.SUCCESS", original_type="refund"
    )
    assert world.payments.notified(headers, body) == "ignored"
    for raw in (b"[]", b'{"id": "x", "event_type": "TRANSACTION.SUCCESS"}', b"not json"):
        signed = {"content-type": "application/json", **world.wechatpay.signature_headers(raw)}
        with pytest.raises(MalformedRequest):
            world.payments.notified(signed, raw)
    resource = json.loads(body)["resource"]
    assert resource["algorithm"] == "AEAD_AES_256_GCM" and resource["associated_data"] == "refund"
    assert world.applied.applied == []
