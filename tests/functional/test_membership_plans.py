"""Paid-membership plans on moto through the routes (`/admin/membership-plans`, docs/openapi.yaml)."""

from __future__ import annotations

from chalice.test import Client

from tests.functional.commission_support import call

GOLD = {
    "tier": "金卡",
    "rank": 2,
    "price_fen": 19_900,
    "days": 365,
    "discount_bp": 500,
    "welcome_coupon_template_ids": ["ct1", "ct1", "ct2"],
    "referral_rebate_fen": 2_000,
    "refund_full_within_days": 7,
    "version": 0,
}


def test_a_plan_is_created_changed_conditionally_and_listed(client: Client, tokens: dict):
    admin = tokens["merchant_admin"]
    answer = call(client, "put", "/admin/membership-plans/gold", admin, GOLD)
    assert answer.status_code == 201, answer.json_body
    assert answer.json_body["version"] == 1 and answer.json_body["welcome_coupon_template_ids"] == ["ct1", "ct2"]
    changed = call(client, "put", "/admin/membership-plans/gold", admin, {**GOLD, "price_fen": 29_900, "version": 1})
    assert changed.status_code == 200 and changed.json_body["version"] == 2
    stale = call(client, "put", "/admin/membership-plans/gold", admin, {**GOLD, "price_fen": 9_900, "version": 1})
    assert stale.status_code == 409
    silver = {**GOLD, "tier": "银卡", "rank": 1, "version": 0}
    assert call(client, "put", "/admin/membership-plans/silver", admin, silver).status_code == 201
    one = call(client, "get", "/admin/membership-plans/gold", admin)
    assert one.status_code == 200 and one.json_body["price_fen"] == 29_900
    listed = call(client, "get", "/admin/membership-plans", admin).json_body["items"]
    assert [p["plan_id"] for p in listed] == ["silver", "gold"]


def test_refusals(client: Client, tokens: dict):
    admin = tokens["merchant_admin"]
    assert call(client, "get", "/admin/membership-plans/none", admin).status_code == 404
    assert call(client, "get", "/admin/membership-plans/gold", tokens["customer"]).status_code == 403
    assert call(client, "put", "/admin/membership-plans/gold", admin, {**GOLD, "days": "365"}).status_code == 422
    rebate = {**GOLD, "referral_rebate_fen": 20_000}
    assert call(client, "put", "/admin/membership-plans/gold", admin, rebate).status_code == 422
    assert call(client, "put", "/admin/membership-plans/a.b", admin, GOLD).status_code in (400, 422)
