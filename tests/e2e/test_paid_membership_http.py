"""Issue 14 item 3's done-means, over HTTP against the `make dev` stack: a customer bound to a guide
buys a paid-membership plan (`POST /memberships`), pays it like any order (`POST /dev/pay`), sees
the member discount in the next quote and the plan's welcome coupons in `GET /me/coupons`; the
guide's rebate is in its ledger (`GET /me/commissions`); a refund within the plan's window gives
all back, revokes the coupons (EXPIRED, not usable) and claws the rebate back."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from shared.web.auth import Role, issue_token
from tests.e2e.http_api import eventually

pytestmark = pytest.mark.e2e

DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "李雷", "phone": "13900139004", "city": "上海", "detail": "静安区9号"},
}


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, tz=UTC).isoformat()


def welcome_template(api, admin: str) -> str:  # type: ignore[no-untyped-def]
    body = {
        "kind": "threshold",
        "name": "会员礼 满100减20",
        "amount_fen": 2000,
        "threshold_fen": 10000,
        "total": 100,
        "per_user_limit": 1,
        "valid_from": iso_in(-60),
        "valid_to": iso_in(3600),
        "channels": ["online", "offline"],
    }
    answer = api.post("/admin/coupon-templates", token=admin, json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["template_id"])


def quoted(api, token: str, sku: str) -> int:  # type: ignore[no-untyped-def]
    answer = api.post("/checkout/quote", token=token, json={"lines": [{"sku": sku, "qty": 1}], "fulfilment": DELIVERY})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["subtotal_fen"]) - int(answer.json()["discount_fen"])


def guide_ledger(api, token: str) -> dict:  # type: ignore[no-untyped-def]
    answer = api.get("/me/commissions", token=token)
    assert answer.status_code == 200, answer.text
    return answer.json()


def held(summary: dict) -> int:
    """What the ledger holds for the guide, wherever the after-sale window has it (5 s locally)."""
    return int(summary["pending_fen"]) + int(summary["frozen_fen"]) + int(summary["settleable_fen"])


def wallet(api, token: str) -> list[dict]:  # type: ignore[no-untyped-def]
    answer = api.get("/me/coupons", token=token)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_a_bound_customer_buys_pays_gets_the_benefits_and_a_refund_in_the_window_undoes_them(api, stack, tokens):
    secret = stack.environment["JWT_SECRET"]
    admin = tokens["merchant_admin"]
    tag = uuid.uuid4().hex[:8].upper()
    guide_id, plan_id, sku, sub = f"G-{tag}", f"gold-{tag.lower()}", f"PM-{tag}", f"c-pm-{tag.lower()}"
    guide = issue_token(secret, guide_id, Role.GUIDE, "S001")
    customer = issue_token(secret, sub, Role.CUSTOMER)
    # Given a guide of S001, a product of 40 yuan, two welcome templates and a plan with a 20 yuan rebate
    assert api.put(f"/admin/guides/{guide_id}", token=admin, json={"name": "导购 李雷", "store_id": "S001"}).ok
    assert api.put(f"/admin/products/{sku}", token=admin, json={"name": "会员价茶", "price_fen": 4000}).ok
    assert api.put(f"/admin/stock/{sku}", token=admin, json={"location": "WH", "on_hand": 5}).ok
    welcome = [welcome_template(api, admin), welcome_template(api, admin)]
    plan = {
        "tier": "金卡",
        "rank": 2,
        "price_fen": 19_900,
        "days": 365,
        "discount_bp": 500,
        "welcome_coupon_template_ids": welcome,
        "referral_rebate_fen": 2_000,
        "refund_full_within_days": 7,
        "version": 0,
    }
    saved = api.put(f"/admin/membership-plans/{plan_id}", token=admin, json=plan)
    assert saved.status_code == 201, saved.text
    # And a customer bound to the guide, who pays the list price today
    assert api.post(f"/guides/{guide_id}/bind", token=customer).status_code == 200
    assert quoted(api, customer, sku) == 4_000

    # When it buys the plan and pays it like any order
    bought = api.post(
        "/memberships",
        token=customer,
        json={"plan_id": plan_id, "store_id": "S001"},
        headers={"Idempotency-Key": f"buy-{tag}"},
    )
    assert bought.status_code == 201, bought.text
    order = bought.json()
    assert [(x["sku"], x["payable_fen"]) for x in order["lines"]] == [(f"MEMBERSHIP-{plan_id}", 19_900)]
    assert api.post(f"/dev/pay/{order['order_id']}").json()["outcome"] == "paid"

    # Then the next quote takes the plan's 5% off, the welcome coupons are in its wallet
    eventually(lambda: quoted(api, customer, sku) == 3_800)
    eventually(lambda: sorted(c["template_id"] for c in wallet(api, customer)) == sorted(welcome))
    assert {c["status"] for c in wallet(api, customer)} == {"AVAILABLE"}
    me = api.get("/me/member", token=customer).json()
    assert me["paid_membership"]["tier"] == "金卡" and me["paid_membership_ends_at"] is not None
    # And the guide's ledger holds the 20 yuan rebate of the membership line, frozen for the
    # after-sale window since the order completed when the membership began to run
    eventually(lambda: held(guide_ledger(api, guide)["summary"]) == 2_000)
    items = guide_ledger(api, guide)["items"]
    assert [(i["sku"], i["role"], i["amount_fen"]) for i in items] == [(f"MEMBERSHIP-{plan_id}", "guide", 2_000)]

    # When the customer asks for a refund within the 7 days and the merchant approves it
    line = {"sku": f"MEMBERSHIP-{plan_id}", "qty": 1}
    asked = api.post(
        f"/orders/{order['order_id']}/refunds", token=customer, json={"lines": [line], "reason": "不需要了"}
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["amount_fen"] == 19_900  # in the window, no benefit used: everything
    path = f"/admin/orders/{order['order_id']}/refunds/{asked.json()['refund_id']}/decision"
    decided = api.post(path, token=admin, json={"approve": True})
    assert decided.status_code == 200 and decided.json()["amount_fen"] == 19_900, decided.text

    # Then the coupons are revoked (EXPIRED: not usable), the discount is gone, the rebate clawed back
    eventually(lambda: {c["status"] for c in wallet(api, customer)} == {"EXPIRED"})
    eventually(lambda: quoted(api, customer, sku) == 4_000)
    eventually(lambda: held(guide_ledger(api, guide)["summary"]) == 0)
    clawed = [i for i in guide_ledger(api, guide)["items"] if i["sku"] == f"MEMBERSHIP-{plan_id}"]
    assert sum(i["amount_fen"] for i in clawed) == 0 and len(clawed) >= 1, clawed
    assert api.get(f"/orders/{order['order_id']}", token=customer).json()["status"] == "REFUNDED"
    assert api.get("/me/member", token=customer).json()["paid_membership"] is None
