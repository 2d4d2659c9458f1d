"""Issue 14 item 6 over HTTP against the `make dev` stack: a customer bound to a new guide buys a
paid-membership plan and pays it; `GET /admin/reports/membership?from=<today>&to=<today>` then
counts it for that guide (penetration and conversion 1 of 1: its only bound customer, active by
this order, a member at the day's end, none at its start) and one more member in total."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.web.auth import Role, issue_token
from tests.e2e.http_api import eventually

pytestmark = pytest.mark.e2e


def report(api, admin: str, day: str) -> dict:  # type: ignore[no-untyped-def]
    answer = api.get(f"/admin/reports/membership?from={day}&to={day}", token=admin)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["paid_membership"])


def guide_row(paid: dict, guide_id: str) -> dict | None:
    return next((row for row in paid["guides"] if row["guide_id"] == guide_id), None)


def test_a_bought_membership_counts_for_its_guide_and_in_the_totals(api, stack, tokens):
    secret = stack.environment["JWT_SECRET"]
    admin = tokens["merchant_admin"]
    tag = uuid.uuid4().hex[:8].upper()
    guide_id, plan_id, sub = f"G-R{tag}", f"silver-r{tag.lower()}", f"c-pr-{tag.lower()}"
    customer = issue_token(secret, sub, Role.CUSTOMER)
    today = (datetime.now(tz=UTC) + timedelta(hours=8)).date().isoformat()  # the merchant's day (UTC+8)
    assert api.put(f"/admin/guides/{guide_id}", token=admin, json={"name": "导购 韩梅梅", "store_id": "S001"}).ok
    plan = {"tier": "银卡", "rank": 1, "price_fen": 9_900, "days": 30, "discount_bp": 300, "version": 0}
    assert api.put(f"/admin/membership-plans/{plan_id}", token=admin, json=plan).status_code == 201
    assert api.post(f"/guides/{guide_id}/bind", token=customer).status_code == 200
    before = report(api, admin, today)
    assert guide_row(before, guide_id) is None  # no term credits the new guide yet

    # When the customer buys the plan and pays it
    bought = api.post(
        "/memberships",
        token=customer,
        json={"plan_id": plan_id, "store_id": "S001"},
        headers={"Idempotency-Key": f"buy-{tag}"},
    )
    assert bought.status_code == 201, bought.text
    assert api.post(f"/dev/pay/{bought.json()['order_id']}").json()["outcome"] == "paid"

    # Then the guide's row counts it, and the totals have one more member (others may buy meanwhile)
    def counted() -> bool:
        row = guide_row(report(api, admin, today), guide_id)
        return row is not None and row["penetration"]["numerator"] == 1

    eventually(counted)
    after = report(api, admin, today)
    row = guide_row(after, guide_id)
    assert row is not None
    one_of_one = {"bp": 10_000, "numerator": 1, "denominator": 1}
    assert (row["penetration"], row["conversion"]) == (one_of_one, one_of_one)
    assert row["renewal"] == {"bp": None, "numerator": 0, "denominator": 0}
    assert after["totals"]["penetration"]["numerator"] >= before["totals"]["penetration"]["numerator"] + 1
    assert after["complete"] is True
