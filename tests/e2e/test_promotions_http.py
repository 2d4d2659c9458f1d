"""Promotions over HTTP against the `make dev` stack (issue 11, "Promotions"; docs/pricing.md): an
admin's tiered 满减 and 满赠 on products of this test's own (so no other test's amounts move), the
public list, a quote and an order with a coupon and both promotions (the gift line held in stock by
the order's transaction), and ten concurrent PUTs on one version, of which exactly one wins."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

pytestmark = pytest.mark.e2e

ADDRESS = {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"}


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, tz=UTC).isoformat()


def put(api, tokens, promotion_id: str, body: dict) -> requests.Response:
    return api.put(f"/admin/promotions/{promotion_id}", token=tokens["merchant_admin"], json=body)


def test_a_tiered_promotion_and_a_gift_price_an_order_with_a_coupon(api, stack, tokens):
    run = uuid.uuid4().hex[:8].upper()
    sku, gift_sku = f"PRM-{run}", f"GFT-{run}"
    admin = tokens["merchant_admin"]
    # Given a product of 100 yuan, a gift product, and stock of both at the warehouse
    for code, price in ((sku, 10000), (gift_sku, 990)):
        assert api.put(f"/admin/products/{code}", token=admin, json={"name": code, "price_fen": price}).ok
        assert api.put(f"/admin/stock/{code}", token=admin, json={"location": "WH", "on_hand": 10}).ok
    # And 每满200减30 and 满200赠1 on that product only
    scope = {"skus": [sku]}
    window = {"starts_at": iso_in(-60), "ends_at": iso_in(3600)}
    tiered = {"kind": "spend_threshold", "tiers": [{"threshold_fen": 20000, "off_fen": 3000}], "repeat": True}
    gift = {"kind": "gift", "tiers": [{"threshold_fen": 20000, "gift_sku": gift_sku, "gift_qty": 1}]}
    assert put(api, tokens, f"E2E-{run}-OFF", {**tiered, "scope": scope, **window}).status_code == 201
    assert put(api, tokens, f"E2E-{run}-GIFT", {**gift, "scope": scope, **window}).status_code == 201
    running = {p["promotion_id"] for p in api.pages("/promotions", limit=100)}
    assert {f"E2E-{run}-OFF", f"E2E-{run}-GIFT", "FULL-300-OFF-30"} <= running
    # And a 5-yuan coupon in the customer's wallet
    template = {
        "kind": "fixed",
        "amount_fen": 500,
        "scope": scope,
        "total": 5,
        "per_user_limit": 1,
        "valid_from": iso_in(-60),
        "valid_to": iso_in(3600),
        "channels": ["online"],
    }
    template_id = api.post("/admin/coupon-templates", token=admin, json=template).json()["template_id"]
    coupon_id = api.post(f"/coupon-templates/{template_id}/claim", token=tokens["customer"]).json()["coupon_id"]
    cart = {
        "lines": [{"sku": sku, "qty": 4}],
        "coupon_ids": [coupon_id],
        "fulfilment": {"type": "delivery", "address": ADDRESS},
    }
    # When the cart of 400 yuan is quoted
    quote = api.post("/checkout/quote", token=tokens["customer"], json=cart).json()
    # Then 30 yuan come off twice (the standing 满300减30 would save less), then the coupon, and the
    # gift is a line at 0
    assert quote["applied"] == [
        {"kind": "promotion", "id": f"E2E-{run}-OFF", "amount_fen": 6000},
        {"kind": "coupon", "id": coupon_id, "amount_fen": 500},
    ]
    assert [(line["sku"], line["qty"], line["payable_fen"]) for line in quote["lines"]] == [
        (sku, 4, 40000 - 6500),
        (gift_sku, 1, 0),
    ]
    assert quote["total_fen"] == 33500
    assert {p["promotion_id"] for p in quote["promotions"]} == {f"E2E-{run}-OFF", f"E2E-{run}-GIFT"}
    # And the order is priced the same, and holds the gift's unit like any line's
    placed = api.post("/orders", token=tokens["customer"], json=cart)
    assert placed.status_code == 201, placed.text
    assert placed.json()["total_fen"] == 33500
    gift_stock = api.get(f"/admin/stock/{gift_sku}", token=admin).json()["locations"]
    assert [(s["location"], s["reserved"], s["available"]) for s in gift_stock] == [("WH", 1, 9)]
    # Stopping the promotions: a PUT that ends them now (they leave the list at once)
    for pid, body in ((f"E2E-{run}-OFF", tiered), (f"E2E-{run}-GIFT", gift)):
        assert put(api, tokens, pid, {**body, "scope": scope, "starts_at": iso_in(-60), "ends_at": iso_in(0.5)}).ok
    time.sleep(0.6)
    assert not {f"E2E-{run}-OFF", f"E2E-{run}-GIFT"} & {p["promotion_id"] for p in api.pages("/promotions", limit=100)}


def test_ten_concurrent_puts_on_one_version_one_wins(api, stack, tokens):
    pid = f"E2E-RACE-{uuid.uuid4().hex[:8]}"
    base = {
        "kind": "spend_threshold",
        "tiers": [{"threshold_fen": 100000, "off_fen": 100}],
        "scope": {"skus": [f"NONE-{pid}"]},  # covers nothing that is sold
        "starts_at": iso_in(-60),
        "ends_at": iso_in(600),
    }
    assert put(api, tokens, pid, base).status_code == 201
    url = f"{stack.api_url}/admin/promotions/{pid}"
    headers = {"Authorization": f"Bearer {tokens['merchant_admin']}"}

    def one(i: int) -> int:
        body = {**base, "name": f"edit {i}", "version": 1}
        with requests.Session() as s:
            return s.put(url, headers=headers, json=body, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = Counter(pool.map(one, range(10)))
    # Exactly one edit of version 1 is applied; the others are told, and wrote nothing
    assert answers == Counter({200: 1, 409: 9}), answers
    shown = api.get(f"/admin/promotions/{pid}", token=tokens["merchant_admin"]).json()
    assert shown["version"] == 2 and shown["name"].startswith("edit ")
