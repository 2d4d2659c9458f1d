"""Spending points at checkout on moto (docs/membership.md, "Spending at checkout"): the quote and
the order through the routes, the order's one transaction taking the points, a refusal past the
balance writing nothing, a cancel giving them back and refunds returning them pro rata through the
stream, relay and MembershipQueue; and 20 concurrent orders spending one balance on the serialised
moto server: it never goes below 0 and what was spent is what the successful orders deducted."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from chalice.test import Client

from functions.checkout.models import CartIn
from shared.kernel.errors import InsufficientPoints
from shared.kernel.idempotency import IdempotentRequest
from shared.platform import bootstrap
from tests.functional.commission_support import DELIVERY, call, drain, given_shop, pay, refund_approved
from tests.functional.orders_support import stock_of
from tests.functional.test_membership import given_points

RULES = {
    "levels": [{"level": 0, "name": "会员", "min_growth_fen": 0}],
    "points_per_yuan": 1,
    "redeem_points_per_yuan": 100,  # 100 points = 1 yuan
    "redeem_cap_bp": 5_000,  # at most half the merchandise
}


@pytest.fixture
def shop(client: Client, tokens: dict) -> Client:
    given_shop(client, tokens)  # TEA-1 at 40 yuan, 50 in WH
    saved = call(client, "put", "/admin/membership-rules", tokens["merchant_admin"], RULES)
    assert saved.status_code == 200, saved.json_body
    assert saved.json_body["redeem_points_per_yuan"] == 100 and saved.json_body["redeem_cap_fen"] == 0
    given_points("c-1", 5_000)  # 5,000 points available
    return client


def cart(qty: int, points: int) -> dict:
    return {"lines": [{"sku": "TEA-1", "qty": qty}], "fulfilment": DELIVERY, "points": points}


def points_of(client: Client, token: str) -> dict:
    return call(client, "get", "/me/member", token).json_body["points"]


def kinds(client: Client, token: str) -> list[tuple[str, int]]:
    items = call(client, "get", "/me/points", token).json_body["items"]
    return [(i["kind"], i["points"]) for i in items]


def test_an_order_spends_points_a_refund_returns_them_pro_rata_and_a_cancel_returns_them(shop: Client, tokens):
    customer, admin = tokens["customer"], tokens["merchant_admin"]
    # The quote says what the points take off (2 x 40 yuan, 30 yuan of points, 10 yuan freight)
    quote = call(shop, "post", "/checkout/quote", customer, cart(2, 3_000))
    assert quote.status_code == 200, quote.json_body
    assert quote.json_body["points"] == {"spent": 3_000, "deduction_fen": 3_000, "available": 5_000}
    assert (quote.json_body["discount_fen"], quote.json_body["shipping_fen"]) == (3_000, 1_000)
    assert quote.json_body["total_fen"] == 8_000 - 3_000 + 1_000
    # Past the cap, the cap: 40 yuan of the 80 (4,000 points of the 4,800 named)
    capped = call(shop, "post", "/checkout/quote", customer, cart(2, 4_800)).json_body
    assert capped["points"]["spent"] == 4_000 and capped["discount_fen"] == 4_000
    # Placing it takes the points in the order's own transaction, and the ledger says so
    placed = call(shop, "post", "/orders", customer, cart(2, 3_000))
    assert placed.status_code == 201, placed.json_body
    order = placed.json_body
    assert {"kind": "points", "id": "3000", "amount_fen": 3_000} in order["applied"]
    assert order["lines"][0]["payable_fen"] == 5_000 and order["total_fen"] == 6_000
    assert points_of(shop, customer)["available"] == 2_000
    assert kinds(shop, customer)[0] == ("spent", -3_000)
    # More than is left: 409 INSUFFICIENT_POINTS, and nothing is written
    before = stock_of("TEA-1")
    refused = call(shop, "post", "/orders", customer, cart(2, 2_500))
    assert refused.status_code == 409 and refused.json_body["code"] == "INSUFFICIENT_POINTS"
    assert stock_of("TEA-1") == before and points_of(shop, customer)["available"] == 2_000
    assert len(call(shop, "get", "/orders", customer).json_body["items"]) == 1
    # Paid, then one of the two units refunded: half of what it paid, so half of the points back
    pay(shop, order)
    drain()
    for n in (1, 2):
        refund_approved(shop, customer, admin, order["order_id"], [{"sku": "TEA-1", "qty": 1}])
        assert points_of(shop, customer)["available"] == 2_000 + 1_500 * n
    assert [k for k in kinds(shop, customer) if k[0] == "spend_refunded"] == [("spend_refunded", 1_500)] * 2
    # An unpaid order cancelled gives back all it spent, once
    other = call(shop, "post", "/orders", customer, cart(1, 1_000)).json_body
    assert points_of(shop, customer)["available"] == 4_000
    assert call(shop, "post", f"/orders/{other['order_id']}/cancel", customer).status_code == 200
    drain()
    drain()
    assert points_of(shop, customer) == {"available": 5_000, "frozen": 0, "reserved": 0, "debt": 0}
    assert kinds(shop, customer)[0] == ("spend_returned", 1_000)
    # An order without points carries nothing of them
    plain = call(shop, "post", "/orders", customer, cart(1, 0)).json_body
    assert all(a["kind"] != "points" for a in plain["applied"]) and "points" not in plain


def test_a_merchant_that_takes_no_points_refuses_them_and_the_rule_is_validated(client: Client, tokens):
    given_shop(client, tokens)
    admin = tokens["merchant_admin"]
    refused = call(client, "post", "/checkout/quote", tokens["customer"], cart(1, 100))
    assert refused.status_code == 422 and refused.json_body["details"]["reason"] == "points_not_accepted"
    assert call(client, "put", "/admin/membership-rules", admin, {**RULES, "redeem_cap_bp": 0}).status_code == 422
    assert call(client, "put", "/admin/membership-rules", admin, {**RULES, "redeem_cap_bp": 10_000}).status_code == 422
    assert call(client, "post", "/checkout/quote", tokens["customer"], cart(1, -1)).status_code == 422


def test_twenty_concurrent_orders_spending_one_balance_never_take_it_below_zero(shop: Client):
    # Given 5,000 points and 20 orders of one tea (40 yuan: at most 2,000 points each) at once
    ordering = bootstrap.ordering()
    asks = [300, 450, 520, 610, 700, 180, 990, 1_200, 250, 800, 330, 470, 560, 640, 720, 860, 910, 1_050, 390, 1_500]
    start = threading.Barrier(len(asks))

    def place(n: int) -> tuple[str, int] | None:
        body = cart(1, asks[n])
        request = IdempotentRequest.of("orders:c-1", f"race-{n}", body)
        start.wait()
        try:
            stored = ordering.place_order(CartIn.model_validate(body), "c-1", request)
        except InsufficientPoints:
            return None
        applied = [a for a in stored.body["applied"] if a["kind"] == "points"]
        return stored.body["order_id"], sum(a["amount_fen"] for a in applied)

    with ThreadPoolExecutor(len(asks)) as pool:
        results = list(pool.map(place, range(len(asks))))
    placed = {r[0]: r[1] for r in results if r is not None}
    deducted = sum(placed.values())  # at 100 points a yuan, a point is a fen
    # Then some were refused, the balance is what the successful ones left, never below 0
    state = bootstrap.member_accounts().me("c-1")["points"]
    assert placed and len(placed) < len(asks) and 0 < deducted <= 5_000
    assert state == {"available": 5_000 - deducted, "frozen": 0, "reserved": 0, "debt": 0}
    refused = [a for a, r in zip(asks, results, strict=True) if r is None]
    assert state["available"] < min(refused)  # each refused order asked for more than was left
    # And the ledger's spends are exactly the successful orders' deductions
    items, _ = bootstrap.member_accounts().points_ledger("c-1", 100, None)
    assert {i["order_id"]: -i["points"] for i in items if i["kind"] == "spent"} == placed
    assert stock_of("TEA-1")[1] == len(placed)
