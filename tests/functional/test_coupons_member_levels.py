"""Member levels that may claim, on moto through the routes (docs/coupons.md, "Member levels"):
`POST /coupon-templates/{id}/claim` and `POST /guides/me/coupons/{template_id}/issue` of a
template that names levels succeed only for a member at one of them (the member record's level,
as `GET /me/member` shows it; no record: the lowest level), 403 `MEMBER_LEVEL_REQUIRED` otherwise
with nothing written; the check is a part of the claim's one transaction, so a claim is still one
round trip; template level names must be the merchant's."""

from __future__ import annotations

import json

import pytest

from shared.data.items import CouponGuideIssuesItem
from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules
from shared.kernel.clock import now_ms
from shared.membership.ports import MemberChange
from tests.conftest import bearer
from tests.functional.coupons_support import (
    claimant_counts,
    coupons_of,
    create_template,
    customer_token,
    get,
    given_stores,
    post,
    template_body,
)
from tests.functional.test_coupons_guide_issues import guide_token, put
from tests.functional.test_flash_sales import dynamodb_calls

RULES = {
    "levels": [
        {"level": 0, "name": "普通会员", "min_growth_fen": 0},
        {"level": 1, "name": "银卡", "min_growth_fen": 100_000},
        {"level": 2, "name": "金卡", "min_growth_fen": 500_000},
    ]
}
GROWTH = {0: 0, 1: 100_000, 2: 500_000, 3: 2_000_000}


@pytest.fixture
def levels(client, tokens):
    given_stores()
    assert put_rules(client, tokens) == 200
    return client


def put_rules(client, tokens, rules: dict = RULES) -> int:
    answer = client.http.put(
        "/admin/membership-rules", headers=bearer(tokens["merchant_admin"]), body=json.dumps(rules)
    )
    return answer.status_code


def member_at(client, customer: str, level: int) -> None:
    """`customer` enrolled by its first `GET /me/member`, then grown to `level` as the membership
    consumer writes it (the store's conditional write of the profile)."""
    assert get(client, "/me/member", customer_token(customer)).status_code == 200
    store = DynamoMembers()
    enrolled = store.member(customer)
    assert enrolled is not None
    grown = enrolled.grown(GROWTH[level], DynamoMembershipRules().current(), now_ms())
    store.write(MemberChange(member_before=enrolled, member_after=grown))
    assert get(client, "/me/member", customer_token(customer)).json_body["level"]["level"] == level


def claim(client, template_id: str, customer: str):
    return post(client, f"/coupon-templates/{template_id}/claim", customer_token(customer))


def level_refusal(answer) -> list[str]:
    """The levels a 403 `MEMBER_LEVEL_REQUIRED` names (fails on any other answer)."""
    assert (answer.status_code, answer.json_body["code"]) == (403, "MEMBER_LEVEL_REQUIRED"), answer.json_body
    return answer.json_body["details"]["member_levels"]


def test_a_claim_of_a_level_template_succeeds_only_at_a_named_level(levels, tokens):
    client = levels
    template_id = create_template(client, tokens, member_levels=["金卡"], per_user_limit=2)
    member_at(client, "c-gold", 2)
    member_at(client, "c-silver", 1)
    # The gold member claims
    claimed = claim(client, template_id, "c-gold")
    assert claimed.status_code == 201, claimed.json_body
    # A silver member, and a customer with no member record yet (the lowest level): 403, naming the levels
    for customer in ("c-silver", "c-never-seen"):
        assert level_refusal(claim(client, template_id, customer)) == ["金卡"]
    # Nothing was written for them: one coupon, one count, nine left on the shards
    assert [c.customer_id for c in coupons_of(template_id)] == ["c-gold"]
    assert claimant_counts(template_id) == {"c-gold": 1}
    shown = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body
    assert (shown["member_levels"], shown["counts"]["remaining"]) == (["金卡"], 9)
    # The refused claim enrolled nobody: the level check reads the record, it never writes one
    assert DynamoMembers().member("c-never-seen") is None


def test_no_member_record_is_the_lowest_level(levels, tokens):
    client = levels
    template_id = create_template(client, tokens, member_levels=["普通会员", "银卡"])
    member_at(client, "c-gold", 2)
    assert claim(client, template_id, "c-never-seen").status_code == 201
    assert claim(client, template_id, "c-gold").json_body["code"] == "MEMBER_LEVEL_REQUIRED"


def test_a_claim_is_one_round_trip_with_or_without_levels(levels, tokens):
    client = levels
    plain = create_template(client, tokens, total=20)
    named = create_template(client, tokens, total=20, member_levels=["银卡", "金卡"])
    for n in range(4):
        member_at(client, f"c-{n}", 1 + n % 2)
    # The first claim of each template in this process reads it (and, for `named`, the level table)
    assert claim(client, plain, "c-0").status_code == 201
    assert claim(client, named, "c-0").status_code == 201
    # Then a claim is the one transaction, whether the template names levels or not
    with dynamodb_calls() as sent:
        assert claim(client, plain, "c-1").status_code == 201
    assert sent == ["TransactWriteItems"]
    with dynamodb_calls() as sent:
        assert claim(client, named, "c-1").status_code == 201
    assert sent == ["TransactWriteItems"]
    # And a refusal by level is that one transaction too
    with dynamodb_calls() as sent:
        assert claim(client, named, "c-no-record").status_code == 403
    assert sent == ["TransactWriteItems"]


def test_a_level_the_merchant_removed_reads_as_the_top_level_left(levels, tokens):
    client = levels
    # A member reached 钻石 (level 3) under a table of four levels; the merchant then dropped it
    diamond = {"level": 3, "name": "钻石", "min_growth_fen": GROWTH[3]}
    assert put_rules(client, tokens, {"levels": [*RULES["levels"], diamond]}) == 200
    member_at(client, "c-diamond", 3)
    assert put_rules(client, tokens) == 200
    assert get(client, "/me/member", customer_token("c-diamond")).json_body["level"]["name"] == "金卡"
    # Its stored level 3 counts as 金卡, the top level left, as `GET /me/member` shows it
    top = create_template(client, tokens, member_levels=["金卡"])
    lower = create_template(client, tokens, member_levels=["银卡"])
    assert claim(client, top, "c-diamond").status_code == 201
    assert claim(client, lower, "c-diamond").json_body["code"] == "MEMBER_LEVEL_REQUIRED"


def test_template_level_names_must_be_the_merchants(levels, tokens):
    client = levels
    admin = tokens["merchant_admin"]
    unknown = post(client, "/admin/coupon-templates", admin, template_body(member_levels=["金卡", "钻石"]))
    assert unknown.status_code == 422 and unknown.json_body["code"] == "UNKNOWN_MEMBER_LEVEL"
    assert unknown.json_body["details"] == {"member_levels": ["钻石"], "levels_defined": ["普通会员", "银卡", "金卡"]}
    empty = post(client, "/admin/coupon-templates", admin, template_body(member_levels=[]))
    assert empty.status_code == 422 and empty.json_body["code"] == "VALIDATION_FAILED"


# -- guides ----------------------------------------------------------------------------------------
@pytest.fixture
def bound(levels, tokens):
    """Guide G001 of S001; c-gold, c-silver and c-unenrolled bound to G001 (binding enrols nobody)."""
    client = levels
    admin = tokens["merchant_admin"]
    put(client, admin, "/admin/stores/S001", {"name": "上海静安店", "city": "上海"})
    put(client, admin, "/admin/guides/G001", {"name": "王芳", "store_id": "S001"})
    for member in ("c-gold", "c-silver", "c-unenrolled"):
        assert post(client, "/guides/G001/bind", customer_token(member)).status_code == 200
    member_at(client, "c-gold", 2)
    member_at(client, "c-silver", 1)
    return client


def issue(client, template_id: str, member: str):
    return post(client, f"/guides/me/coupons/{template_id}/issue", guide_token("G001"), {"member_id": member})


def test_a_guide_issues_a_level_template_only_to_a_member_at_a_named_level(bound, tokens):
    client = bound
    assert DynamoMembers().member("c-unenrolled") is None
    template_id = create_template(client, tokens, total=10, guide_quota=5, member_levels=["金卡"])
    issued = issue(client, template_id, "c-gold")
    assert issued.status_code == 201, issued.json_body
    for member in ("c-silver", "c-unenrolled"):
        assert level_refusal(issue(client, template_id, member)) == ["金卡"]
    # The refusals moved neither the guide's count nor the members': one coupon, G001's count 1
    assert [(c.customer_id, c.issued_by) for c in coupons_of(template_id)] == [("c-gold", "G001")]
    assert claimant_counts(template_id) == {"c-gold": 1}
    issues = CouponGuideIssuesItem.get(*CouponGuideIssuesItem.key(template_id, "G001"), consistent_read=True)
    assert int(issues.issued) == 1


def test_a_guide_issues_a_lowest_level_template_to_a_member_never_enrolled(bound, tokens):
    client = bound
    template_id = create_template(client, tokens, total=10, guide_quota=5, member_levels=["普通会员"])
    assert issue(client, template_id, "c-unenrolled").status_code == 201
    assert issue(client, template_id, "c-gold").json_body["code"] == "MEMBER_LEVEL_REQUIRED"
