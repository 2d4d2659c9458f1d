"""Issue 14, members and points, over HTTP against the `make dev` stack: a customer's first sign-in
enrols it; an order paid and completed grows it a level and earns points, frozen through the
after-sale window (5 s under the local stage) and then available; the OrderCompleted delivered
twice more earns once; a refund of one of two units takes back half the points and the level;
`GET /me/points` explains every change, newest first, page by page."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.payments.hmac_webhook import sign
from shared.web.auth import Role, issue_token
from tests.e2e.http_api import eventually
from tests.e2e.test_commission_http import aws, event_body, queue_empty

pytestmark = pytest.mark.e2e

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "韩梅梅", "phone": "13900139003", "city": "上海", "detail": "静安区7号"},
}
RULES = {
    "levels": [
        {"level": 0, "name": "普通会员", "min_growth_fen": 0},
        {"level": 1, "name": "银卡", "min_growth_fen": 5_000, "points_multiplier_bp": 20_000},
    ],
    "points_per_yuan": 1,
    "points_expire_after_days": 365,
}


def member(api, token: str) -> dict:  # type: ignore[no-untyped-def]
    answer = api.get("/me/member", token=token)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_order_grows_a_level_earns_frozen_points_released_after_the_window_and_a_refund_takes_back(
    api, stack, tokens
):
    admin = tokens["merchant_admin"]
    tag = uuid.uuid4().hex[:8].upper()
    sku, sub = f"MBR-{tag}", f"c-mbr-{tag.lower()}"
    customer = issue_token(stack.environment["JWT_SECRET"], sub, Role.CUSTOMER)
    # Given the merchant's levels (silver from 50 yuan) and a product of 40 yuan
    saved = api.put("/admin/membership-rules", token=admin, json=RULES)
    assert saved.status_code == 200, saved.text
    assert api.put(f"/admin/products/{sku}", token=admin, json={"name": "会员测试茶", "price_fen": 4000}).ok
    assert api.put(f"/admin/stock/{sku}", token=admin, json={"location": "WH", "on_hand": 5}).ok
    # And a customer signing in for the first time: enrolled at level 0, no points
    first = member(api, customer)
    assert (first["customer_id"], first["level"]["level"], first["growth_fen"]) == (sub, 0, 0)
    assert first["points"] == {"available": 0, "frozen": 0, "reserved": 0, "debt": 0}
    assert first["paid_membership"] is None and first["next_level"]["name"] == "银卡"

    # When it orders two units (10 yuan freight), pays, and the order is shipped and completed
    order = api.post("/orders", token=customer, json={"lines": [{"sku": sku, "qty": 2}], "fulfilment": DELIVERY})
    assert order.status_code == 201, order.text
    order_id = order.json()["order_id"]
    raw = json.dumps(
        {"order_id": order_id, "transaction_id": f"wx-{tag}", "amount_fen": 9_000, "paid_at": "2026-11-23T02:00:00Z"}
    ).encode()
    pay_secret = stack.environment["PAYMENT_WEBHOOK_SECRET"]
    paid = api.post("/payments/notify", data=raw, headers={"X-Pay-Signature": sign(pay_secret, raw, int(time.time()))})
    assert paid.json()["outcome"] == "paid"
    assert api.post(f"/orders/{order_id}/ship", token=admin, json={"tracking_number": f"SF{tag}"}).ok
    assert api.post(f"/orders/{order_id}/complete", token=customer).ok
    # Then growth is the 80 yuan of goods (silver), and 80 points are earned at level 0's x1, frozen
    grown = eventually(lambda: (m := member(api, customer))["growth_fen"] == 8_000 and m)
    assert (grown["level"]["level"], grown["level"]["name"]) == (1, "银卡")
    assert grown["points"]["frozen"] + grown["points"]["available"] == 80
    # And once the after-sale window (5 s) closes they are available
    eventually(lambda: member(api, customer)["points"] == {"available": 80, "frozen": 0, "reserved": 0, "debt": 0})

    # When SQS delivers the OrderCompleted twice more
    sqs = aws(stack, "sqs")
    url = sqs.get_queue_url(QueueName="retail-local-MembershipQueue")["QueueUrl"]
    body = event_body(stack, order_id, "OrderCompleted")
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    eventually(lambda: queue_empty(sqs, url))
    # Then nothing was earned twice
    again = member(api, customer)
    assert (again["growth_fen"], again["points"]["available"]) == (8_000, 80)

    # When one of the two units is refunded
    asked = api.post(
        f"/orders/{order_id}/refunds", token=customer, json={"lines": [{"sku": sku, "qty": 1}], "reason": "破损"}
    )
    assert asked.status_code == 201, asked.text
    decision = f"/admin/orders/{order_id}/refunds/{asked.json()['refund_id']}/decision"
    assert api.post(decision, token=admin, json={"approve": True}).status_code == 200
    # Then half the points come back out of available, and the member is back at level 0
    after = eventually(lambda: (m := member(api, customer))["growth_fen"] == 4_000 and m)
    assert after["level"]["level"] == 0
    assert after["points"] == {"available": 40, "frozen": 0, "reserved": 0, "debt": 0}

    # And the ledger explains it, newest first, two entries a page
    page = api.get("/me/points?limit=2", token=customer).json()
    rest = api.get(f"/me/points?limit=2&cursor={page['next_cursor']}", token=customer).json()
    entries = [(e["kind"], e["points"], e["order_id"]) for e in page["items"] + rest["items"]]
    assert entries == [("refund_returned", -40, order_id), ("released", 0, order_id), ("earned", 80, order_id)]
    assert rest["next_cursor"] is None
    assert sum(e["available"] for e in page["items"] + rest["items"]) == 40

    # When the merchant takes points at checkout (10 points a yuan, at most half an order) and the
    # member spends its 40 points on an order of one unit
    spending = {**RULES, "redeem_points_per_yuan": 10, "redeem_cap_bp": 5_000}
    assert api.put("/admin/membership-rules", token=admin, json=spending).status_code == 200
    cart = {"lines": [{"sku": sku, "qty": 1}], "fulfilment": DELIVERY, "points": 40}
    quoted = api.post("/checkout/quote", token=customer, json=cart).json()
    assert quoted["points"] == {"spent": 40, "deduction_fen": 400, "available": 40}
    spent = api.post("/orders", token=customer, json=cart)
    assert spent.status_code == 201, spent.text
    assert {"kind": "points", "id": "40", "amount_fen": 400} in spent.json()["applied"]
    assert spent.json()["total_fen"] == 4_000 - 400 + 1_000
    assert member(api, customer)["points"]["available"] == 0
    # Then another order spending more is refused, holding nothing
    refused = api.post("/orders", token=customer, json={**cart, "points": 10})
    assert (refused.status_code, refused.json()["code"]) == (409, "INSUFFICIENT_POINTS")
    # And cancelling the unpaid order gives the 40 points back, once, through the MembershipQueue
    assert api.post(f"/orders/{spent.json()['order_id']}/cancel", token=customer).ok
    eventually(lambda: member(api, customer)["points"]["available"] == 40)
    kinds = [(e["kind"], e["points"]) for e in api.get("/me/points?limit=2", token=customer).json()["items"]]
    assert kinds == [("spend_returned", 40), ("spent", -40)]
