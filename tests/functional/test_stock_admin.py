"""Stock admin (`PUT` / `GET /admin/stock/{sku}`) and availability in the catalogue, on moto."""

from __future__ import annotations

import json

import pytest

from shared.data.connection import events
from shared.data.items import StockItem
from shared.data.stores import stock as stock_store
from shared.data.transactions import Transaction
from shared.inventory.locations import Location
from tests.conftest import bearer
from tests.functional.stock_support import dynamodb_calls, given_locations, given_product, put_stock


@pytest.fixture
def admin(client, tokens) -> str:
    given_locations()
    given_product(client, tokens["merchant_admin"], "TEA-1", 16800, 15800, low_stock_threshold=5)
    given_product(client, tokens["merchant_admin"], "CUP-1", 2500)
    return tokens["merchant_admin"]


def reserve(sku: str, location: str, qty: int) -> None:
    """What placing an order does to stock."""
    tx = Transaction()
    stock_store.reserve(tx, sku, location, qty)
    tx.commit()


def stock_item(sku: str, location: str) -> StockItem:
    return StockItem.get(*StockItem.key(sku, location), consistent_read=True)


def test_first_count_creates_then_recount_replaces(client, admin):
    # Given no stock, When the warehouse is counted twice
    first = put_stock(client, admin, "TEA-1", "WH", 100)
    second = put_stock(client, admin, "TEA-1", "WH", 80)
    # Then the first count created the stock item and the second replaced the count
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json_body == {"sku": "TEA-1", "location": "WH", "on_hand": 80, "reserved": 0, "available": 80}


def test_stock_sheet_lists_every_location_in_one_query(client, admin):
    put_stock(client, admin, "TEA-1", "WH", 100)
    put_stock(client, admin, "TEA-1", "S001", 20)
    reserve("TEA-1", "S001", 3)
    with dynamodb_calls() as calls:
        response = client.http.get("/admin/stock/TEA-1", headers=bearer(admin))
    assert response.status_code == 200
    assert response.json_body == {
        "sku": "TEA-1",
        "locations": [
            {"location": "S001", "on_hand": 20, "reserved": 3, "available": 17},
            {"location": "WH", "on_hand": 100, "reserved": 0, "available": 100},
        ],
    }
    assert calls == {"Query": 1}


def test_a_recount_keeps_what_orders_reserved(client, admin):
    # Given 10 on hand with 4 held by orders
    put_stock(client, admin, "TEA-1", "WH", 10)
    reserve("TEA-1", "WH", 4)
    # When the admin counts 25
    response = put_stock(client, admin, "TEA-1", "WH", 25)
    # Then the 4 stay reserved and 21 are available
    assert response.json_body == {"sku": "TEA-1", "location": "WH", "on_hand": 25, "reserved": 4, "available": 21}


def test_a_count_below_what_is_reserved_is_refused_and_changes_nothing(client, admin):
    put_stock(client, admin, "TEA-1", "WH", 10)
    reserve("TEA-1", "WH", 4)
    response = put_stock(client, admin, "TEA-1", "WH", 3)
    assert response.status_code == 409
    assert response.json_body["code"] == "ON_HAND_BELOW_RESERVED"
    assert response.json_body["details"] == {"sku": "TEA-1", "location": "WH", "on_hand": 3, "reserved": 4}
    item = stock_item("TEA-1", "WH")
    assert (item.on_hand, item.reserved, item.available) == (10, 4, 6)
    assert put_stock(client, admin, "TEA-1", "WH", 4).json_body["available"] == 0


def test_a_reservation_racing_the_count_is_kept(client, admin):
    # Given 10 on hand, and an order that reserves 3 just after the admin's read
    put_stock(client, admin, "TEA-1", "WH", 10)
    raced = []

    def order_lands(**_: object) -> None:
        if not raced:
            raced.append(True)
            reserve("TEA-1", "WH", 3)

    events().register("before-call.dynamodb.UpdateItem", order_lands)
    try:
        with dynamodb_calls() as calls:
            response = put_stock(client, admin, "TEA-1", "WH", 50)
    finally:
        events().unregister("before-call.dynamodb.UpdateItem", order_lands)
    # Then the first write lost (its values were stale), the count was applied again on fresh ones
    assert raced and calls["UpdateItem"] == 2 and calls["BatchGetItem"] == 2
    assert response.status_code == 200
    assert response.json_body == {"sku": "TEA-1", "location": "WH", "on_hand": 50, "reserved": 3, "available": 47}
    item = stock_item("TEA-1", "WH")
    assert (item.on_hand, item.reserved, item.available) == (50, 3, 47)


def test_two_first_counts_racing_do_not_overwrite_a_reservation(client, admin):
    # Given a first count that another writer beats to the empty item (and an order reserves 2)
    raced = []

    def other_writer(**_: object) -> None:
        if not raced:
            raced.append(True)
            pk, sk = StockItem.key("CUP-1", "S001")
            StockItem(pk, sk, sku="CUP-1", location="S001", on_hand=5, reserved=2, available=3).save()

    events().register("before-call.dynamodb.PutItem", other_writer)
    try:
        response = put_stock(client, admin, "CUP-1", "S001", 9)
    finally:
        events().unregister("before-call.dynamodb.PutItem", other_writer)
    # Then the count is applied over the item that now exists, keeping its reservation
    assert raced and response.status_code == 200
    assert response.json_body == {"sku": "CUP-1", "location": "S001", "on_hand": 9, "reserved": 2, "available": 7}


def test_count_copies_the_products_low_stock_threshold(client, admin, tokens):
    put_stock(client, admin, "TEA-1", "S002", 8)
    assert stock_item("TEA-1", "S002").low_stock_threshold == 5
    # When the product's threshold is dropped, the next count drops it from the stock item too
    given_product(client, admin, "TEA-1", 16800, 15800)
    put_stock(client, admin, "TEA-1", "S002", 8)
    assert stock_item("TEA-1", "S002").low_stock_threshold is None


def test_unknown_sku_is_404_and_unknown_location_is_422(client, admin):
    missing = put_stock(client, admin, "NOPE-1", "WH", 1)
    assert missing.status_code == 404 and missing.json_body["details"] == {"sku": "NOPE-1"}
    assert client.http.get("/admin/stock/NOPE-1", headers=bearer(admin)).status_code == 404
    nowhere = put_stock(client, admin, "TEA-1", "S999", 1)
    assert nowhere.status_code == 422
    assert nowhere.json_body["code"] == "UNKNOWN_LOCATION" and nowhere.json_body["details"] == {"location": "S999"}


@pytest.mark.parametrize(
    "body",
    [
        {"location": "WH", "on_hand": -1},
        {"location": "WH", "on_hand": 1.5},
        {"location": "WH"},
        {"location": "W H", "on_hand": 1},
        {"location": "WH", "on_hand": 1, "reserved": 0},
    ],
)
def test_bad_counts_are_422_and_write_nothing(client, admin, body):
    response = client.http.put("/admin/stock/TEA-1", headers=bearer(admin), body=json.dumps(body))
    assert response.status_code == 422
    assert client.http.get("/admin/stock/TEA-1", headers=bearer(admin)).json_body["locations"] == []


def test_only_merchant_admins_see_or_set_stock(client, admin, tokens):
    body = json.dumps({"location": "WH", "on_hand": 1})
    for role in ("customer", "store_staff", "finance"):
        assert client.http.put("/admin/stock/TEA-1", headers=bearer(tokens[role]), body=body).status_code == 403
        assert client.http.get("/admin/stock/TEA-1", headers=bearer(tokens[role])).status_code == 403
    assert client.http.get("/admin/stock/TEA-1").status_code == 401


def test_catalogue_shows_available_over_all_locations(client, admin):
    # Given stock at the warehouse and both stores, some of it held by an order
    put_stock(client, admin, "TEA-1", "WH", 100)
    put_stock(client, admin, "TEA-1", "S001", 20)
    put_stock(client, admin, "TEA-1", "S002", 20)
    reserve("TEA-1", "S002", 5)
    # When the storefront lists the catalogue and opens the product
    listing = client.http.get("/products").json_body["items"]
    single = client.http.get("/products/TEA-1").json_body
    # Then both show what can still be sold; the product page per location
    assert {p["sku"]: p["available"] for p in listing} == {"CUP-1": 0, "TEA-1": 135}
    assert single["available"] == 135
    assert single["locations"] == [
        {"location": "S001", "available": 20},
        {"location": "S002", "available": 15},
        {"location": "WH", "available": 100},
    ]


def test_catalogue_listing_stays_paginated_and_cheap(client, admin):
    # Given 30 products with i units at the warehouse
    for i in range(30):
        given_product(client, admin, f"P-{i:02}", 100)
        put_stock(client, admin, f"P-{i:02}", "WH", i)
    client.http.get("/products?limit=1")  # the location list is now cached in this process
    # When a page of 20 is listed
    with dynamodb_calls() as calls:
        page = client.http.get("/products?limit=20").json_body
    # Then one Query for the page and one BatchGetItem for its 60 stock items
    assert calls == {"Query": 1, "BatchGetItem": 1}
    assert [p["sku"] for p in page["items"]] == ["CUP-1"] + [f"P-{i:02}" for i in range(19)]
    assert [p["available"] for p in page["items"]] == [0, *range(19)]
    assert page["next_cursor"]


def test_a_new_store_is_a_known_location_once_saved(client, admin):
    given_locations(Location("S003", "store", "徐汇店", "Shanghai", 31188000, 121437000))
    assert put_stock(client, admin, "TEA-1", "S003", 7).status_code == 201
