"""Guide-issued coupons on in-memory ports (tests/fakes/coupons.py): a guide issues a guide-only
template to its own bound members, within its quota, the template's total and the member's
per-user limit (also with many threads at once), idempotently; customers cannot claim it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from shared.coupons import claims
from shared.coupons.model import (
    GuideOnly,
    GuideQuotaReached,
    NotGuideTemplate,
    NotYourMember,
)
from shared.coupons.ports import GuideOfMember
from shared.kernel.clock import FakeClock
from shared.kernel.errors import CouponExhausted, IdempotencyKeyReused, LimitReached, ValidationFailed
from shared.kernel.events import EventType
from shared.kernel.idempotency import IdempotentRequest
from tests.fakes.coupons import coupons_on_fakes, fixed_coupon_template

HOUR_MS = 3600 * 1000


@pytest.fixture
def world():
    return coupons_on_fakes(FakeClock())


def given_template(ports, total=100, per_user_limit=1, guide_quota: int | None = 3) -> str:
    return fixed_coupon_template(
        ports, 2 * HOUR_MS, total=total, per_user_limit=per_user_limit, guide_quota=guide_quota
    )


def bind(tables, member: str, guide: str, version: int = 1) -> None:
    tables.bindings[member] = GuideOfMember(guide, version)


def issue(ports, template_id, guide, member, key=None):
    request = IdempotentRequest.of(f"coupon-guide-issues:{template_id}:{guide}", key, {"member_id": member})
    return claims.issue_by_guide(template_id, guide, member, request, ports)


def test_a_guide_issues_to_its_member_and_the_coupon_records_the_guide(world):
    ports, tables = world
    template_id = given_template(ports)
    bind(tables, "c-1", "G001")
    # When the guide issues the coupon to its member
    issued = issue(ports, template_id, "G001", "c-1")
    # Then the member holds a coupon issued by that guide, and the guide's answer has no offline code
    assert issued.status == 201
    coupon = tables.coupons[issued.body["coupon_id"]]
    assert (coupon.customer_id, coupon.issued_by) == ("c-1", "G001")
    assert issued.body["customer_id"] == "c-1" and issued.body["issued_by"] == "G001"
    assert "code" not in issued.body and "qr_payload" not in issued.body
    assert coupon.view(ports.clock.now_ms())["code"] == coupon.code  # the member's wallet shows it
    # And CouponClaimed says who issued it
    assert [(e.type, e.payload["issued_by"]) for e in tables.events if e.type is EventType.COUPON_CLAIMED] == [
        (EventType.COUPON_CLAIMED, "G001")
    ]


def test_only_to_a_member_bound_to_this_guide(world):
    ports, tables = world
    template_id = given_template(ports)
    bind(tables, "c-other", "G002")
    # A member bound to another guide, and one bound to nobody: 403, nothing issued
    for member in ("c-other", "c-nobody"):
        with pytest.raises(NotYourMember) as refused:
            issue(ports, template_id, "G001", member)
        assert refused.value.code == "NOT_YOUR_MEMBER"
    assert tables.coupons == {} and tables.guide_issues == {} and tables.claimants == {}


def test_a_binding_moved_between_the_read_and_the_issue_is_read_again(world):
    ports, tables = world
    template_id = given_template(ports)
    bind(tables, "c-1", "G001")

    class MovedAfterRead:
        """The member is moved to another guide right after the issue read the binding."""

        def guide_of(self, member_id, now_ms):
            read = tables.bindings.get(member_id)
            bind(tables, member_id, "G002", version=2)
            return read

    moved = replace(ports, guides=MovedAfterRead())
    # When G001 issues while the member is moved to G002: the transaction's binding check refuses
    # it, the binding is read again and says G002
    with pytest.raises(NotYourMember):
        issue(moved, template_id, "G001", "c-1")
    assert tables.coupons == {} and tables.guide_issues == {}


def test_only_a_guide_only_template_is_issued_by_guides_and_customers_cannot_claim_one(world):
    ports, tables = world
    public = given_template(ports, guide_quota=None)
    guides_only = given_template(ports)
    bind(tables, "c-1", "G001")
    with pytest.raises(NotGuideTemplate) as refused:
        issue(ports, public, "G001", "c-1")
    assert refused.value.code == "NOT_GUIDE_TEMPLATE"
    request = IdempotentRequest.of(f"coupon-claims:{guides_only}:c-1", None, {"template_id": guides_only})
    with pytest.raises(GuideOnly) as refused_claim:
        claims.claim(guides_only, "c-1", request, ports)
    assert refused_claim.value.code == "GUIDE_ONLY"
    assert tables.coupons == {}


def test_each_guide_issues_at_most_its_quota(world):
    ports, tables = world
    template_id = given_template(ports, guide_quota=3)
    for n in range(5):
        bind(tables, f"c-{n}", "G001")
    bind(tables, "c-9", "G002")
    # When G001 issues to five members with a quota of three
    answers = []
    for n in range(5):
        try:
            answers.append(issue(ports, template_id, "G001", f"c-{n}").status)
        except GuideQuotaReached as refused:
            answers.append(refused.code)
    # Then three are issued and two refused; G002's quota is its own
    assert answers == [201, 201, 201, "GUIDE_QUOTA_REACHED", "GUIDE_QUOTA_REACHED"]
    assert issue(ports, template_id, "G002", "c-9").status == 201
    assert tables.guide_issues == {(template_id, "G001"): 3, (template_id, "G002"): 1}


def test_the_members_limit_and_the_templates_total_still_hold(world):
    ports, tables = world
    limited = given_template(ports, per_user_limit=1, guide_quota=10)
    bind(tables, "c-1", "G001")
    issue(ports, limited, "G001", "c-1")
    with pytest.raises(LimitReached):
        issue(ports, limited, "G001", "c-1")
    small = given_template(ports, total=2, per_user_limit=1, guide_quota=2)
    bind(tables, "c-2", "G001")
    bind(tables, "c-3", "G002")
    issue(ports, small, "G001", "c-1")
    issue(ports, small, "G001", "c-2")
    with pytest.raises(CouponExhausted):
        issue(ports, small, "G002", "c-3")


def test_a_quota_above_the_total_is_refused(world):
    ports, _ = world
    with pytest.raises(ValidationFailed) as refused:
        given_template(ports, total=5, guide_quota=6)
    assert {"field": "guide_quota", "problem": "must be 1..total"} in refused.value.details["errors"]


def test_many_concurrent_issues_by_one_guide_never_pass_its_quota(world):
    ports, tables = world
    template_id = given_template(ports, total=100, guide_quota=10)
    members = [f"c-{n}" for n in range(40)]
    for member in members:
        bind(tables, member, "G001")

    def one(member: str) -> str:
        try:
            return str(issue(ports, template_id, "G001", member).status)
        except GuideQuotaReached as refused:
            return refused.code

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, members))
    assert answers.count("201") == 10 and answers.count("GUIDE_QUOTA_REACHED") == 30
    assert len(tables.coupons) == 10 == tables.guide_issues[(template_id, "G001")]


def test_an_issue_is_idempotent_with_its_key(world):
    ports, tables = world
    template_id = given_template(ports, guide_quota=1)
    bind(tables, "c-1", "G001")
    first = issue(ports, template_id, "G001", "c-1", key="k-1")
    # The same key again, even with the quota used up: the same coupon, nothing more issued
    assert issue(ports, template_id, "G001", "c-1", key="k-1").body == first.body
    assert len(tables.coupons) == 1 and tables.guide_issues[(template_id, "G001")] == 1
    # The same key for another member is refused
    bind(tables, "c-2", "G001")
    with pytest.raises(IdempotencyKeyReused):
        issue(ports, template_id, "G001", "c-2", key="k-1")
