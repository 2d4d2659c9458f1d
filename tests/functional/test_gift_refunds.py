"""Gifts (满赠) on partial refunds, on moto through the refund routes (docs/pricing.md, "Refunds below
a threshold"): a shipped order's gift kept below its threshold is paid for out of the refund and
paid back when it comes back; an unshipped order's gift comes back with the refund that breaks the
threshold and goes back to stock whatever the merchant decides for the rest; a refund too small to
pay for the gift is 422 until the gift comes back with it. Every refund sums to what was paid, and
the stock reconciles (on_hand = reserved + available)."""

from __future__ import annotations

import pytest

from tests.conftest import bearer
from tests.functional.coupons_support import given_stores, post
from tests.functional.orders_support import given_catalogue, stock_of
from tests.functional.test_promotions import DELIVERY, put, spend_body

ORDER_TOTAL = 20000  # 2 teas at 100 yuan: 满200 reached, the standing 满300减30 not


@pytest.fixture
def shop(table):
    given_stores()
    given_catalogue({("TEA-1", "WH"): 20, ("CUP-1", "WH"): 10})


def gift_order(client, tokens, cups: int, ship: bool) -> str:
    gift = {"kind": "gift", "tiers": [{"threshold_fen": 20000, "gift_sku": "CUP-1", "gift_qty": cups}]}
    assert put(client, tokens["merchant_admin"], "GIFT", spend_body(**gift)).status_code == 201
    body = {"lines": [{"sku": "TEA-1", "qty": 2}], "fulfilment": DELIVERY}
    placed = post(client, "/orders", tokens["customer"], body)
    assert placed.status_code == 201, placed.json_body
    assert placed.json_body["lines"][-1]["sku"] == "CUP-1" and placed.json_body["total_fen"] == ORDER_TOTAL
    order_id = placed.json_body["order_id"]
    assert client.http.post(f"/dev/pay/{order_id}").json_body["outcome"] == "paid"
    if ship:
        shipped = post(client, f"/orders/{order_id}/ship", tokens["merchant_admin"], {"tracking_number": "SF1"})
        assert shipped.status_code == 200
    return order_id


def ask(client, tokens, order_id: str, lines: dict[str, int]):
    body = {"lines": [{"sku": s, "qty": q} for s, q in lines.items()], "reason": "changed my mind"}
    return post(client, f"/orders/{order_id}/refunds", tokens["customer"], body)


def issue(client, tokens, order_id: str, refund_id: str, restock: bool) -> dict:
    path = f"/admin/orders/{order_id}/refunds/{refund_id}/decision"
    decided = post(client, path, tokens["merchant_admin"], {"approve": True, "restock": restock})
    assert decided.status_code == 200 and decided.json_body["status"] == "ISSUED", decided.json_body
    return decided.json_body


def view(client, tokens, order_id: str) -> dict:
    return client.http.get(f"/orders/{order_id}", headers=bearer(tokens["customer"])).json_body


def reconciles(sku: str) -> bool:
    on_hand, reserved, available = stock_of(sku)
    return on_hand == reserved + available


def test_a_shipped_gift_kept_below_the_threshold_is_paid_for_then_paid_back(client, tokens, shop):
    # Given 满200赠杯 on 2 teas, paid and shipped
    order_id = gift_order(client, tokens, cups=1, ship=True)
    # When one tea comes back (100 yuan left, below 200) and the cup stays with the customer
    asked = ask(client, tokens, order_id, {"TEA-1": 1})
    # Then the cup's 33.33 is deducted, in the request and in the refund issued
    assert asked.status_code == 201 and asked.json_body["amount_fen"] == 10000 - 3333
    first = issue(client, tokens, order_id, asked.json_body["refund_id"], restock=True)
    assert first["amount_fen"] == 6667 and first["lines"] == [{"sku": "TEA-1", "qty": 1, "amount_fen": 6667}]
    # When the cup comes back after all, its 33.33 is paid back on the tea line it was taken from
    asked = ask(client, tokens, order_id, {"CUP-1": 1})
    assert asked.status_code == 201 and asked.json_body["amount_fen"] == 3333
    second = issue(client, tokens, order_id, asked.json_body["refund_id"], restock=True)
    assert second["lines"] == [
        {"sku": "CUP-1", "qty": 1, "amount_fen": 0},
        {"sku": "TEA-1", "qty": 0, "amount_fen": 3333},
    ]
    # And the last tea: the refunds sum to what was paid, the order is REFUNDED
    asked = ask(client, tokens, order_id, {"TEA-1": 1})
    third = issue(client, tokens, order_id, asked.json_body["refund_id"], restock=True)
    order = view(client, tokens, order_id)
    assert first["amount_fen"] + second["amount_fen"] + third["amount_fen"] == ORDER_TOTAL
    assert order["refunded_fen"] == ORDER_TOTAL and order["status"] == "REFUNDED"
    # The refunds as listed keep what was issued; every unit is back on the shelf
    assert [r["amount_fen"] for r in order["refunds"]] == [6667, 3333, 10000]
    assert stock_of("TEA-1") == (20, 0, 20) and stock_of("CUP-1") == (10, 0, 10)


def test_an_unshipped_orders_gift_comes_back_with_the_refund_and_goes_back_to_stock(client, tokens, shop):
    order_id = gift_order(client, tokens, cups=1, ship=False)
    assert stock_of("CUP-1") == (9, 0, 9) and stock_of("TEA-1") == (18, 0, 18)  # committed at payment
    # When one tea is asked back before shipping, the cup (no longer earned) comes with it at 0
    asked = ask(client, tokens, order_id, {"TEA-1": 1})
    assert asked.status_code == 201 and asked.json_body["amount_fen"] == 10000
    assert {"sku": "CUP-1", "qty": 1, "amount_fen": 0} in asked.json_body["lines"]
    # And the merchant does not restock the tea: the cup, which never left, goes back anyway
    issued = issue(client, tokens, order_id, asked.json_body["refund_id"], restock=False)
    assert issued["amount_fen"] == 10000
    assert stock_of("CUP-1") == (10, 0, 10) and stock_of("TEA-1") == (18, 0, 18)
    assert reconciles("CUP-1") and reconciles("TEA-1")
    lines = {line["sku"]: line["refunded_qty"] for line in view(client, tokens, order_id)["lines"]}
    assert lines == {"TEA-1": 1, "CUP-1": 1}


def test_a_refund_too_small_to_pay_for_the_gift_is_422_until_the_gift_comes_back(client, tokens, shop):
    # Given 满200赠4杯 (133.32 yuan of cups) on 2 teas, shipped: one tea's 100 cannot pay for them
    order_id = gift_order(client, tokens, cups=4, ship=True)
    refused = ask(client, tokens, order_id, {"TEA-1": 1})
    assert (refused.status_code, refused.json_body["code"]) == (422, "RULE_VIOLATION")
    details = refused.json_body["details"]
    assert (details["reason"], details["gift_sku"], details["gift_qty"], details["deduction_fen"]) == (
        "gift_must_be_returned",
        "CUP-1",
        4,
        13332,
    )
    assert view(client, tokens, order_id)["refunds"] == []  # nothing held
    # When the cups come back with it, the tea refunds its 100
    asked = ask(client, tokens, order_id, {"TEA-1": 1, "CUP-1": 4})
    assert asked.status_code == 201 and asked.json_body["amount_fen"] == 10000
    assert issue(client, tokens, order_id, asked.json_body["refund_id"], restock=True)["amount_fen"] == 10000
    assert stock_of("CUP-1") == (10, 0, 10) and reconciles("TEA-1")
