"""Promotions on moto through the routes (API.md, "Promotions"; docs/pricing.md): the admin's PUT
(created, replaced, refused: 400 / 401 / 403 / 415 / 422, and 409 on a stale version), the public
list of what runs now (one Query of one index partition, no Scan), and checkout pricing with them:
the quote says which applied, a gift line's stock is reserved by the order's one transaction, and
an order with a coupon and a promotion is still one BatchGetItem and one transaction."""

from __future__ import annotations

import json

import pytest

from shared.data.connection import events
from shared.data.stores.promotions import forget_cached
from tests.conftest import bearer
from tests.functional.coupons_support import create_template, given_stores, iso_in, post
from tests.functional.orders_support import given_catalogue, stock_of
from tests.functional.stock_support import dynamodb_calls

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"},
}


@pytest.fixture
def shop(table):
    given_stores()
    given_catalogue({("TEA-1", "WH"): 20, ("CUP-1", "WH"): 3})


def put(client, token, promotion_id, body, content_type="application/json"):
    headers = {**bearer(token), "Content-Type": content_type}
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.http.put(f"/admin/promotions/{promotion_id}", headers=headers, body=raw)


def spend_body(**changes):
    body = {
        "kind": "spend_threshold",
        "tiers": [{"threshold_fen": 10000, "off_fen": 1000}, {"threshold_fen": 20000, "off_fen": 2500}],
        "starts_at": iso_in(-60),
        "ends_at": iso_in(3600),
    }
    return {**body, **changes}


def quote(client, token, lines, coupon_ids=()):
    body = {"lines": [{"sku": s, "qty": q} for s, q in lines], "coupon_ids": list(coupon_ids), "fulfilment": DELIVERY}
    return post(client, "/checkout/quote", token, body)


def test_a_put_creates_then_replaces_and_a_stale_version_is_409(client, tokens, shop):
    created = put(client, tokens["merchant_admin"], "TIERED", spend_body())
    assert created.status_code == 201, created.json_body
    assert (created.json_body["version"], created.json_body["status"]) == (1, "running")
    replaced = put(client, tokens["merchant_admin"], "TIERED", spend_body(name="满100减10", version=1))
    assert (replaced.status_code, replaced.json_body["version"]) == (200, 2)
    stale = put(client, tokens["merchant_admin"], "TIERED", spend_body(version=1))
    assert (stale.status_code, stale.json_body["code"]) == (409, "CONCURRENT_UPDATE")
    assert stale.json_body["details"]["version"] == 2
    shown = client.http.get("/admin/promotions/TIERED", headers=bearer(tokens["merchant_admin"]))
    assert (shown.status_code, shown.json_body["name"], shown.json_body["version"]) == (200, "满100减10", 2)
    missing = client.http.get("/admin/promotions/NOPE", headers=bearer(tokens["merchant_admin"]))
    assert (missing.status_code, missing.json_body["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tiers": [{"threshold_fen": 20000, "off_fen": 1000}, {"threshold_fen": 10000, "off_fen": 2000}]}, "tiers"),
        ({"tiers": [{"threshold_fen": 1000, "off_fen": 1001}]}, "tiers.0.off_fen"),
        ({"tiers": [{"threshold_fen": 1000, "percent_off": 100}]}, "tiers.0.percent_off"),
        ({"tiers": [{"threshold_fen": 1000, "percent_off": 10}], "repeat": True}, "repeat"),
        ({"ends_at": iso_in(-120)}, "ends_at"),
        ({"kind": "limited_price", "tiers": None, "price_fen": 100}, "scope.skus"),
        ({"kind": "gift", "tiers": [{"threshold_fen": 1000, "gift_sku": "CUP-1"}]}, "tiers.0.gift_qty"),
        ({"tiers": [{"threshold_fen": 1000.5, "off_fen": 10}]}, "tiers.0.threshold_fen"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_promotion_that_breaks_a_rule_is_422_naming_the_field(client, tokens, shop, changes, field):
    refused = put(client, tokens["merchant_admin"], "BAD", spend_body(**changes))
    assert (refused.status_code, refused.json_body["code"]) == (422, "VALIDATION_FAILED")
    assert any(e["field"].startswith(field) for e in refused.json_body["details"]["errors"]), refused.json_body


def test_who_may_put_and_what_a_body_must_be(client, tokens, shop):
    assert put(client, tokens["customer"], "P", spend_body()).status_code == 403
    assert client.http.put("/admin/promotions/P", body=json.dumps(spend_body())).status_code == 401
    assert put(client, tokens["merchant_admin"], "P", "{not json").status_code == 400
    assert put(client, tokens["merchant_admin"], "P", "x=1", content_type="text/plain").status_code == 415
    assert put(client, tokens["merchant_admin"], "bad%20id", spend_body()).status_code == 422


def test_get_promotions_lists_what_runs_now_without_a_scan(client, tokens, shop):
    admin = tokens["merchant_admin"]
    assert put(client, admin, "LATER", spend_body(starts_at=iso_in(600))).status_code == 201
    assert put(client, admin, "NOW", spend_body()).status_code == 201
    forget_cached()  # as another container would: it reads the index
    with dynamodb_calls() as calls:
        listed = client.http.get("/promotions").json_body
    assert calls == {"Query": 1}
    assert [p["promotion_id"] for p in listed["items"]] == ["FULL-300-OFF-30", "NOW"]
    assert listed["next_cursor"] is None
    page = client.http.get("/promotions?limit=1").json_body
    rest = client.http.get(f"/promotions?limit=1&cursor={page['next_cursor']}").json_body
    assert [p["promotion_id"] for p in page["items"] + rest["items"]] == ["FULL-300-OFF-30", "NOW"]
    # Stopping a promotion is a PUT that ends it now: it leaves the list at once
    assert put(client, admin, "NOW", spend_body(ends_at=iso_in(0.001))).status_code == 200
    assert [p["promotion_id"] for p in client.http.get("/promotions").json_body["items"]] == ["FULL-300-OFF-30"]


def test_the_quote_applies_the_best_threshold_and_says_so(client, tokens, shop):
    # Given 满100减10 / 满200减25 beside the standing 满300减30
    put(client, tokens["merchant_admin"], "TIERED", spend_body())
    # When 2 teas (200 yuan) and 1 cup (33.33) are quoted
    body = quote(client, tokens["customer"], [("TEA-1", 2), ("CUP-1", 1)]).json_body
    # Then 满200减25 applies (the standing 满300 is not reached), allocated 20000 : 3333
    assert body["applied"] == [{"kind": "promotion", "id": "TIERED", "amount_fen": 2500}]
    assert [line["discount_fen"] for line in body["lines"]] == [2143, 357]
    assert body["promotions"] == [
        {"promotion_id": "TIERED", "kind": "threshold", "amount_fen": 2500, "skus": ["TEA-1", "CUP-1"]}
    ]
    assert sum(line["payable_fen"] for line in body["lines"]) + body["shipping_fen"] == body["total_fen"] == 20833


def test_a_gift_line_is_reserved_by_the_orders_one_transaction(client, tokens, shop):
    # Given 满200 gives a cup (3 in stock)
    gift = {"kind": "gift", "tiers": [{"threshold_fen": 20000, "gift_sku": "CUP-1", "gift_qty": 2}]}
    put(client, tokens["merchant_admin"], "GIFT", spend_body(**gift))
    # When 2 teas are ordered
    placed = post(
        client, "/orders", tokens["customer"], {"lines": [{"sku": "TEA-1", "qty": 2}], "fulfilment": DELIVERY}
    )
    assert placed.status_code == 201, placed.json_body
    # Then the order has the gift line at 0 and its 2 cups are held like any line's
    assert placed.json_body["lines"][-1] == {
        "sku": "CUP-1",
        "qty": 2,
        "unit_price_fen": 0,
        "discount_fen": 0,
        "payable_fen": 0,
        "refunded_qty": 0,
    }
    assert placed.json_body["total_fen"] == 20000
    assert stock_of("CUP-1") == (3, 2, 1) and stock_of("TEA-1") == (20, 2, 18)
    # And when only 1 cup is left the gift is not given (赠完即止): the order goes through and says why
    body = quote(client, tokens["customer"], [("TEA-1", 2)]).json_body
    assert [line["sku"] for line in body["lines"]] == ["TEA-1"]
    assert body["promotions"][0]["skipped"] == "out_of_stock" and body["promotions"][0]["given"] is False


def test_an_order_with_a_coupon_and_a_promotion_is_two_round_trips(client, tokens, shop):
    put(client, tokens["merchant_admin"], "TIERED", spend_body())
    template_id = create_template(client, tokens, amount_fen=500, threshold_fen=1000)
    coupon_id = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).json_body["coupon_id"]
    quote(client, tokens["customer"], [("TEA-1", 1)])  # the first checkout of this process reads the promotions
    calls: list[str] = []

    def record(**kwargs):
        calls.append(kwargs["model"].name)

    events().register("before-call.dynamodb", record)
    try:
        body = {"lines": [{"sku": "TEA-1", "qty": 2}], "coupon_ids": [coupon_id], "fulfilment": DELIVERY}
        placed = post(client, "/orders", tokens["customer"], body)
    finally:
        events().unregister("before-call.dynamodb", record)
    assert placed.status_code == 201, placed.json_body
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert placed.json_body["applied"] == [
        {"kind": "promotion", "id": "TIERED", "amount_fen": 2500},
        {"kind": "coupon", "id": coupon_id, "amount_fen": 500},
    ]
    assert placed.json_body["total_fen"] == 20000 - 2500 - 500
