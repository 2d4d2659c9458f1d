"""The set-up the hostile cases need, over HTTP: a product with stock, an order, a payment, a pickup."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from shared.payments.hmac_webhook import sign
from tests.e2e.http_api import HttpApi

ADDRESS = {"recipient": "韩梅梅", "phone": "+86 137 0000 1234", "city": "上海", "detail": "徐汇区 3 号"}
DELIVERY = {"type": "delivery", "address": ADDRESS}
PICKUP = {"type": "pickup", "store_id": "S001"}


def product(api: HttpApi, admin: str, price_fen: int = 2500, stock: dict[str, int] | None = None) -> str:
    """A product of its own, with `stock` (default 10 at WH and at S001)."""
    sku = f"HOS-{uuid.uuid4().hex[:8].upper()}"
    put = api.put(f"/admin/products/{sku}", token=admin, json={"name": "试探茶", "price_fen": price_fen})
    assert put.status_code == 201, put.text
    for location, on_hand in (stock or {"WH": 10, "S001": 10}).items():
        counted = api.put(f"/admin/stock/{sku}", token=admin, json={"location": location, "on_hand": on_hand})
        assert counted.status_code == 201, counted.text
    return sku


def order(api: HttpApi, customer: str, sku: str, fulfilment: dict[str, Any], qty: int = 1) -> dict[str, Any]:
    placed = api.post("/orders", token=customer, json={"lines": [{"sku": sku, "qty": qty}], "fulfilment": fulfilment})
    assert placed.status_code == 201, placed.text
    return placed.json()


def notify(api: HttpApi, secret: str, body: dict[str, Any] | bytes, signature: str | None = None) -> Any:
    """POST /payments/notify with `body`, signed over exactly its bytes unless `signature` is given."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    header = signature if signature is not None else sign(secret, raw, int(time.time()))
    return api.post("/payments/notify", data=raw, headers={"X-Pay-Signature": header})


def ready_pickup(api: HttpApi, tokens: dict[str, str], sku: str) -> tuple[str, str]:
    """A paid pickup order at S001, readied by the store: (order id, the customer's pickup code)."""
    placed = order(api, tokens["customer"], sku, PICKUP)
    assert api.post(f"/dev/pay/{placed['order_id']}").status_code == 200
    ready = api.post(f"/orders/{placed['order_id']}/ready-for-pickup", token=tokens["store_staff"])
    assert ready.status_code == 200, ready.text
    code = api.get(f"/orders/{placed['order_id']}", token=tokens["customer"]).json()["pickup_code"]
    return placed["order_id"], code
