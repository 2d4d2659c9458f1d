"""Set-up for commission and settlement tests on moto: the organisation, a product, rules, and
orders placed and paid through the routes, with the event runner draining stream and queues."""

from __future__ import annotations

import json
import time

from chalice.test import Client

from infra.local.runner import EventRunner
from shared.payments.hmac_webhook import sign
from tests.conftest import TEST_ENV, bearer
from tests.functional.stock_support import given_locations, given_product, given_stock

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"},
}
RULES = {"rates_bp": {"dealer": 500, "store": 800, "guide": 300}}
DAY_S = 86_400


def call(client: Client, method: str, path: str, token: str, body: dict | None = None):
    kwargs = {"body": json.dumps(body)} if body is not None else {}
    return getattr(client.http, method)(path, headers=bearer(token), **kwargs)


def given_shop(client: Client, tokens: dict) -> Client:
    admin = tokens["merchant_admin"]
    given_locations()
    assert call(client, "put", "/admin/dealers/D001", admin, {"name": "华东经销商"}).status_code == 200
    assert (
        call(client, "put", "/admin/stores/S001", admin, {"name": "上海静安店", "dealer_id": "D001"}).status_code == 200
    )
    assert call(client, "put", "/admin/guides/G001", admin, {"name": "王芳", "store_id": "S001"}).status_code == 200
    given_product(client, admin, "TEA-1", 4_000, category="tea")
    given_stock(client, admin, "TEA-1", WH=50)
    assert call(client, "put", "/admin/commission-rules", admin, RULES).status_code == 200
    return client


def pay(client: Client, order: dict) -> None:
    body = {
        "order_id": order["order_id"],
        "transaction_id": f"wx-{order['order_id']}",
        "amount_fen": order["total_fen"],
    }
    raw = json.dumps({**body, "paid_at": "2026-11-23T01:00:00Z"}).encode()
    headers = {
        "X-Pay-Signature": sign(TEST_ENV["PAYMENT_WEBHOOK_SECRET"], raw, int(time.time())),
        "Content-Type": "application/json",
    }
    assert client.http.post("/payments/notify", headers=headers, body=raw).status_code == 200


def drain(timeout_s: float = 120.0) -> None:
    """Everything the stream and the queues hold, processed (a settlement run is 16 shard messages)."""
    EventRunner(quiet=True).drain(timeout_s=timeout_s)


def my_ledger(client: Client, token: str) -> dict:
    response = call(client, "get", "/me/commissions", token)
    assert response.status_code == 200, response.body
    return response.json_body


def ordered_and_paid(client: Client, customer: str, qty: int = 2) -> dict:
    placed = call(
        client, "post", "/orders", customer, {"lines": [{"sku": "TEA-1", "qty": qty}], "fulfilment": DELIVERY}
    )
    assert placed.status_code == 201, placed.json_body
    pay(client, placed.json_body)
    drain()
    return placed.json_body


def refund_approved(client: Client, customer: str, admin: str, order_id: str, lines: list[dict]) -> dict:
    """A refund of `lines` asked for by the customer and approved by the admin, then every event
    it causes processed; returns the refund as asked for."""
    asked = call(client, "post", f"/orders/{order_id}/refunds", customer, {"lines": lines, "reason": "破损"})
    assert asked.status_code == 201, asked.json_body
    path = f"/admin/orders/{order_id}/refunds/{asked.json_body['refund_id']}/decision"
    assert call(client, "post", path, admin, {"approve": True}).status_code == 200
    drain()
    return asked.json_body
