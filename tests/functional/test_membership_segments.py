"""Tags, the members' pages and a coupon issued to a segment, on moto: activity written by the
membership consumer's DynamoDB write (the index items with it), `GET /admin/members?tag=` paged
through the index shards, and `PUT /admin/segment-issues/{id}` run by the schedule's use case
through the coupons' claim path, killed halfway and resumed: one coupon per member."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules, DynamoSegmentJobs
from shared.kernel.clock import FakeClock, iso, now_ms
from shared.kernel.events import DomainEvent, EventType
from shared.membership.coupon_gifts import ClaimedGifts
from shared.membership.segments import SegmentIssues
from shared.messaging import consumers
from shared.platform import bootstrap
from tests.events import sqs_batch_of
from tests.fakes.membership import DiesAfter
from tests.functional.commission_support import call
from tests.functional.coupons_support import claims_per_customer, create_template

MEMBERS = [f"seg-{n:02d}" for n in range(30)]


def paid(customer: str, n: int, paid_fen: int) -> DomainEvent:
    order_id = f"o-{customer}-{n}"
    body = {
        "order_id": order_id,
        "customer_id": customer,
        "lines": [{"sku": "TEA-1", "qty": 1, "payable_fen": paid_fen}],
        "store_id": "S001",
    }
    return DomainEvent(EventType.ORDER_PAID, order_id, body, occurred_at=iso(now_ms()))


def deliver(*events: DomainEvent) -> None:
    batch = sqs_batch_of([json.dumps(e.to_message()) for e in events])
    answer = consumers.consume(batch, bootstrap.points_earning(), bootstrap.consumer_runtime())
    assert answer == {"batchItemFailures": []}


def listed(client: Client, token: str, tag: str, limit: int) -> list[str]:
    found: list[str] = []
    cursor = ""
    while True:
        answer = call(client, "get", f"/admin/members?tag={tag}&limit={limit}{cursor}", token)
        assert answer.status_code == 200, answer.json_body
        found += [m["customer_id"] for m in answer.json_body["items"]]
        if answer.json_body["next_cursor"] is None:
            return found
        cursor = f"&cursor={answer.json_body['next_cursor']}"


def test_tags_pages_and_a_segment_issue_resumed_after_a_crash(client: Client, tokens: dict):
    admin = tokens["merchant_admin"]
    # Given 30 customers who paid, one of them twice (a redelivery counts once)
    first = [paid(m, 1, 1_000 + n) for n, m in enumerate(MEMBERS)]
    deliver(*first)
    deliver(first[0], paid(MEMBERS[0], 2, 200_000))
    # Then active lists each once, over pages of 7; high value (1,000 yuan) only the big spender
    assert sorted(listed(client, admin, "active", 7)) == MEMBERS
    assert listed(client, admin, "high_value", 50) == [MEMBERS[0]]
    assert listed(client, admin, "dormant", 50) == []
    assert call(client, "get", "/admin/members?tag=loyal", admin).status_code == 400
    assert call(client, "get", "/admin/members?tag=active", tokens["customer"]).status_code == 403
    report = call(client, "get", "/admin/reports/membership", admin)
    assert report.status_code == 200, report.json_body
    assert report.json_body["totals"] == {"new": 30, "active": 30, "dormant": 0, "high_value": 1}
    assert report.json_body["stores"] == [{"store_id": "S001", "new": 30, "active": 30, "dormant": 0, "high_value": 1}]
    # Given a template of 100 coupons, 2 per customer, and the job asked for (twice: one job)
    template = create_template(client, {"merchant_admin": admin}, total=100, per_user_limit=2)
    body = {"template_id": template, "tag": "active"}
    started = call(client, "put", "/admin/segment-issues/spring-1", admin, body)
    assert started.status_code == 201, started.json_body
    assert call(client, "put", "/admin/segment-issues/spring-1", admin, body).status_code == 200
    other = {"template_id": template, "tag": "new"}
    assert call(client, "put", "/admin/segment-issues/spring-1", admin, other).status_code == 409
    # When the first run dies after 13 coupons (pages of 5: in the middle of a page)
    clock = FakeClock(now_ms=now_ms())
    dying = SegmentIssues(
        DynamoMembers(),
        DynamoSegmentJobs(),
        DynamoMembershipRules(),
        DiesAfter(ClaimedGifts(bootstrap.coupons()), 13),
        clock,
        page_size=5,
    )
    with pytest.raises(RuntimeError):
        dying.run_due()
    halfway = call(client, "get", "/admin/segment-issues/spring-1", admin).json_body
    assert halfway["status"] == "RUNNING" and halfway["issued"] < 13
    assert sum(claims_per_customer(template).values()) == 13
    # Then after its lease the next runs resume from the checkpoint and finish
    clock.advance(121)
    resumed = bootstrap.segment_issues(clock)
    while resumed.run_due(max_pages=3):
        pass
    done = call(client, "get", "/admin/segment-issues/spring-1", admin).json_body
    assert done["status"] == "DONE" and done["issued"] == 30 and done["members_done"] == 30
    assert claims_per_customer(template) == {m: 1 for m in MEMBERS}
    assert call(client, "get", "/admin/segment-issues/nope", admin).status_code == 404


def test_the_rules_take_tag_thresholds_and_the_birthday_template(client: Client, tokens: dict):
    admin = tokens["merchant_admin"]
    rules = {
        "levels": [{"level": 0, "name": "会员", "min_growth_fen": 0}],
        "tags": {"new_days": 7, "active_days": 30, "dormant_days": 60, "high_value_fen": 50_000},
        "birthday_coupon_template_id": "ct-birthday",
    }
    saved = call(client, "put", "/admin/membership-rules", admin, rules)
    assert saved.status_code == 200, saved.json_body
    assert saved.json_body["tags"]["dormant_days"] == 60
    assert saved.json_body["birthday_coupon_template_id"] == "ct-birthday"
    wrong = {**rules, "tags": {"active_days": 90, "dormant_days": 30}}
    assert call(client, "put", "/admin/membership-rules", admin, wrong).status_code == 422
