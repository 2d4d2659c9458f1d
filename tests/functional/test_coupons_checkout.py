"""Coupons at checkout, on moto through the routes (docs/coupons.md, "At checkout"): the quote and the
order apply them (allocated to the lines they cover by largest remainder, capped, never dropped
silently), the order's one transaction locks them, payment uses them, cancel and expiry give them
back inside their use window only."""

from __future__ import annotations

import json
import time

import pytest

from shared.data.connection import events
from shared.data.items import CouponItem, EventItem
from shared.kernel.clock import FakeClock, now_ms
from shared.kernel.identity import Principal, Role
from shared.payments.hmac_webhook import sign
from shared.platform import bootstrap
from tests.conftest import TEST_ENV, bearer
from tests.functional.coupons_support import create_template, get, given_stores, iso_in, post
from tests.functional.orders_support import given_catalogue, stock_of

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"},
}
PICKUP = {"type": "pickup", "store_id": "S001"}


@pytest.fixture
def shop(table):
    given_stores()
    given_catalogue({("TEA-1", "WH"): 20, ("CUP-1", "WH"): 20, ("TEA-1", "S001"): 5})


def wallet_coupon(client, tokens, customer="customer", **template) -> str:
    template_id = create_template(client, tokens, **template)
    claimed = post(client, f"/coupon-templates/{template_id}/claim", tokens[customer])
    assert claimed.status_code == 201, claimed.json_body
    return claimed.json_body["coupon_id"]


def cart(lines, coupon_ids=(), fulfilment=DELIVERY):
    return {"lines": [{"sku": s, "qty": q} for s, q in lines], "coupon_ids": list(coupon_ids), "fulfilment": fulfilment}


def quote(client, token, lines, coupon_ids=(), fulfilment=DELIVERY):
    return post(client, "/checkout/quote", token, cart(lines, coupon_ids, fulfilment))


def place(client, token, lines, coupon_ids=(), key=None, fulfilment=DELIVERY):
    headers = {"Idempotency-Key": key} if key else {}
    return post(client, "/orders", token, cart(lines, coupon_ids, fulfilment), **headers)


def status_of(coupon_id: str) -> tuple[str, str | None]:
    item = CouponItem.get(f"COUPON#{coupon_id}", "COUPON", consistent_read=True)
    return item.status, item.order_id


def pay(client, order):
    body = {
        "order_id": order["order_id"],
        "transaction_id": f"wx-{order['order_id']}",
        "amount_fen": order["total_fen"],
    }
    raw = json.dumps({**body, "paid_at": "2026-11-23T01:00:00Z"}).encode()
    headers = {"X-Pay-Signature": sign(TEST_ENV["PAYMENT_WEBHOOK_SECRET"], raw, int(time.time()))}
    return client.http.post("/payments/notify", headers={**headers, "Content-Type": "application/json"}, body=raw)


# -- the quote ---------------------------------------------------------------------------------
def test_a_coupon_is_allocated_to_the_lines_it_covers_and_the_lines_sum_to_the_total(client, tokens, shop):
    # Given a 满100减20 coupon (threshold 100 yuan) on all products
    coupon_id = wallet_coupon(client, tokens, amount_fen=2001, threshold_fen=10000)
    # When the customer quotes one tea (100 yuan) and one cup (33.33 yuan) with it
    response = quote(client, tokens["customer"], [("TEA-1", 1), ("CUP-1", 1)], [coupon_id])
    # Then 20.01 yuan come off, split 15.01 / 5.00 by largest remainder, and the lines sum exactly
    assert response.status_code == 200, response.json_body
    body = response.json_body
    assert body["applied"] == [{"kind": "coupon", "id": coupon_id, "amount_fen": 2001}]
    assert [line["discount_fen"] for line in body["lines"]] == [1501, 500]
    assert body["discount_fen"] == 2001
    assert sum(line["payable_fen"] for line in body["lines"]) + body["shipping_fen"] == body["total_fen"]
    assert body["total_fen"] == 13333 - 2001  # free shipping from 99 yuan after discounts


def test_a_coupon_only_on_what_it_covers_and_never_more_than_that(client, tokens, shop):
    cups = wallet_coupon(client, tokens, kind="fixed", amount_fen=5000, threshold_fen=None, scope={"skus": ["CUP-1"]})
    body = quote(client, tokens["customer"], [("TEA-1", 1), ("CUP-1", 1)], [cups]).json_body
    assert [line["discount_fen"] for line in body["lines"]] == [0, 3333]  # capped at the cup's payable
    assert body["applied"][0]["amount_fen"] == 3333 and min(line["payable_fen"] for line in body["lines"]) == 0


@pytest.mark.parametrize(
    ("template", "lines", "fulfilment", "reason"),
    [
        ({"threshold_fen": 50000}, [("TEA-1", 1)], DELIVERY, "below_threshold"),
        ({"channels": ["offline"]}, [("TEA-1", 1)], DELIVERY, "offline_only"),
        (
            {"scope": {"skus": ["CUP-1"]}, "threshold_fen": 100, "amount_fen": 100},
            [("TEA-1", 1)],
            DELIVERY,
            "out_of_scope",
        ),
        ({"stackable_with_promotions": False}, [("TEA-1", 3)], DELIVERY, "not_stackable_with_promotions"),
        ({"kind": "shipping", "amount_fen": None, "threshold_fen": None}, [("TEA-1", 1)], PICKUP, "no_shipping"),
    ],
)
def test_a_coupon_that_cannot_be_used_is_422_with_the_reason_never_dropped(
    client, tokens, shop, template, lines, fulfilment, reason
):
    coupon_id = wallet_coupon(client, tokens, **template)
    quoted = quote(client, tokens["customer"], lines, [coupon_id], fulfilment)
    placed = place(client, tokens["customer"], lines, [coupon_id], fulfilment=fulfilment)
    for response in (quoted, placed):
        assert response.status_code == 422, response.json_body
        assert (response.json_body["code"], response.json_body["details"]["reason"]) == ("COUPON_NOT_USABLE", reason)
    assert status_of(coupon_id) == ("AVAILABLE", None)


def test_someone_elses_coupon_is_unknown_and_two_of_a_kind_are_refused(client, tokens, shop):
    theirs = wallet_coupon(client, tokens, customer="customer2")
    refused = quote(client, tokens["customer"], [("TEA-1", 1)], [theirs])
    assert (refused.status_code, refused.json_body["code"]) == (422, "UNKNOWN_COUPON")
    assert refused.json_body["details"] == {
        "coupon_id": theirs,
        "coupon_ids": [theirs],
        "reasons": [{"coupon_id": theirs, "code": "UNKNOWN_COUPON", "message": "no such coupon in your wallet"}],
        "suggested_coupon_ids": [],
    }
    first, second = wallet_coupon(client, tokens), wallet_coupon(client, tokens)
    both = quote(client, tokens["customer"], [("TEA-1", 2)], [first, second])
    assert (both.status_code, both.json_body["details"]["reason"]) == (422, "one_per_kind")


def test_a_shipping_coupon_beside_a_merchandise_coupon(client, tokens, shop):
    merch = wallet_coupon(client, tokens, kind="fixed", amount_fen=300, threshold_fen=None)
    free_shipping = wallet_coupon(client, tokens, kind="shipping", amount_fen=None, threshold_fen=None)
    body = quote(client, tokens["customer"], [("CUP-1", 1)], [merch, free_shipping]).json_body
    assert body["applied"] == [
        {"kind": "coupon", "id": merch, "amount_fen": 300},
        {"kind": "shipping_coupon", "id": free_shipping, "amount_fen": 1000},
    ]
    assert (body["discount_fen"], body["shipping_fen"], body["total_fen"]) == (300, 0, 3333 - 300)


def test_the_quote_lists_usable_coupons_and_suggests_the_best_pair(client, tokens, shop):
    # Given 5 yuan off anything, 满100减20, free shipping and a store-only coupon
    small = wallet_coupon(client, tokens, kind="fixed", amount_fen=500, threshold_fen=None)
    big = wallet_coupon(client, tokens, amount_fen=2000, threshold_fen=10000)
    free_shipping = wallet_coupon(client, tokens, kind="shipping", amount_fen=None, threshold_fen=None)
    wallet_coupon(client, tokens, channels=["offline"])
    # When the customer quotes a 100-yuan tea for delivery without naming any
    body = quote(client, tokens["customer"], [("TEA-1", 1)]).json_body
    # Then both merchandise coupons are listed with their saving; the shipping coupon saves only
    # beside the 满100减20 (which takes the order below free shipping), and that pair is suggested
    assert body["usable_coupons"] == [
        {"coupon_id": big, "kind": "coupon", "saving_fen": 2000},
        {"coupon_id": free_shipping, "kind": "shipping_coupon", "saving_fen": 1000},
        {"coupon_id": small, "kind": "coupon", "saving_fen": 500},
    ]
    assert body["suggested_coupon_ids"] == [big, free_shipping]
    assert body["applied"] == [] and body["total_fen"] == 10000  # advice only: nothing applied unasked
    suggested = quote(client, tokens["customer"], [("TEA-1", 1)], body["suggested_coupon_ids"]).json_body
    assert suggested["total_fen"] == 8000


def test_a_named_coupon_that_cannot_be_used_is_refused_with_every_reason(client, tokens, shop):
    usable = wallet_coupon(client, tokens, kind="fixed", amount_fen=500, threshold_fen=None)
    offline = wallet_coupon(client, tokens, channels=["offline"])
    above = wallet_coupon(client, tokens, kind="shipping", amount_fen=None, threshold_fen=50000)
    refused = quote(client, tokens["customer"], [("CUP-1", 1)], [offline, above])
    assert (refused.status_code, refused.json_body["code"]) == (422, "COUPON_NOT_USABLE")
    details = refused.json_body["details"]
    assert [(r["coupon_id"], r["code"], r["reason"]) for r in details["reasons"]] == [
        (offline, "COUPON_NOT_USABLE", "offline_only"),
        (above, "COUPON_NOT_USABLE", "below_threshold"),
    ]
    assert details["reasons"][1]["threshold_fen"] == 50000 and details["suggested_coupon_ids"] == [usable]
    # The order refuses the same cart the same way (without the advice)
    placed = place(client, tokens["customer"], [("CUP-1", 1)], [offline, above])
    assert (placed.status_code, placed.json_body["details"]["reason"]) == (422, "offline_only")


# -- the order ---------------------------------------------------------------------------------
def test_an_order_locks_its_coupon_in_its_one_transaction_and_a_second_order_gets_409(client, tokens, shop):
    coupon_id = wallet_coupon(client, tokens)
    calls: list[str] = []

    def record(**kwargs):
        calls.append(kwargs["model"].name)

    events().register("before-call.dynamodb", record)
    try:
        first = place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id])
    finally:
        events().unregister("before-call.dynamodb", record)
    assert first.status_code == 201, first.json_body
    # One batched read (products, stock, member, location, the coupon) and one transaction
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    order = first.json_body
    assert order["applied"] == [{"kind": "coupon", "id": coupon_id, "amount_fen": 2000}]
    assert status_of(coupon_id) == ("LOCKED", order["order_id"])
    again = place(client, tokens["customer"], [("TEA-1", 2)], [coupon_id])
    assert (again.status_code, again.json_body["code"]) == (409, "COUPON_IN_USE")
    assert stock_of("TEA-1") == (20, 1, 19)  # the refused order holds nothing


def test_payment_uses_the_coupon(client, tokens, shop):
    coupon_id = wallet_coupon(client, tokens)
    order = place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id]).json_body
    assert pay(client, order).status_code == 200
    assert status_of(coupon_id) == ("USED", order["order_id"])
    assert [e.event_type for e in EventItem.scan() if e.aggregate_id == coupon_id].count("CouponUsed") == 1
    mine = get(client, "/me/coupons?status=USED", tokens["customer"]).json_body["items"]
    assert [c["coupon_id"] for c in mine] == [coupon_id]


def test_cancel_gives_the_coupon_back_and_it_can_be_used_again(client, tokens, shop):
    coupon_id = wallet_coupon(client, tokens)
    order = place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id]).json_body
    cancelled = post(client, f"/orders/{order['order_id']}/cancel", tokens["customer"])
    assert cancelled.status_code == 200, cancelled.json_body
    assert status_of(coupon_id) == ("AVAILABLE", None)
    assert place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id]).status_code == 201


def test_a_coupon_whose_window_passed_while_locked_comes_back_expired(client, tokens, shop):
    coupon_id = wallet_coupon(client, tokens, valid_to=iso_in(120), claim_to=iso_in(60))
    order = place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id]).json_body
    # When the order expires after the coupon's use window has ended (a clock 10 minutes ahead)
    later = bootstrap.order_lifecycle(clock=FakeClock(now_ms() + 10 * 60_000 + 900_000))
    assert later.expire_due() == 1
    # Then the coupon is EXPIRED, not AVAILABLE, and the template's books say so
    assert status_of(coupon_id) == ("EXPIRED", None)
    template_id = CouponItem.get(f"COUPON#{coupon_id}", "COUPON").template_id
    counts = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body["counts"]
    assert (counts["locked"], counts["expired"], counts["available"]) == (0, 1, 0)
    assert order["order_id"]


def test_a_locked_coupon_cannot_be_redeemed_in_a_store(client, tokens, shop):
    coupon_id = wallet_coupon(client, tokens)
    code = CouponItem.get(f"COUPON#{coupon_id}", "COUPON").code
    place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id])
    refused = post(client, "/stores/S001/coupon-redemptions", tokens["store_staff"], {"code": code})
    assert (refused.status_code, refused.json_body["code"]) == (409, "COUPON_IN_USE")


def test_a_replayed_order_with_a_coupon_returns_the_first_order(client, tokens, shop):
    coupon_id = wallet_coupon(client, tokens)
    first = place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id], key="o-1")
    again = place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id], key="o-1")
    assert first.status_code == again.status_code == 201 and again.json_body == first.json_body
    assert bearer(tokens["customer"])  # the same customer, the same key


# -- refunds -----------------------------------------------------------------------------------
def refund(client, tokens, order, lines):
    body = {"lines": [{"sku": s, "qty": q} for s, q in lines], "reason": "changed my mind"}
    requested = post(client, f"/orders/{order['order_id']}/refunds", tokens["customer"], body)
    assert requested.status_code == 201, requested.json_body
    return requested.json_body["refund_id"]


def issue(client, tokens, order, refund_id):
    path = f"/admin/orders/{order['order_id']}/refunds/{refund_id}/decision"
    issued = post(client, path, tokens["merchant_admin"], {"approve": True})
    assert issued.status_code == 200, issued.json_body
    return issued.json_body


def test_a_full_refund_gives_the_coupon_back_a_partial_one_does_not(client, tokens, shop):
    coupon_id = wallet_coupon(client, tokens)
    order = place(client, tokens["customer"], [("TEA-1", 2)], [coupon_id]).json_body
    assert pay(client, order).status_code == 200
    # A partial refund (one tea of two) keeps the coupon USED by the order
    issue(client, tokens, order, refund(client, tokens, order, [("TEA-1", 1)]))
    assert status_of(coupon_id) == ("USED", order["order_id"])
    # The refund of the last unit refunds the order in full: the coupon is AVAILABLE again
    issue(client, tokens, order, refund(client, tokens, order, [("TEA-1", 1)]))
    assert status_of(coupon_id) == ("AVAILABLE", None)
    returned = [e for e in EventItem.scan() if e.aggregate_id == coupon_id and e.event_type == "CouponReturned"]
    assert len(returned) == 1
    template_id = CouponItem.get(f"COUPON#{coupon_id}", "COUPON").template_id
    counts = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body["counts"]
    assert (counts["used"], counts["available"]) == (0, 1)
    assert place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id]).status_code == 201


def test_a_full_refund_after_the_coupons_window_gives_it_back_expired(client, tokens, shop):
    coupon_id = wallet_coupon(client, tokens, valid_to=iso_in(120), claim_to=iso_in(60))
    order = place(client, tokens["customer"], [("TEA-1", 1)], [coupon_id]).json_body
    assert pay(client, order).status_code == 200
    refund_id = refund(client, tokens, order, [("TEA-1", 1)])
    # When the merchant issues it after the coupon's use window has ended
    later = bootstrap.order_refunds(clock=FakeClock(now_ms() + 10 * 60_000))
    issued = later.decide_refund(order["order_id"], refund_id, True, False, Principal("admin", Role.MERCHANT_ADMIN))
    assert issued["status"] == "ISSUED"
    # Then the coupon comes back EXPIRED, and the books say so
    assert status_of(coupon_id) == ("EXPIRED", None)
    template_id = CouponItem.get(f"COUPON#{coupon_id}", "COUPON").template_id
    counts = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body["counts"]
    assert (counts["used"], counts["expired"], counts["available"]) == (0, 1, 0)
