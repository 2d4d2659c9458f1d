"""Members and points on moto through the routes: an order paid, completed and partly refunded,
through the real stream, relay, MembershipQueue and consumer; the release and expiry schedules on
a clock moved past the window; the merchant's rules; and 20 concurrent spends of one balance on
the serialised moto server (DESIGN.md: concurrency tests run only against it)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from chalice.test import Client

from shared.kernel.clock import FakeClock, now_ms
from shared.membership.model import DAY_MS, InsufficientPoints
from shared.platform import bootstrap
from tests.conftest import bearer
from tests.functional.commission_support import DAY_S, call, drain, given_shop, ordered_and_paid

RULES = {
    "levels": [
        {"level": 0, "name": "普通会员", "min_growth_fen": 0},
        {"level": 1, "name": "银卡", "min_growth_fen": 5_000, "discount_bp": 200, "points_multiplier_bp": 15_000},
    ],
    "points_per_yuan": 2,
    "points_expire_after_days": 30,
}


@pytest.fixture
def shop(client: Client, tokens: dict) -> Client:
    given_shop(client, tokens)
    assert call(client, "put", "/admin/membership-rules", tokens["merchant_admin"], RULES).status_code == 200
    return client


def me(client: Client, token: str) -> dict:
    answer = call(client, "get", "/me/member", token)
    assert answer.status_code == 200, answer.json_body
    return answer.json_body


def ledger(client: Client, token: str, query: str = "") -> dict:
    answer = call(client, "get", f"/me/points{query}", token)
    assert answer.status_code == 200, answer.json_body
    return answer.json_body


def test_an_order_completed_grows_the_member_and_its_points_are_frozen_released_and_refunded(shop: Client, tokens):
    customer, admin = tokens["customer"], tokens["merchant_admin"]
    # Given an order of 2 x 40 yuan (+ 10 yuan freight) paid: the first order enrols the customer
    order = ordered_and_paid(shop, customer)
    order_id = order["order_id"]
    member = me(shop, customer)
    assert (member["level"]["level"], member["growth_fen"], member["paid_membership"]) == (0, 0, None)
    # When it is shipped and completed
    assert call(shop, "post", f"/orders/{order_id}/ship", admin, {"tracking_number": "SF1"}).status_code == 200
    assert call(shop, "post", f"/orders/{order_id}/complete", customer).status_code == 200
    drain()
    # Then growth is the 80 yuan of lines (level 1 from 50) and 2 points per yuan are frozen
    member = me(shop, customer)
    assert (member["level"]["level"], member["level"]["name"], member["growth_fen"]) == (1, "银卡", 8_000)
    assert member["points"] == {"available": 0, "frozen": 160, "reserved": 0, "debt": 0}
    # And the after-sale window (the commission ledger's, 7 days by default) releases them
    assert bootstrap.points_release(FakeClock(now_ms() + DAY_S * 1000)).release_due() == 0
    assert bootstrap.points_release(FakeClock(now_ms() + 7 * DAY_MS + 1_000)).release_due() == 1
    assert me(shop, customer)["points"]["available"] == 160
    # When one of the two units is refunded
    asked = call(
        shop, "post", f"/orders/{order_id}/refunds", customer, {"lines": [{"sku": "TEA-1", "qty": 1}], "reason": "破损"}
    )
    assert asked.status_code == 201, asked.json_body
    path = f"/admin/orders/{order_id}/refunds/{asked.json_body['refund_id']}/decision"
    assert call(shop, "post", path, admin, {"approve": True}).status_code == 200
    drain()
    # Then half the points come back out of available, and growth is 40 yuan (level 0 again)
    member = me(shop, customer)
    assert member["points"]["available"] == 80 and (member["growth_fen"], member["level"]["level"]) == (4_000, 0)
    items = ledger(shop, customer)["items"]
    # (the release ran on a clock a week ahead, so its entry is the newest)
    assert [(i["kind"], i["points"]) for i in items] == [("released", 0), ("refund_returned", -80), ("earned", 160)]
    # And 30 days after the release what is left expires, once
    later = FakeClock(now_ms() + 38 * DAY_MS)
    assert bootstrap.points_expiry(later).expire_due() == 1
    assert bootstrap.points_expiry(later).expire_due() == 0
    assert me(shop, customer)["points"]["available"] == 0
    assert ledger(shop, customer, "?limit=1")["items"][0]["kind"] == "expired"


def test_the_points_ledger_pages_with_a_signed_cursor(shop: Client, tokens):
    customer = tokens["customer"]
    bootstrap.member_accounts().me("c-1")
    holds = bootstrap.points_holds()
    given_points("c-1", 500)
    for n in range(3):
        holds.reserve("c-1", f"o-{n}", 10, now_ms() + n)
    first = ledger(shop, customer, "?limit=2")
    assert [i["order_id"] for i in first["items"]] == ["o-2", "o-1"]
    rest = ledger(shop, customer, f"?limit=2&cursor={first['next_cursor']}")
    assert [i["kind"] for i in rest["items"]] == ["held", "released"]
    assert call(shop, "get", "/me/points?cursor=forged", customer).status_code == 400
    assert call(shop, "get", "/me/points?limit=0", customer).status_code == 400


def test_who_may_ask_and_what_the_rules_accept(client: Client, tokens):
    assert client.http.get("/me/member").status_code == 401
    assert call(client, "get", "/me/member", tokens["guide"]).status_code == 403
    assert call(client, "get", "/admin/membership-rules", tokens["customer"]).status_code == 403
    admin = tokens["merchant_admin"]
    assert call(client, "get", "/admin/membership-rules", admin).json_body["version"] == 0
    saved = call(client, "put", "/admin/membership-rules", admin, RULES)
    assert saved.status_code == 200 and saved.json_body["version"] == 1
    assert call(client, "get", "/admin/membership-rules", admin).json_body == saved.json_body
    out_of_order = {**RULES, "levels": [RULES["levels"][1], RULES["levels"][0]]}
    assert call(client, "put", "/admin/membership-rules", admin, out_of_order).status_code == 422
    assert call(client, "put", "/admin/membership-rules", admin, {**RULES, "points_per_yuan": -1}).status_code == 422
    assert call(client, "put", "/admin/membership-rules", admin, {"levels": []}).status_code == 422
    bad = client.http.put("/admin/membership-rules", headers=bearer(admin), body="{")
    assert bad.status_code == 400


def given_points(customer: str, points: int) -> None:
    """Points available to `customer`: an order of `points` yuan completed and released."""
    from shared.data.stores.consumer_marks import DynamoMarks
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules
    from shared.kernel.clock import iso
    from shared.kernel.events import DomainEvent, EventType
    from shared.membership.earning import PointsEarning
    from shared.membership.release import PointsRelease
    from shared.messaging.ports import HeldClaim

    store, rules = DynamoMembers(), DynamoMembershipRules()
    lines = [{"sku": "TEA-1", "qty": 1, "payable_fen": points * 100}]
    done = DomainEvent(
        EventType.ORDER_COMPLETED,
        f"seed-{customer}",
        {"order_id": f"seed-{customer}", "customer_id": customer, "lines": lines},
        occurred_at=iso(now_ms() - 8 * DAY_MS),
    )
    marks = DynamoMarks()
    marks.claim("membership", done.event_id, "seed", now_ms(), 60_000)
    PointsEarning(store, rules, 7 * DAY_MS).handle_claimed(
        done, HeldClaim("membership", done.event_id, "seed", now_ms())
    )
    assert PointsRelease(store, rules, FakeClock(now_ms())).release_due() == 1


def test_twenty_concurrent_spends_never_take_the_balance_below_zero(table: dict):
    # Given 250 points available (the default rule: one point per yuan)
    given_points("c-9", 250)
    holds = bootstrap.points_holds()
    asks = [7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83]
    start = threading.Barrier(len(asks))
    at = now_ms()

    def spend(n: int) -> int:
        start.wait()
        try:
            holds.reserve("c-9", f"o-{n}", asks[n], at)
        except InsufficientPoints:
            return 0
        holds.commit("c-9", f"o-{n}", asks[n], at)
        return asks[n]

    # When 20 orders spend from it at once
    with ThreadPoolExecutor(len(asks)) as pool:
        deducted = list(pool.map(spend, range(len(asks))))
    # Then some succeed, some are refused, and the balance is what they left, never below 0
    state = bootstrap.member_accounts().me("c-9")["points"]
    successful = sum(deducted)
    assert 0 < successful <= 250 and 0 in deducted
    assert state == {"available": 250 - successful, "frozen": 0, "reserved": 0, "debt": 0}
    assert state["available"] < min(a for a, d in zip(asks, deducted, strict=True) if d == 0)  # refused: short
    # And the ledger's spends are exactly the successful ones
    items, _ = bootstrap.member_accounts().points_ledger("c-9", 100, None)
    spent = {i["order_id"]: -i["reserved"] for i in items if i["kind"] == "spent"}
    held = {i["order_id"]: -i["available"] for i in items if i["kind"] == "held"}
    expected = {f"o-{n}": d for n, d in enumerate(deducted) if d}
    assert spent == held == expected
