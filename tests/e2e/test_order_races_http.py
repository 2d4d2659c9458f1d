"""Issue 3's races over HTTP: concurrent storefront clients against `chalice local` and the
serialised emulator (the service-layer versions, with injected faults, are in tests/load)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from shared.web.auth import Role, issue_token

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "韩梅梅", "phone": "13700137000", "city": "上海", "detail": "3号"},
}


def _product_with(api, tokens, units: int) -> str:
    sku = f"RACE-{uuid.uuid4().hex[:8].upper()}"
    admin = tokens["merchant_admin"]
    assert api.put(f"/admin/products/{sku}", token=admin, json={"name": "抢购", "price_fen": 990}).status_code == 201
    assert api.put(f"/admin/stock/{sku}", token=admin, json={"location": "WH", "on_hand": units}).status_code == 201
    return sku


def _post_order(url: str, token: str, sku: str, key: str) -> requests.Response:
    """As a storefront does: one Idempotency-Key per purchase. Sent once: the local server's backlog
    takes the burst (infra/local/api_server.py), so no connection is reset and none is resent."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    body = {"lines": [{"sku": sku, "qty": 1}], "fulfilment": DELIVERY}
    return requests.post(f"{url}/orders", json=body, headers=headers, timeout=60)


def test_fifty_customers_for_the_last_ten_units_over_http(api, stack, tokens):
    sku = _product_with(api, tokens, 10)
    secret = stack.environment["JWT_SECRET"]
    customers = [issue_token(secret, f"racer-{i}", Role.CUSTOMER) for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(
            pool.map(lambda t: _post_order(stack.api_url, t, sku, f"buy-{uuid.uuid4()}").status_code, customers)
        )
    assert sorted(statuses) == [201] * 10 + [409] * 40
    stock = api.get(f"/admin/stock/{sku}", token=tokens["merchant_admin"]).json()["locations"][0]
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 10, 0)


def test_twenty_concurrent_replays_of_one_key_over_http(api, stack, tokens):
    sku = _product_with(api, tokens, 50)
    token, key = tokens["customer"], f"replay-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: _post_order(stack.api_url, token, sku, key), range(20)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["order_id"] for r in responses}) == 1
    stock = api.get(f"/admin/stock/{sku}", token=tokens["merchant_admin"]).json()["locations"][0]
    assert (stock["reserved"], stock["available"]) == (1, 49)
