"""Guide-issued coupons on moto, through the route `POST /guides/me/coupons/{template_id}/issue`
(docs/coupons.md, "Guides"): only guide-only templates, only to the guide's own bound members,
within the guide's quota, the member's limit and the template's total, idempotent; the member's
binding is checked inside the issuing transaction, so a reassignment a moment before wins."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from shared.coupons import claims
from shared.coupons.model import GuideQuotaReached, NotYourMember
from shared.coupons.ports import GuideOfMember
from shared.data.items import CouponGuideIssuesItem, CouponItem
from shared.kernel.idempotency import IdempotentRequest
from shared.platform import bootstrap
from shared.web.auth import Role, issue_token
from tests.conftest import TEST_ENV
from tests.functional.coupons_support import create_template, customer_token, get, given_stores, post

ISSUE = "/guides/me/coupons/{}/issue"


def guide_token(guide: str) -> str:
    return issue_token(TEST_ENV["JWT_SECRET"], guide, Role.GUIDE, "S001")


def put(client, token: str, path: str, body: dict) -> None:
    import json

    from tests.conftest import bearer

    answer = client.http.put(path, headers=bearer(token), body=json.dumps(body))
    assert answer.status_code == 200, answer.json_body


@pytest.fixture
def org(client, tokens):
    """Stores; guides G001 and G002 of S001; members c-1, c-2, c-4 bound to G001, c-3 to G002."""
    given_stores()
    admin = tokens["merchant_admin"]
    put(client, admin, "/admin/stores/S001", {"name": "上海静安店", "city": "上海"})
    put(client, admin, "/admin/guides/G001", {"name": "王芳", "store_id": "S001"})
    put(client, admin, "/admin/guides/G002", {"name": "李明", "store_id": "S001"})
    for member, guide in (("c-1", "G001"), ("c-2", "G001"), ("c-4", "G001"), ("c-3", "G002")):
        assert post(client, f"/guides/{guide}/bind", customer_token(member)).status_code == 200
    return client


def issue(client, template_id: str, guide: str, member: str, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return post(client, ISSUE.format(template_id), guide_token(guide), {"member_id": member}, **headers)


def test_a_guide_issues_to_its_members_within_its_quota_and_their_limit(org, tokens):
    client = org
    template_id = create_template(client, tokens, total=10, per_user_limit=1, guide_quota=2)
    shown = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body
    assert shown["guide_quota"] == 2
    # When G001 issues to its member c-1
    first = issue(client, template_id, "G001", "c-1", key="g-1")
    # Then c-1 holds a coupon that records the guide; the guide's answer has no offline code
    assert first.status_code == 201, first.json_body
    assert (first.json_body["customer_id"], first.json_body["issued_by"]) == ("c-1", "G001")
    assert "code" not in first.json_body
    wallet = get(client, "/me/coupons", customer_token("c-1")).json_body["items"]
    assert [(c["coupon_id"], c["issued_by"]) for c in wallet] == [(first.json_body["coupon_id"], "G001")]
    assert wallet[0]["code"]
    # And the same key again answers the same coupon; another coupon for c-1 passes its limit
    assert issue(client, template_id, "G001", "c-1", key="g-1").json_body == first.json_body
    again = issue(client, template_id, "G001", "c-1")
    assert (again.status_code, again.json_body["code"]) == (429, "LIMIT_REACHED")
    # And G001's quota of two: c-2 gets one, c-4 does not; G002's quota is its own
    assert issue(client, template_id, "G001", "c-2").status_code == 201
    over = issue(client, template_id, "G001", "c-4")
    assert (over.status_code, over.json_body["code"]) == (409, "GUIDE_QUOTA_REACHED")
    assert issue(client, template_id, "G002", "c-3").status_code == 201
    # And the table and the books say three coupons, two by G001
    coupons = [c for c in CouponItem.scan(CouponItem.template_id == template_id) if isinstance(c, CouponItem)]
    assert sorted((c.customer_id, c.issued_by) for c in coupons) == [("c-1", "G001"), ("c-2", "G001"), ("c-3", "G002")]
    counted = CouponGuideIssuesItem.get(*CouponGuideIssuesItem.key(template_id, "G001"), consistent_read=True)
    assert int(counted.issued) == 2
    counts = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body["counts"]
    assert (counts["claimed"], counts["remaining"]) == (3, 7)


def test_who_may_issue_what_to_whom(org, tokens):
    client = org
    guides_only = create_template(client, tokens, guide_quota=5)
    public = create_template(client, tokens)
    # Not this guide's member (bound to another guide, or to none): 403, nothing issued
    for member in ("c-3", "c-nobody"):
        refused = issue(client, guides_only, "G001", member)
        assert (refused.status_code, refused.json_body["code"]) == (403, "NOT_YOUR_MEMBER")
    # A template customers claim themselves: 422; a customer claiming a guide-only one: 403
    refused = issue(client, public, "G001", "c-1")
    assert (refused.status_code, refused.json_body["code"]) == (422, "NOT_GUIDE_TEMPLATE")
    claimed = post(client, f"/coupon-templates/{guides_only}/claim", customer_token("c-1"))
    assert (claimed.status_code, claimed.json_body["code"]) == (403, "GUIDE_ONLY")
    # Another role, an unknown template, a bad body
    as_customer = post(client, ISSUE.format(guides_only), customer_token("c-1"), {"member_id": "c-1"})
    assert (as_customer.status_code, as_customer.json_body["code"]) == (403, "FORBIDDEN")
    assert issue(client, "ct" + "0" * 24, "G001", "c-1").status_code == 404
    bad = post(client, ISSUE.format(guides_only), guide_token("G001"), {"member": "c-1"})
    assert (bad.status_code, bad.json_body["code"]) == (422, "VALIDATION_FAILED")
    # And a member reassigned to another guide is no longer the first guide's
    put(client, tokens["merchant_admin"], "/admin/bindings/c-1", {"guide_id": "G002", "reason": "moved store"})
    refused = issue(client, guides_only, "G001", "c-1")
    assert (refused.status_code, refused.json_body["code"]) == (403, "NOT_YOUR_MEMBER")
    assert issue(client, guides_only, "G002", "c-1").status_code == 201
    [issued] = [c for c in CouponItem.scan(CouponItem.template_id == guides_only) if isinstance(c, CouponItem)]
    assert issued.issued_by == "G002"


def test_a_binding_moved_after_it_was_read_refuses_the_issue_in_its_transaction(org, tokens):
    client = org
    template_id = create_template(client, tokens, guide_quota=5)
    ports = bootstrap.coupons()
    stale = ports.guides.guide_of("c-1", 0)
    assert stale == GuideOfMember("G001", 1)
    # Given c-1 is moved to G002 after the issue read the binding (the reader answers the old one once)
    put(client, tokens["merchant_admin"], "/admin/bindings/c-1", {"guide_id": "G002", "reason": "moved store"})

    class ReadBeforeTheMove:
        def __init__(self) -> None:
            self.reads = 0

        def guide_of(self, member_id: str, now_ms: int) -> GuideOfMember | None:
            self.reads += 1
            return stale if self.reads == 1 else ports.guides.guide_of(member_id, now_ms)

    reader = ReadBeforeTheMove()
    request = IdempotentRequest.of(f"coupon-guide-issues:{template_id}:G001", None, {"member_id": "c-1"})
    # When G001 issues on the stale read: the transaction's check of the binding refuses it, the
    # binding is read again, and it is G002's member now
    with pytest.raises(NotYourMember):
        claims.issue_by_guide(template_id, "G001", "c-1", request, replace(ports, guides=reader))
    assert reader.reads == 2
    assert [c for c in CouponItem.scan(CouponItem.template_id == template_id) if isinstance(c, CouponItem)] == []


def test_concurrent_issues_by_one_guide_never_pass_its_quota(org, tokens):
    client = org
    members = [f"m-{n}" for n in range(20)]
    for member in members:
        assert post(client, "/guides/G001/bind", customer_token(member)).status_code == 200
    template_id = create_template(client, tokens, total=50, per_user_limit=1, guide_quota=5, expected_peak_per_s=2000)
    ports = bootstrap.coupons()

    def one(member: str) -> str:
        request = IdempotentRequest.of(f"coupon-guide-issues:{template_id}:G001", None, {"member_id": member})
        try:
            return str(claims.issue_by_guide(template_id, "G001", member, request, ports).status)
        except GuideQuotaReached as refused:
            return refused.code

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, members))
    assert answers.count("201") == 5 and answers.count("GUIDE_QUOTA_REACHED") == 15, answers
    coupons = [c for c in CouponItem.scan(CouponItem.template_id == template_id) if isinstance(c, CouponItem)]
    assert len(coupons) == 5 and {c.issued_by for c in coupons} == {"G001"}
