"""The demo data `make dev` starts with: stock everywhere and a member."""

from __future__ import annotations

import json

from infra.local.seed import PRODUCTS, seed
from shared.web.auth import Role, issue_token
from tests.conftest import TEST_ENV, bearer


def test_seed_stocks_every_product_and_makes_c_demo_a_member(client):
    # Given the demo data, seeded twice
    first = seed()
    second = seed()
    # Then every product has 100 + 20 + 20 units, counted once
    assert first["stock_items"] == 3 * len(PRODUCTS) and second["stock_items"] == 0
    listing = client.http.get("/products?limit=100").json_body["items"]
    assert {p["available"] for p in listing} == {140} and len(listing) == len(PRODUCTS)
    # And c-demo pays the member price where a product has one
    token = issue_token(TEST_ENV["JWT_SECRET"], "c-demo", Role.CUSTOMER)
    body = {"lines": [{"sku": "TEA-001", "qty": 1}], "fulfilment": {"type": "pickup", "store_id": "S001"}}
    quoted = client.http.post("/checkout/quote", headers=bearer(token), body=json.dumps(body)).json_body
    assert quoted["lines"][0]["unit_price_fen"] == 15800
