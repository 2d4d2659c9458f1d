"""The order routes through chalice.test.Client on moto: API.md's contract for checkout and orders."""

from __future__ import annotations

import json
import time

import pytest

from shared.payments.hmac_webhook import sign
from tests.conftest import TEST_ENV, bearer
from tests.functional.orders_support import given_catalogue, stock_of

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"},
}


@pytest.fixture
def stocked(table):
    given_catalogue({("TEA-1", "WH"): 5, ("CUP-1", "WH"): 5})


def post(client, path, token, body=None, **headers):
    return client.http.post(path, headers={**bearer(token), **headers}, body=json.dumps(body or {}))


def place(client, token, lines, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return post(client, "/orders", token, {"lines": lines, "fulfilment": DELIVERY}, **headers)


def notify(client, body: dict, secret=TEST_ENV["PAYMENT_WEBHOOK_SECRET"], at=None):
    raw = json.dumps(body).encode()
    signature = sign(secret, raw, int(at if at is not None else time.time()))
    return client.http.post(
        "/payments/notify", headers={"X-Pay-Signature": signature, "Content-Type": "application/json"}, body=raw
    )


def paid_body(order):
    return {
        "order_id": order["order_id"],
        "transaction_id": "wx-1",
        "amount_fen": order["total_fen"],
        "paid_at": "2026-11-23T01:00:00Z",
    }


def test_place_replay_and_read_an_order(client, tokens, stocked):
    first = place(client, tokens["customer"], [{"sku": "TEA-1", "qty": 2}], key="key-1")
    again = place(client, tokens["customer"], [{"sku": "TEA-1", "qty": 2}], key="key-1")
    reused = place(client, tokens["customer"], [{"sku": "TEA-1", "qty": 3}], key="key-1")
    assert first.status_code == 201 and again.status_code == 201
    assert again.json_body == first.json_body
    assert reused.status_code == 422 and reused.json_body["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert stock_of("TEA-1") == (5, 2, 3)
    order = first.json_body
    assert order["status"] == "PENDING_PAYMENT" and order["expires_at"] > order["created_at"]
    got = client.http.get(f"/orders/{order['order_id']}", headers=bearer(tokens["customer"]))
    assert got.status_code == 200 and got.json_body["history"][0]["status"] == "PENDING_PAYMENT"
    # nobody reads another customer's order
    other = client.http.get(f"/orders/{order['order_id']}", headers=bearer(tokens["customer2"]))
    assert other.status_code == 404


def test_out_of_stock_is_409_naming_the_sku_and_holds_nothing(client, tokens, stocked):
    response = place(client, tokens["customer"], [{"sku": "TEA-1", "qty": 1}, {"sku": "CUP-1", "qty": 6}])
    assert response.status_code == 409
    assert response.json_body["code"] == "OUT_OF_STOCK" and response.json_body["details"]["sku"] == "CUP-1"
    assert stock_of("TEA-1") == (5, 0, 5)


def test_customers_list_their_own_orders_newest_first(client, tokens, stocked):
    ids = [place(client, tokens["customer"], [{"sku": "TEA-1", "qty": 1}]).json_body["order_id"] for _ in range(3)]
    place(client, tokens["customer2"], [{"sku": "CUP-1", "qty": 1}])
    page1 = client.http.get("/orders?limit=2", headers=bearer(tokens["customer"])).json_body
    page2 = client.http.get(
        f"/orders?limit=2&cursor={page1['next_cursor']}", headers=bearer(tokens["customer"])
    ).json_body
    listed = [o["order_id"] for o in page1["items"] + page2["items"]]
    assert listed == list(reversed(ids))


def test_payment_notification_rules(client, tokens, stocked):
    order = place(client, tokens["customer"], [{"sku": "TEA-1", "qty": 1}]).json_body
    body = paid_body(order)
    forged = notify(client, body, secret="not-the-secret")
    stale = notify(client, body, at=time.time() - 301)
    short = notify(client, {**body, "amount_fen": order["total_fen"] - 1})
    assert (forged.status_code, stale.status_code, short.status_code) == (401, 401, 422)
    untouched = client.http.get(f"/orders/{order['order_id']}", headers=bearer(tokens["customer"])).json_body
    assert untouched["status"] == "PENDING_PAYMENT" and untouched["version"] == 1
    paid = notify(client, body)
    twice = notify(client, body)
    assert paid.status_code == 200 and paid.json_body == {
        "order_id": order["order_id"],
        "status": "PAID",
        "outcome": "paid",
    }
    assert twice.status_code == 200 and twice.json_body["outcome"] == "duplicate"
    assert stock_of("TEA-1") == (4, 0, 4)


def test_malformed_notification_is_400_not_500(client, stocked):
    raw = b"{not json"
    response = client.http.post(
        "/payments/notify",
        headers={"X-Pay-Signature": sign(TEST_ENV["PAYMENT_WEBHOOK_SECRET"], raw, int(time.time()))},
        body=raw,
    )
    assert response.status_code == 400


def test_cancel_rules(client, tokens, stocked):
    order = place(client, tokens["customer"], [{"sku": "TEA-1", "qty": 2}]).json_body
    not_theirs = post(client, f"/orders/{order['order_id']}/cancel", tokens["customer2"])
    cancelled = post(client, f"/orders/{order['order_id']}/cancel", tokens["customer"])
    again = post(client, f"/orders/{order['order_id']}/cancel", tokens["customer"])
    assert (not_theirs.status_code, cancelled.status_code, again.status_code) == (404, 200, 409)
    assert cancelled.json_body["status"] == "CANCELLED"
    assert stock_of("TEA-1") == (5, 0, 5)
    paid_after = notify(client, paid_body(order))
    assert paid_after.status_code == 200 and paid_after.json_body["outcome"] == "needs_refund"


def test_dev_pay_then_ship_complete_and_refund(client, tokens, stocked):
    order = place(client, tokens["customer"], [{"sku": "CUP-1", "qty": 3}]).json_body
    order_id = order["order_id"]
    assert client.http.post(f"/dev/pay/{order_id}").json_body["outcome"] == "paid"
    shipped = post(client, f"/orders/{order_id}/ship", tokens["merchant_admin"], {"tracking_number": "SF1001"})
    by_customer = post(client, f"/orders/{order_id}/ship", tokens["customer"], {"tracking_number": "SF1001"})
    assert shipped.status_code == 200 and by_customer.status_code == 403
    assert post(client, f"/orders/{order_id}/complete", tokens["customer"]).json_body["status"] == "COMPLETED"
    refund = post(
        client,
        f"/orders/{order_id}/refunds",
        tokens["customer"],
        {"lines": [{"sku": "CUP-1", "qty": 1}], "reason": "broken"},
    )
    assert refund.status_code == 201 and refund.json_body["status"] == "REQUESTED"
    decided = post(
        client,
        f"/admin/orders/{order_id}/refunds/{refund.json_body['refund_id']}/decision",
        tokens["merchant_admin"],
        {"approve": True, "restock": True},
    )
    assert decided.status_code == 200 and decided.json_body["status"] == "ISSUED"
    line_payable = order["lines"][0]["payable_fen"]
    assert decided.json_body["amount_fen"] == line_payable // 3  # 3,333 x 3 = 9,999: a third each
    view = client.http.get(f"/orders/{order_id}", headers=bearer(tokens["customer"])).json_body
    assert view["refunded_fen"] == decided.json_body["amount_fen"] and view["refunds"][0]["status"] == "ISSUED"
    assert stock_of("CUP-1") == (3, 0, 3)


def test_bad_bodies_are_clear_errors(client, tokens, stocked):
    assert client.http.post("/orders", headers=bearer(tokens["customer"]), body="{").status_code == 400
    float_qty = place(client, tokens["customer"], [{"sku": "TEA-1", "qty": 1.5}])
    assert float_qty.status_code == 422
    assert post(client, "/orders/x/ship", tokens["merchant_admin"], {}).status_code == 422
    assert post(client, "/orders/nope/cancel", tokens["customer"]).status_code == 404
