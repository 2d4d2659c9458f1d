"""Buying a paid membership on moto, over the routes (docs/membership.md, "Buying a plan"):
`POST /memberships` places an ordinary order for the plan, paid through the normal notify; its
OrderPaid carries the plan's terms and the line's rebate, so the bound guide's ledger books the
rebate; the membership consumer activates it (the term, the paid member, checkout's MEMBER item,
the welcome pack) once; a refund is priced by the plan's policy and undoes it."""

from __future__ import annotations

import pytest
from chalice.test import Client

from tests.conftest import bearer
from tests.functional.commission_support import call, drain, given_shop, my_ledger, pay
from tests.functional.coupons_support import post

GOLD = {
    "tier": "金卡",
    "rank": 2,
    "price_fen": 19_900,
    "days": 365,
    "discount_bp": 500,
    "referral_rebate_fen": 2_000,
    "refund_full_within_days": 7,
    "version": 0,
}


@pytest.fixture
def shop(client: Client, tokens: dict) -> Client:
    return given_shop(client, tokens)


def given_plan(shop: Client, tokens: dict, plan_id: str = "gold", **changes) -> None:
    answer = call(shop, "put", f"/admin/membership-plans/{plan_id}", tokens["merchant_admin"], {**GOLD, **changes})
    assert answer.status_code in (200, 201), answer.json_body


def buy(shop: Client, token: str, body: dict, key: str = "buy-1"):
    return post(shop, "/memberships", token, body, **{"Idempotency-Key": key})


def test_a_plan_is_bought_as_an_ordinary_order_and_refused_when_not_for_sale(shop: Client, tokens: dict):
    given_plan(shop, tokens)
    customer = tokens["customer"]
    answer = buy(shop, customer, {"plan_id": "gold", "store_id": "S001"})
    assert answer.status_code == 201, answer.json_body
    order = answer.json_body
    assert order["status"] == "PENDING_PAYMENT" and order["total_fen"] == 19_900 and order["shipping_fen"] == 0
    assert [(x["sku"], x["qty"], x["payable_fen"]) for x in order["lines"]] == [("MEMBERSHIP-gold", 1, 19_900)]
    again = buy(shop, customer, {"plan_id": "gold", "store_id": "S001"})
    assert again.status_code == 201 and again.json_body == order  # the key's first answer
    assert buy(shop, customer, {"plan_id": "gold"}).status_code == 422  # the key with another body
    assert shop.http.get(f"/orders/{order['order_id']}", headers=bearer(customer)).json_body["total_fen"] == 19_900
    assert buy(shop, customer, {"plan_id": "nope"}, key="k2").status_code == 404
    given_plan(shop, tokens, "old", active=False)
    assert buy(shop, customer, {"plan_id": "old"}, key="k3").status_code == 404
    assert buy(shop, customer, {"plan_id": "gold", "x": 1}, key="k4").status_code == 422
    assert buy(shop, customer, {"plan_id": 5}, key="k5").status_code == 422
    assert buy(shop, tokens["guide"], {"plan_id": "gold"}, key="k6").status_code == 403


def test_paid_it_credits_the_bound_guide_its_rebate(shop: Client, tokens: dict):
    given_plan(shop, tokens)
    customer = tokens["customer"]
    assert shop.http.post("/guides/G001/bind", headers=bearer(customer)).status_code == 200
    order = buy(shop, customer, {"plan_id": "gold", "store_id": "S001"}).json_body
    pay(shop, order)
    drain()
    ledger = my_ledger(shop, tokens["guide"])
    assert [(i["sku"], i["role"], i["amount_fen"]) for i in ledger["items"]] == [("MEMBERSHIP-gold", "guide", 2_000)]
