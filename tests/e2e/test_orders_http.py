"""Issue 3 end to end: quote, place, replay, pay, duplicate / forged / stale / short notifications,
cancel rules, out-of-stock, expiry releasing stock, partial refund, all over HTTP against the
`make dev` stack (chalice local + serialised moto + the event runner; the expiry sweeper on a clock
moved past the payment window, see infra/local/expire_unpaid.py)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.payments.hmac_webhook import sign
from tests.e2e.http_api import eventually

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "李雷", "phone": "13900139000", "city": "上海", "detail": "徐汇区2号"},
}


@pytest.fixture
def sku(api, tokens) -> str:
    """A product of this test's own with 10 units at WH, so tests do not share stock."""
    name = f"E2E-{uuid.uuid4().hex[:8].upper()}"
    admin = tokens["merchant_admin"]
    assert (
        api.put(f"/admin/products/{name}", token=admin, json={"name": "测试茶", "price_fen": 3333}).status_code == 201
    )
    assert api.put(f"/admin/stock/{name}", token=admin, json={"location": "WH", "on_hand": 10}).status_code in (
        200,
        201,
    )
    return name


def stock(api, tokens, sku: str) -> tuple[int, int, int]:
    body = api.get(f"/admin/stock/{sku}", token=tokens["merchant_admin"]).json()
    (wh,) = [loc for loc in body["locations"] if loc["location"] == "WH"]
    return wh["on_hand"], wh["reserved"], wh["available"]


def cart(sku: str, qty: int) -> dict:
    return {"lines": [{"sku": sku, "qty": qty}], "fulfilment": DELIVERY}


def notify(api, stack, body: dict, *, secret: str | None = None, at: float | None = None):
    raw = json.dumps(body).encode()
    secret = secret or stack.environment["PAYMENT_WEBHOOK_SECRET"]
    header = sign(secret, raw, int(at if at is not None else time.time()))
    return api.post("/payments/notify", data=raw, headers={"X-Pay-Signature": header})


def test_quote_place_replay_pay_and_notification_rules(api, stack, tokens, sku):
    customer = tokens["customer"]
    quote = api.post("/checkout/quote", token=customer, json=cart(sku, 3))
    assert quote.status_code == 200
    # place: 201, stock held
    placed = api.post("/orders", token=customer, json=cart(sku, 3), headers={"Idempotency-Key": f"e2e-{sku}"})
    assert placed.status_code == 201
    order = placed.json()
    assert order["status"] == "PENDING_PAYMENT" and order["total_fen"] == quote.json()["total_fen"]
    assert stock(api, tokens, sku) == (10, 3, 7)
    # replay with the same key: the same order, nothing more held
    replay = api.post("/orders", token=customer, json=cart(sku, 3), headers={"Idempotency-Key": f"e2e-{sku}"})
    assert replay.status_code == 201 and replay.json() == order
    assert stock(api, tokens, sku) == (10, 3, 7)
    # forged, stale and short notifications: 401 / 401 / 422, order untouched
    body = {
        "order_id": order["order_id"],
        "transaction_id": f"wx-{sku}",
        "amount_fen": order["total_fen"],
        "paid_at": "2026-11-23T02:00:00Z",
    }
    assert notify(api, stack, body, secret="forged-secret-forged").status_code == 401
    assert notify(api, stack, body, at=time.time() - 600).status_code == 401
    assert notify(api, stack, {**body, "amount_fen": order["total_fen"] - 1}).status_code == 422
    assert api.get(f"/orders/{order['order_id']}", token=customer).json()["status"] == "PENDING_PAYMENT"
    # pay, then the same notification again: committed once
    assert notify(api, stack, body).json()["outcome"] == "paid"
    assert notify(api, stack, body).json()["outcome"] == "duplicate"
    assert stock(api, tokens, sku) == (7, 0, 7)
    history = api.get(f"/orders/{order['order_id']}", token=customer).json()["history"]
    assert [h["status"] for h in history] == ["PENDING_PAYMENT", "PAID"]


def test_out_of_stock_and_cancel_rules(api, tokens, sku):
    customer = tokens["customer"]
    short = api.post("/orders", token=customer, json=cart(sku, 11))
    assert short.status_code == 409 and short.json()["details"]["sku"] == sku
    order = api.post("/orders", token=customer, json=cart(sku, 4)).json()
    assert api.post(f"/orders/{order['order_id']}/cancel", token=tokens["customer2"]).status_code == 404
    assert api.post(f"/orders/{order['order_id']}/cancel", token=customer).json()["status"] == "CANCELLED"
    assert api.post(f"/orders/{order['order_id']}/cancel", token=customer).status_code == 409
    assert stock(api, tokens, sku) == (10, 0, 10)
    paid = api.post("/orders", token=customer, json=cart(sku, 1)).json()
    assert api.post(f"/dev/pay/{paid['order_id']}").json()["outcome"] == "paid"
    assert api.post(f"/orders/{paid['order_id']}/cancel", token=customer).status_code == 409


def test_expiry_releases_stock(api, stack, tokens, sku):
    order = api.post("/orders", token=tokens["customer"], json=cart(sku, 5)).json()
    assert stock(api, tokens, sku) == (10, 5, 5)
    # When the payment window passes (the sweeper runs on a clock moved past it)
    assert stack.expire_unpaid_orders() >= 1
    expired = eventually(
        lambda: (
            (got := api.get(f"/orders/{order['order_id']}", token=tokens["customer"]).json())["status"] == "CANCELLED"
            and got
        )
    )
    assert expired["cancel_reason"] == "expired"
    assert stock(api, tokens, sku) == (10, 0, 10)
    # And a payment the provider notifies after the window is recorded for refund (the HMAC webhook:
    # WeChat Pay, the stage's provider, no longer takes money for an order it never prepaid)
    notice = {
        "order_id": order["order_id"],
        "transaction_id": f"late-{order['order_id']}",
        "paid_at": "2026-12-03T08:00:00Z",
    }
    late = notify(api, stack, {**notice, "amount_fen": order["total_fen"]}).json()
    assert late["outcome"] == "needs_refund"


def test_partial_refund_with_exact_amounts(api, tokens, sku):
    customer, admin = tokens["customer"], tokens["merchant_admin"]
    order = api.post("/orders", token=customer, json=cart(sku, 3)).json()
    api.post(f"/dev/pay/{order['order_id']}")
    payable = order["lines"][0]["payable_fen"]
    amounts = []
    for qty in (1, 2):
        refund = api.post(
            f"/orders/{order['order_id']}/refunds",
            token=customer,
            json={"lines": [{"sku": sku, "qty": qty}], "reason": "damaged"},
        ).json()
        decided = api.post(
            f"/admin/orders/{order['order_id']}/refunds/{refund['refund_id']}/decision",
            token=admin,
            json={"approve": True, "restock": qty == 1},
        )
        assert decided.status_code == 200
        amounts.append(decided.json()["amount_fen"])
    assert sum(amounts) == payable
    final = api.get(f"/orders/{order['order_id']}", token=customer).json()
    assert final["status"] == "REFUNDED" and final["refunded_fen"] == payable
    assert stock(api, tokens, sku) == (8, 0, 8)  # 10 - 3 sold + 1 restocked
