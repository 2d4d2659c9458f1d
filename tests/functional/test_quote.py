"""`POST /checkout/quote` through the app on moto: prices, member prices, the location chosen,
the errors, and the reads it costs. A quote holds nothing."""

from __future__ import annotations

import json

import pytest

from shared.data.items import StockItem
from shared.inventory.locations import Location
from tests.conftest import bearer
from tests.functional.stock_support import dynamodb_calls, given_locations, given_member, given_product, given_stock

ADDRESS = {"recipient": "王芳", "phone": "13800000000", "city": "Shanghai", "detail": "南京西路 1 号"}
NEAR_JINGAN = {**ADDRESS, "lat": 31.2304, "lng": 121.4737}
DELIVERY = {"type": "delivery", "address": ADDRESS}
XUHUI = Location("S003", "store", "徐汇店", "Shanghai", 31188000, 121437000)


@pytest.fixture
def shop(client, tokens) -> None:
    """Tea (member price), cups (none) and a gift set over the 满减 threshold; stock at WH and stores."""
    admin = tokens["merchant_admin"]
    given_locations(XUHUI)
    given_product(client, admin, "TEA-1", 16800, 15800)
    given_product(client, admin, "CUP-1", 2500)
    given_product(client, admin, "SET-1", 29900, 26900)
    given_stock(client, admin, "TEA-1", WH=100, S001=2, S002=20, S003=20)
    given_stock(client, admin, "CUP-1", WH=100, S001=20, S002=20, S003=20)
    given_stock(client, admin, "SET-1", WH=5)


def quote(client, token, lines, fulfilment=DELIVERY, **extra):
    body = {"lines": [{"sku": sku, "qty": qty} for sku, qty in lines], "fulfilment": fulfilment, **extra}
    return client.http.post("/checkout/quote", headers=bearer(token), body=json.dumps(body))


def test_a_delivery_quote_at_list_price(client, tokens, shop):
    response = quote(client, tokens["customer"], [("TEA-1", 1), ("CUP-1", 2)])
    assert response.status_code == 200
    assert response.json_body == {
        "lines": [
            {"sku": "TEA-1", "qty": 1, "unit_price_fen": 16800, "discount_fen": 0, "payable_fen": 16800},
            {"sku": "CUP-1", "qty": 2, "unit_price_fen": 2500, "discount_fen": 0, "payable_fen": 5000},
        ],
        "subtotal_fen": 21800,
        "discount_fen": 0,
        "shipping_fen": 0,
        "total_fen": 21800,
        "applied": [],
        "fulfilment": {"type": "delivery", "location": "WH"},
        # Issue 11: the customer's usable coupons and the best combination (none here).
        "usable_coupons": [],
        "suggested_coupon_ids": [],
        # Issue 11: the promotions that shaped the quote (none reached here).
        "promotions": [],
    }


def test_members_pay_member_prices_and_the_promotion_is_allocated(client, tokens, shop):
    # Given customer c-1 is a member
    given_member("c-1")
    # When a cart worth 158 + 269 = 427 yuan at member prices is quoted
    body = quote(client, tokens["customer"], [("TEA-1", 1), ("SET-1", 1)]).json_body
    # Then member prices are the unit prices and 30 yuan come off, split by value
    assert [line["unit_price_fen"] for line in body["lines"]] == [15800, 26900]
    assert body["applied"] == [{"kind": "promotion", "id": "FULL-300-OFF-30", "amount_fen": 3000}]
    assert [line["discount_fen"] for line in body["lines"]] == [1110, 1890]
    assert sum(line["payable_fen"] for line in body["lines"]) + body["shipping_fen"] == body["total_fen"] == 39700
    # And another customer, not a member, pays list prices
    other = quote(client, tokens["customer2"], [("TEA-1", 1), ("SET-1", 1)]).json_body
    assert [line["unit_price_fen"] for line in other["lines"]] == [16800, 29900]


def test_small_orders_pay_shipping_except_pickup(client, tokens, shop):
    delivery = quote(client, tokens["customer"], [("CUP-1", 1)]).json_body
    pickup = quote(client, tokens["customer"], [("CUP-1", 1)], {"type": "pickup", "store_id": "S002"}).json_body
    same_city = quote(client, tokens["customer"], [("CUP-1", 1)], {"type": "same_city", "address": NEAR_JINGAN})
    assert (delivery["shipping_fen"], delivery["total_fen"]) == (1000, 3500)
    assert (pickup["shipping_fen"], pickup["fulfilment"]) == (0, {"type": "pickup", "location": "S002"})
    assert same_city.json_body["shipping_fen"] == 1500


def test_same_city_goes_to_the_nearest_store_with_every_line(client, tokens, shop):
    # Jing'an (S001) is nearest but holds 2 teas; Xuhui (S003) holds 20
    near = quote(client, tokens["customer"], [("TEA-1", 2)], {"type": "same_city", "address": NEAR_JINGAN})
    far = quote(client, tokens["customer"], [("TEA-1", 3)], {"type": "same_city", "address": NEAR_JINGAN})
    assert near.json_body["fulfilment"] == {"type": "same_city", "location": "S001"}
    assert far.json_body["fulfilment"] == {"type": "same_city", "location": "S003"}


def test_same_city_out_of_reach_or_out_of_stock(client, tokens, shop):
    beijing = {**ADDRESS, "city": "Beijing", "lat": 39.9042, "lng": 116.4074}
    nowhere = quote(client, tokens["customer"], [("CUP-1", 1)], {"type": "same_city", "address": beijing})
    assert (nowhere.status_code, nowhere.json_body["code"]) == (422, "SAME_CITY_UNAVAILABLE")
    short = quote(client, tokens["customer"], [("SET-1", 1)], {"type": "same_city", "address": NEAR_JINGAN})
    assert (short.status_code, short.json_body["code"]) == (409, "OUT_OF_STOCK")
    assert short.json_body["details"] == {"sku": "SET-1", "location": "S001"}


def test_out_of_stock_names_the_sku_and_a_quote_holds_nothing(client, tokens, shop):
    ok = quote(client, tokens["customer"], [("SET-1", 5)])
    short = quote(client, tokens["customer"], [("CUP-1", 1), ("SET-1", 6)])
    assert ok.status_code == 200
    assert (short.status_code, short.json_body["code"]) == (409, "OUT_OF_STOCK")
    assert short.json_body["details"] == {"sku": "SET-1", "location": "WH"}
    item = StockItem.get(*StockItem.key("SET-1", "WH"), consistent_read=True)
    assert (item.on_hand, item.reserved, item.available) == (5, 0, 5)


def test_a_known_location_costs_one_batched_read(client, tokens, shop):
    given_member("c-1")
    with dynamodb_calls() as calls:
        response = quote(client, tokens["customer"], [("TEA-1", 1), ("CUP-1", 2), ("SET-1", 1)])
    assert response.status_code == 200
    # One batched read prices the cart; the quote alone also queries the customer's coupons (gsi1
    # CUSTCOUPONS#) for its suggestions (docs/coupons.md). Placing the order does not.
    assert calls == {"BatchGetItem": 1, "Query": 1}


def test_same_city_costs_the_store_list_and_one_batched_read(client, tokens, shop):
    with dynamodb_calls() as calls:
        quote(client, tokens["customer"], [("TEA-1", 1)], {"type": "same_city", "address": NEAR_JINGAN})
    # The store list, and the customer's coupons for the suggestions (docs/coupons.md).
    assert calls == {"Query": 2, "BatchGetItem": 1}


@pytest.mark.parametrize(
    ("lines", "extra", "status", "code", "details"),
    [
        ([("TEA-1", 1), ("NOPE-1", 1)], {}, 422, "UNKNOWN_SKU", {"sku": "NOPE-1", "skus": ["NOPE-1"]}),
        ([("TEA-1", 1), ("TEA-1", 2)], {}, 422, "DUPLICATE_SKU", {"sku": "TEA-1"}),
        (
            [("TEA-1", 1)],
            {"coupon_ids": ["CPN-1"]},
            422,
            "UNKNOWN_COUPON",
            {
                "coupon_id": "CPN-1",
                "coupon_ids": ["CPN-1"],
                "reasons": [
                    {"coupon_id": "CPN-1", "code": "UNKNOWN_COUPON", "message": "no such coupon in your wallet"}
                ],
                "suggested_coupon_ids": [],
            },
        ),
    ],
)
def test_rules_broken_by_the_cart_are_422_with_details(client, tokens, shop, lines, extra, status, code, details):
    response = quote(client, tokens["customer"], lines, **extra)
    assert (response.status_code, response.json_body["code"], response.json_body["details"]) == (status, code, details)


def test_an_unknown_store_is_422(client, tokens, shop):
    response = quote(client, tokens["customer"], [("TEA-1", 1)], {"type": "pickup", "store_id": "S404"})
    assert (response.status_code, response.json_body["code"]) == (422, "UNKNOWN_STORE")
    assert response.json_body["details"] == {"store_id": "S404"}
    warehouse = quote(client, tokens["customer"], [("TEA-1", 1)], {"type": "pickup", "store_id": "WH"})
    assert warehouse.json_body["code"] == "UNKNOWN_STORE"


@pytest.mark.parametrize(
    "body",
    [
        {"lines": [], "fulfilment": DELIVERY},
        {"lines": [{"sku": f"S-{i}", "qty": 1} for i in range(51)], "fulfilment": DELIVERY},
        {"lines": [{"sku": "TEA-1", "qty": 0}], "fulfilment": DELIVERY},
        {"lines": [{"sku": "TEA-1", "qty": 1.0}], "fulfilment": DELIVERY},
        {"lines": [{"sku": "TEA-1", "qty": "1"}], "fulfilment": DELIVERY},
        {"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": {"type": "pickup"}},
        {"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": {"type": "ship_from_store", "store_id": "S001"}},
        {"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": {"type": "delivery"}},
        {"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": {"type": "same_city", "store_id": "S001"}},
        {"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": {"type": "drone", "address": ADDRESS}},
        {
            "lines": [{"sku": "TEA-1", "qty": 1}],
            "fulfilment": {"type": "delivery", "address": {**ADDRESS, "lat": 31.2}},
        },
        {
            "lines": [{"sku": "TEA-1", "qty": 1}],
            "fulfilment": {"type": "delivery", "address": {**ADDRESS, "phone": "x"}},
        },
        {"lines": [{"sku": "TEA-1", "qty": 1}]},
        {"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": DELIVERY, "total_fen": 1},
    ],
)
def test_carts_that_break_the_schema_are_422(client, tokens, shop, body):
    response = client.http.post("/checkout/quote", headers=bearer(tokens["customer"]), body=json.dumps(body))
    assert (response.status_code, response.json_body["code"]) == (422, "VALIDATION_FAILED")


def test_malformed_json_is_400_and_roles_are_checked(client, tokens, shop):
    body = json.dumps({"lines": [{"sku": "TEA-1", "qty": 1}], "fulfilment": DELIVERY})
    bad = client.http.post("/checkout/quote", headers=bearer(tokens["customer"]), body='{"lines": [')
    assert (bad.status_code, bad.json_body["code"]) == (400, "MALFORMED_REQUEST")
    headers = {"Content-Type": "application/json"}
    assert client.http.post("/checkout/quote", headers=headers, body=body).status_code == 401
    assert client.http.post("/checkout/quote", headers=bearer(tokens["merchant_admin"]), body=body).status_code == 403
