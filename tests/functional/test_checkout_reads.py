"""`load_for_checkout` on moto: what it returns and how many round trips it costs."""

from __future__ import annotations

import json
import time

from shared.data.items import MemberItem
from shared.data.items.membership import MemberProfileItem
from shared.data.stores.checkout_reads import load_for_checkout
from shared.data.stores.membership import DynamoMembershipRules
from shared.inventory.locations import Location
from shared.membership.model import MembershipRules
from tests.conftest import bearer
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


# -- member benefits: the level's and a paid membership's, in the same one BatchGetItem ----------
LEVELS = {
    "levels": [
        {"level": 0, "name": "普通会员", "min_growth_fen": 0},
        {"level": 1, "name": "银卡", "min_growth_fen": 100_000, "discount_bp": 200},
        {"level": 2, "name": "金卡", "min_growth_fen": 500_000, "member_price": True, "discount_bp": 500},
    ]
}


def given_tea_and_levels(client, admin: str) -> None:
    given_locations()
    given_product(client, admin, "TEA-1", 16800, 15800)
    given_stock(client, admin, "TEA-1", WH=7)
    DynamoMembershipRules().save(MembershipRules.of(LEVELS, version=1))


def given_level(customer_sub: str, level: int) -> None:
    pk, sk = MemberProfileItem.key(customer_sub)
    MemberProfileItem(pk, sk, customer_sub=customer_sub, level=level, growth_fen=0, version=1).save()


def given_paid(customer_sub: str, discount_bp: int | None, until_ms: int | None) -> None:
    pk, sk = MemberItem.key(customer_sub)
    MemberItem(pk, sk, customer_sub=customer_sub, tier="gold", discount_bp=discount_bp, until=until_ms).save()


def test_the_level_and_paid_membership_are_read_in_the_one_batch_and_the_best_of_each_applies(client, tokens):
    given_tea_and_levels(client, tokens["merchant_admin"])
    now = int(time.time() * 1000)
    given_level("c-1", 1)  # 2% off, no member prices
    given_level("c-2", 2)  # member prices and 5% off
    given_paid("c-3", 300, now + 86_400_000)  # paid: member prices and 3% off, level 0
    given_level("c-4", 1)
    given_paid("c-4", None, now + 86_400_000)  # paid member prices with the level's 2%
    given_level("c-5", 2)
    given_paid("c-5", 900, now + 86_400_000)  # the paid 9% beats the level's 5%
    given_paid("c-6", 900, now - 1)  # expired: nothing
    expected = {
        "c-1": (False, 200),
        "c-2": (True, 500),
        "c-3": (True, 300),
        "c-4": (True, 200),
        "c-5": (True, 900),
        "c-6": (False, 0),
        "c-7": (False, 0),  # no profile, no member item: level 0
    }
    for customer, benefits in expected.items():
        with dynamodb_calls() as calls:
            data = load_for_checkout(["TEA-1"], customer, ["WH"])
        assert calls == {"BatchGetItem": 1}, customer
        assert (data.is_member, data.member_discount_bp) == benefits, customer


DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"},
}


def test_the_quote_and_the_order_charge_the_members_price(client, tokens):
    given_tea_and_levels(client, tokens["merchant_admin"])
    given_level("c-1", 2)  # member price 15,800 less 5% = 15,010
    cart = {"lines": [{"sku": "TEA-1", "qty": 2}], "fulfilment": DELIVERY}
    with dynamodb_calls() as calls:
        quote = client.http.post("/checkout/quote", headers=bearer(tokens["customer"]), body=json.dumps(cart))
    assert quote.status_code == 200, quote.json_body
    assert calls.get("BatchGetItem") == 1
    assert quote.json_body["lines"][0]["unit_price_fen"] == 15010
    headers = {**bearer(tokens["customer"]), "Idempotency-Key": "member-price-1"}
    order = client.http.post("/orders", headers=headers, body=json.dumps(cart))
    assert order.status_code == 201, order.json_body
    assert order.json_body["lines"][0]["unit_price_fen"] == 15010
    assert order.json_body["total_fen"] == quote.json_body["total_fen"]
    other = client.http.post("/checkout/quote", headers=bearer(tokens["customer2"]), body=json.dumps(cart))
    assert other.json_body["lines"][0]["unit_price_fen"] == 16800  # c-2: level 0, no paid membership
