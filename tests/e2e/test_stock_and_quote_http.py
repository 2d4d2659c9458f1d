"""Stock admin, availability and quotes over HTTP, against the stack `make dev` runs."""

from __future__ import annotations

import uuid

import pytest

from infra.local.seed import PRODUCTS, STOCK
from shared.web.auth import Role, issue_token

pytestmark = pytest.mark.e2e

ADDRESS = {"recipient": "王芳", "phone": "13800000000", "city": "Shanghai", "detail": "南京西路 1 号"}
NEAR_JINGAN = {**ADDRESS, "lat": 31.2304, "lng": 121.4737}


@pytest.fixture
def sku(api, tokens) -> str:
    """A product of this test's own (168 yuan, members 158), so other tests' orders cannot move its stock."""
    new = f"E2E-{uuid.uuid4().hex[:8].upper()}"
    body = {"name": "明前龙井", "price_fen": 16800, "member_price_fen": 15800, "low_stock_threshold": 2}
    assert api.put(f"/admin/products/{new}", token=tokens["merchant_admin"], json=body).status_code == 201
    return new


def cart(sku: str, qty: int, fulfilment: dict, **extra) -> dict:
    return {"lines": [{"sku": sku, "qty": qty}], "fulfilment": fulfilment, **extra}


def test_the_seeded_catalogue_has_stock_everywhere(api, tokens):
    seeded_sku = PRODUCTS[0][0]
    sheet = api.get(f"/admin/stock/{seeded_sku}", token=tokens["merchant_admin"]).json()
    assert {row["location"] for row in sheet["locations"]} == set(STOCK)
    assert all(row["on_hand"] == STOCK[row["location"]] for row in sheet["locations"])
    listed = {p["sku"]: p for p in api.pages("/products", limit=5)}
    assert all(listed[row[0]]["available"] > 0 for row in PRODUCTS)


def test_admin_counts_stock_and_the_storefront_sees_it(api, tokens, sku):
    admin = tokens["merchant_admin"]
    # Given 3 units counted at the warehouse and 1 at the Jing'an store
    first = api.put(f"/admin/stock/{sku}", token=admin, json={"location": "WH", "on_hand": 3})
    api.put(f"/admin/stock/{sku}", token=admin, json={"location": "S001", "on_hand": 1})
    assert first.status_code == 201
    assert first.json() == {"sku": sku, "location": "WH", "on_hand": 3, "reserved": 0, "available": 3}
    # Then the storefront sees 4 available, and where
    product = api.get(f"/products/{sku}").json()
    assert product["available"] == 4
    assert product["locations"] == [{"location": "S001", "available": 1}, {"location": "WH", "available": 3}]
    # And a count for a place that is not a location, or a product that does not exist, is refused
    assert api.put(f"/admin/stock/{sku}", token=admin, json={"location": "S999", "on_hand": 1}).status_code == 422
    assert api.put("/admin/stock/NOPE-404", token=admin, json={"location": "WH", "on_hand": 1}).status_code == 404


def test_quotes_price_locate_and_hold_nothing(api, tokens, sku):
    admin, customer = tokens["merchant_admin"], tokens["customer"]
    api.put(f"/admin/stock/{sku}", token=admin, json={"location": "WH", "on_hand": 3})
    api.put(f"/admin/stock/{sku}", token=admin, json={"location": "S001", "on_hand": 2})
    # A delivery of all 3 warehouse units: list price, over the free-shipping threshold
    delivery = api.post("/checkout/quote", token=customer, json=cart(sku, 3, {"type": "delivery", "address": ADDRESS}))
    assert delivery.status_code == 200, delivery.text
    quoted = delivery.json()
    assert quoted["lines"] == [
        {"sku": sku, "qty": 3, "unit_price_fen": 16800, "discount_fen": 3000, "payable_fen": 47400}
    ]
    assert (quoted["subtotal_fen"], quoted["discount_fen"], quoted["shipping_fen"], quoted["total_fen"]) == (
        50400,
        3000,
        0,
        47400,
    )
    assert quoted["fulfilment"] == {"type": "delivery", "location": "WH"}
    # One more than the warehouse holds: 409 naming the SKU
    short = api.post("/checkout/quote", token=customer, json=cart(sku, 4, {"type": "delivery", "address": ADDRESS}))
    assert (short.status_code, short.json()["code"], short.json()["details"]["sku"]) == (409, "OUT_OF_STOCK", sku)
    # Same-city near Jing'an comes from S001; pickup there is free
    same_city = api.post(
        "/checkout/quote", token=customer, json=cart(sku, 2, {"type": "same_city", "address": NEAR_JINGAN})
    )
    assert same_city.json()["fulfilment"] == {"type": "same_city", "location": "S001"}
    pickup = api.post("/checkout/quote", token=customer, json=cart(sku, 1, {"type": "pickup", "store_id": "S001"}))
    assert (pickup.json()["shipping_fen"], pickup.json()["total_fen"]) == (0, 16800)
    # And nothing was held by any of it
    sheet = api.get(f"/admin/stock/{sku}", token=admin).json()
    assert [row["reserved"] for row in sheet["locations"]] == [0, 0]


def test_the_demo_member_pays_member_prices(api, stack, tokens, sku):
    api.put(f"/admin/stock/{sku}", token=tokens["merchant_admin"], json={"location": "WH", "on_hand": 5})
    member = issue_token(stack.environment["JWT_SECRET"], "c-demo", Role.CUSTOMER)
    body = cart(sku, 1, {"type": "delivery", "address": ADDRESS})
    quoted = api.post("/checkout/quote", token=member, json=body).json()
    assert (quoted["lines"][0]["unit_price_fen"], quoted["shipping_fen"], quoted["total_fen"]) == (15800, 0, 15800)


def test_carts_that_break_a_rule_are_422_with_a_code(api, tokens, sku):
    customer = tokens["customer"]
    delivery = {"type": "delivery", "address": ADDRESS}
    coupon = api.post("/checkout/quote", token=customer, json=cart(sku, 1, delivery, coupon_ids=["CPN-1"]))
    unknown = api.post("/checkout/quote", token=customer, json=cart("NOPE-404", 1, delivery))
    no_store = api.post("/checkout/quote", token=customer, json=cart(sku, 1, {"type": "pickup"}))
    assert [(r.status_code, r.json()["code"]) for r in (coupon, unknown, no_store)] == [
        (422, "UNKNOWN_COUPON"),
        (422, "UNKNOWN_SKU"),
        (422, "VALIDATION_FAILED"),
    ]
    assert unknown.json()["details"]["sku"] == "NOPE-404"
