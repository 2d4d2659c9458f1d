"""`load_for_checkout` on moto: what it returns and how many round trips it costs."""

from __future__ import annotations

from shared.data.stores.checkout_reads import load_for_checkout
from shared.inventory.locations import Location
from tests.functional.stock_support import dynamodb_calls, given_locations, given_member, given_product, given_stock


def test_one_batch_for_a_known_location(client, tokens):
    admin = tokens["merchant_admin"]
    given_locations()
    given_product(client, admin, "TEA-1", 16800, 15800)
    given_product(client, admin, "CUP-1", 2500)
    given_stock(client, admin, "TEA-1", WH=7, S001=2)
    given_member("c-1")
    with dynamodb_calls() as calls:
        data = load_for_checkout(["TEA-1", "CUP-1", "NOPE-1"], "c-1", ["WH"])
    assert calls == {"BatchGetItem": 1}
    assert set(data.products) == {"TEA-1", "CUP-1"} and data.products["TEA-1"].member_price_fen == 15800
    assert data.is_member
    assert data.availability == {("TEA-1", "WH"): 7}  # no stock item for CUP-1: absent, read as 0
    assert list(data.locations) == ["WH"]
    assert not load_for_checkout(["TEA-1"], "c-2", ["S404"]).locations  # an unknown store is simply not found


def test_same_city_reads_every_store_and_splits_past_100_keys(client, tokens):
    # Given 50 products stocked at three stores: 50 products + 150 stock items + 1 member = 201 keys
    admin = tokens["merchant_admin"]
    given_locations(Location("S003", "store", "徐汇店", "Shanghai", 31188000, 121437000))
    skus = [f"P-{i:02}" for i in range(50)]
    for i, sku in enumerate(skus):
        given_product(client, admin, sku, 100)
        given_stock(client, admin, sku, S001=i, S002=1, S003=2)
    load_for_checkout(skus[:1], "c-1", None)  # the store list is now cached
    with dynamodb_calls() as calls:
        data = load_for_checkout(skus, "c-1", None)
    assert calls == {"BatchGetItem": 3}
    assert len(data.products) == 50 and not data.is_member
    assert sorted(data.locations) == ["S001", "S002", "S003"]  # stores only, never the warehouse
    assert len(data.availability) == 150 and data.availability[("P-49", "S001")] == 49
