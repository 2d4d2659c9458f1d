"""WeChat Pay's routes through chalice.test.Client on moto, with the local WeChat Pay serving HTTP in this
process (infra/local/wechatpay_server.py): prepay, the callback path into the order lifecycle, and the
hostile callbacks WeChat Pay's protocol must refuse (docs/payments.md)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from infra.local.wechatpay_server import LocalWeChatPay, serve
from shared.data.items import PaymentItem
from shared.payments import hmac_webhook
from shared.payments import wechatpay_crypto as crypto
from shared.platform import bootstrap
from tests.conftest import bearer
from tests.fakes.payments import keys
from tests.functional.orders_support import events_of, given_catalogue, stock_of

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"},
}
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
NOTIFY = "/payments/wechatpay/notify"


def local_wechatpay(client, monkeypatch, mode: str) -> Iterator[LocalWeChatPay]:
    wechatpay = LocalWeChatPay(keys(), mode=mode)
    server = serve(wechatpay, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_base = f"http://127.0.0.1:{server.server_port}"
    for name, value in keys().api_settings(api_base, f"http://testserver{NOTIFY}", mode).items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    bootstrap.ready()
    # Callbacks go to the app under test, through the test client
    wechatpay.post = lambda url, headers, body: client.http.post(NOTIFY, headers=headers, body=body).status_code
    try:
        yield wechatpay
    finally:
        server.shutdown()
        server.server_close()
        wechatpay.stop()


@pytest.fixture
def wechatpay(client, table, monkeypatch) -> Iterator[LocalWeChatPay]:
    given_catalogue({("TEA-1", "WH"): 5, ("CUP-1", "WH"): 5})
    yield from local_wechatpay(client, monkeypatch, "public_key")


@pytest.fixture
def certificate_mode(client, table, monkeypatch) -> Iterator[LocalWeChatPay]:
    given_catalogue({("TEA-1", "WH"): 5})
    yield from local_wechatpay(client, monkeypatch, "certificate")


def post(client, path, token, body=None):
    return client.http.post(path, headers=bearer(token), body=json.dumps(body or {}))


def place(client, token, sku="TEA-1", qty=1) -> dict:
    response = post(client, "/orders", token, {"lines": [{"sku": sku, "qty": qty}], "fulfilment": DELIVERY})
    assert response.status_code == 201, response.json_body
    return response.json_body


def order_of(client, tokens, order_id) -> dict:
    return client.http.get(f"/orders/{order_id}", headers=bearer(tokens["customer"])).json_body


def payments_of(order_id: str) -> list[PaymentItem]:
    return [item for item in PaymentItem.scan() if item.order_id == order_id]


def test_prepay_answers_wx_request_payment_parameters_once_per_order(client, tokens, wechatpay):
    # Given an unpaid order
    order = place(client, tokens["customer"])
    # When its customer asks to pay, twice
    first = post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID})
    again = post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID})
    # Then the same parameters, from one JSAPI call for the order's total, and paySign verifies
    assert first.status_code == 200 and again.json_body == first.json_body
    params = first.json_body
    assert params["signType"] == "RSA" and params["package"].startswith("prepay_id=wx")
    signed = crypto.lines(keys().appid, params["timeStamp"], params["nonceStr"], params["package"])
    assert crypto.verify(keys().merchant_key.public_key(), signed, params["paySign"])
    jsapi = [body for method, path, body in wechatpay.requests if path == "/v3/pay/transactions/jsapi"]
    assert len(jsapi) == 1 and jsapi[0]["amount"]["total"] == order["total_fen"]
    assert jsapi[0]["out_trade_no"] == order["order_id"][1:] and jsapi[0]["payer"]["openid"] == OPENID


def test_prepay_refusals(client, tokens, wechatpay):
    order = place(client, tokens["customer"])
    path = f"/orders/{order['order_id']}/payments"
    assert post(client, path, tokens["customer2"], {"openid": OPENID}).status_code == 404
    assert post(client, path, tokens["merchant_admin"], {"openid": OPENID}).status_code == 403
    assert post(client, path, tokens["customer"], {"openid": "o 1"}).status_code == 422
    assert post(client, path, tokens["customer"], {}).status_code == 422
    post(client, path, tokens["customer"], {"openid": OPENID})
    other_payer = post(client, path, tokens["customer"], {"openid": "oANOTHER"})
    assert other_payer.status_code == 409 and other_payer.json_body["code"] == "PAYER_CHANGED"
    post(client, f"/orders/{order['order_id']}/cancel", tokens["customer"])
    cancelled = post(client, path, tokens["customer"], {"openid": OPENID})
    assert cancelled.status_code == 409 and cancelled.json_body["code"] == "ORDER_NOT_PAYABLE"


def test_without_wechat_pay_the_prepay_and_callback_routes_are_404(client, tokens, table):
    given_catalogue({("TEA-1", "WH"): 5})
    order = place(client, tokens["customer"])
    assert (
        post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID}).status_code == 404
    )
    # an unsigned callback is refused as such in every stage; a signed-looking one finds no WeChat Pay here
    unsigned = client.http.post(NOTIFY, headers={"Content-Type": "application/json"}, body=b"{}")
    assert unsigned.status_code == 401 and unsigned.json_body["code"] == "FAIL"
    headers = {
        name: "1" for name in ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial")
    }
    refused = client.http.post(NOTIFY, headers={**headers, "Content-Type": "application/json"}, body=b"{}")
    assert refused.status_code == 404 and refused.json_body["code"] == "FAIL"


def test_paid_once_however_often_wechat_pay_calls_back(client, tokens, wechatpay):
    # Given an order with a prepay
    order = place(client, tokens["customer"], "CUP-1", 2)
    post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID})
    # When WeChat Pay pays it and calls back five times
    statuses = wechatpay.pay(order["order_id"][1:], times=5)
    # Then each callback is 204, and the order was paid once: one payment, one PAID, stock committed once
    assert statuses == [204] * 5
    paid = order_of(client, tokens, order["order_id"])
    assert paid["status"] == "PAID"
    assert [entry["status"] for entry in paid["history"]].count("PAID") == 1
    (payment,) = payments_of(order["order_id"])
    transaction = wechatpay.transactions[order["order_id"][1:]]
    assert payment.transaction_id == transaction.transaction_id and payment.status == "APPLIED"
    assert payment.amount_fen == order["total_fen"]
    assert stock_of("CUP-1") == (3, 0, 3)
    assert events_of(order["order_id"]).count("OrderPaid") == 1
    # And a prepay for a paid order is refused
    again = post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID})
    assert again.status_code == 409


def test_certificate_mode_pays_too(client, tokens, certificate_mode):
    order = place(client, tokens["customer"])
    post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID})
    assert certificate_mode.pay(order["order_id"][1:]) == [204]
    assert order_of(client, tokens, order["order_id"])["status"] == "PAID"


def test_hostile_callbacks_change_nothing_and_are_answered_with_fail(client, tokens, wechatpay):
    # Given an order with a prepay
    order = place(client, tokens["customer"])
    trade_no = order["order_id"][1:]
    post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID})
    hostile = [
        ({"sign_with_other_key": True}, 401),
        ({"tamper_ciphertext": True}, 401),
        ({"amount_delta": -1}, 422),
        ({"timestamp_offset_s": -360}, 401),
    ]
    # When WeChat Pay's callback comes signed with another key, altered, for 1 fen less, 6 minutes old
    for options, expected in hostile:
        wechatpay.post = recording(client)
        assert wechatpay.pay(trade_no, retry=False, **options) == [expected], options
        assert wechatpay.post.bodies[-1]["code"] == "FAIL"  # type: ignore[attr-defined]
    # Then the order is untouched and no payment is recorded
    untouched = order_of(client, tokens, order["order_id"])
    assert untouched["status"] == "PENDING_PAYMENT" and untouched["version"] == 1
    assert payments_of(order["order_id"]) == []
    # And an honest delivery of the same payment pays it
    assert wechatpay.pay(trade_no) == [204]
    assert order_of(client, tokens, order["order_id"])["status"] == "PAID"


def test_a_late_payment_is_recorded_for_refund_and_acknowledged(client, tokens, wechatpay):
    order = place(client, tokens["customer"])
    post(client, f"/orders/{order['order_id']}/payments", tokens["customer"], {"openid": OPENID})
    post(client, f"/orders/{order['order_id']}/cancel", tokens["customer"])
    assert wechatpay.pay(order["order_id"][1:], times=2) == [204, 204]
    (payment,) = payments_of(order["order_id"])
    assert payment.status == "NEEDS_REFUND"
    assert order_of(client, tokens, order["order_id"])["status"] == "CANCELLED"
    assert events_of(order["order_id"]).count("PaymentNeedsRefund") == 1


def test_callbacks_of_other_shapes_are_fail_not_500(client, wechatpay):
    for raw in (b"[]", b"{not json", json.dumps({"id": "x", "event_type": "TRANSACTION.SUCCESS"}).encode()):
        headers = {"content-type": "application/json", **wechatpay.signature_headers(raw)}
        response = client.http.post(NOTIFY, headers=headers, body=raw)
        assert response.status_code == 400 and response.json_body["code"] == "FAIL", raw
    unsigned = client.http.post(NOTIFY, headers={"Content-Type": "application/json"}, body=b"{}")
    assert unsigned.status_code == 401 and set(unsigned.json_body) == {"code", "message"}


def test_the_hmac_webhook_stays_live_beside_wechat_pay(client, tokens, wechatpay):
    paid = paid_by_hmac(client, place(client, tokens["customer"]))
    assert paid.status_code == 200 and paid.json_body["outcome"] == "paid"


def paid_by_hmac(client, order: dict):
    """The generic HMAC webhook's notice for the order's total, signed with the test stage's secret."""
    raw = json.dumps(
        {
            "order_id": order["order_id"],
            "transaction_id": f"hmac-{order['order_id']}",
            "amount_fen": order["total_fen"],
            "paid_at": "2026-12-02T08:00:00Z",
        }
    ).encode()
    signature = hmac_webhook.sign("test-webhook-secret", raw, int(time.time()))
    return client.http.post("/payments/notify", headers={"X-Pay-Signature": signature}, body=raw)


def test_dev_pay_under_wechat_pay_pays_through_the_local_wechat_pay(client, tokens, wechatpay):
    # Given an order nobody started paying
    order = place(client, tokens["customer"])
    # When /dev/pay is asked: the local WeChat Pay is given its prepay and pays it, and its signed callback
    # applies the payment (docs/payments.md)
    paid = client.http.post(f"/dev/pay/{order['order_id']}")
    assert paid.status_code == 200, paid.json_body
    assert paid.json_body == {"order_id": order["order_id"], "status": "PAID", "outcome": "paid"}
    (payment,) = [p for p in PaymentItem.scan() if p.order_id == order["order_id"]]
    assert payment.provider == "wechatpay" and payment.status == "APPLIED"
    assert client.http.post(f"/dev/pay/{order['order_id']}").json_body["outcome"] == "duplicate"
    # But an order paid through the HMAC webhook has no WeChat Pay transaction to pay
    other = place(client, tokens["customer"])
    assert paid_by_hmac(client, other).status_code == 200
    refused = client.http.post(f"/dev/pay/{other['order_id']}")
    assert refused.status_code == 409 and refused.json_body["code"] == "INVALID_TRANSITION"


def recording(client):
    def post_to_app(url, headers, body):
        response = client.http.post(NOTIFY, headers=headers, body=body)
        post_to_app.bodies.append(response.json_body if response.body else None)  # type: ignore[attr-defined]
        return response.status_code

    post_to_app.bodies = []  # type: ignore[attr-defined]
    return post_to_app
