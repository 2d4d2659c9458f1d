"""API.md "Members": `GET /me/member` (level, growth, paid membership, points balance) and
`GET /me/points` (the points ledger, newest first); the merchant's `GET`/`PUT /admin/membership-rules`
(docs/openapi.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from functions.membership.blueprint import bp
from shared.kernel.errors import NotFound
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import (
    created,
    decode_cursor,
    encode_cursor,
    idempotency_key,
    json_response,
    ok,
    parse,
    principal,
    query_int,
    query_str,
)

if TYPE_CHECKING:
    from functions.membership import models
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.membership.models")


@bp.route("/me/member", methods=["GET"], roles=[Role.CUSTOMER])
def my_membership() -> Response:
    return ok(bootstrap.member_accounts().me(principal().sub))


@bp.route("/me/points", methods=["GET"], roles=[Role.CUSTOMER])
def my_points() -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    cursor = decode_cursor(query_str("cursor"))
    items, next_cursor = bootstrap.member_accounts().points_ledger(principal().sub, limit, cursor)
    return ok({"items": items, "next_cursor": encode_cursor(next_cursor)})


@bp.route("/admin/membership-rules", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def get_rules() -> Response:
    return ok(bootstrap.membership_rules().show())


@bp.route("/admin/membership-rules", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_rules() -> Response:
    return ok(bootstrap.membership_rules().save(parse(models.MembershipRulesIn).rules()))


@bp.route("/admin/members", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def members_with_tag() -> Response:
    tag = models.tag_of(query_str("tag"))
    limit = query_int("limit", 50, low=1, high=200)
    cursor = decode_cursor(query_str("cursor"))
    items, next_cursor = bootstrap.member_directory().with_tag(tag, limit, cursor)
    return ok({"items": items, "next_cursor": encode_cursor(next_cursor)})


@bp.route("/admin/reports/membership", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def membership_report() -> Response:
    from functions.membership.report_params import paid_days

    days = paid_days(query_str("from"), query_str("to"))  # 400 before anything is read
    report = bootstrap.membership_report().by_store()
    if days is not None:
        report["paid_membership"] = bootstrap.paid_membership_report().for_days(*days)
    return ok(report)


@bp.route("/admin/segment-issues/{job_id}", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def start_segment_issue(job_id: str) -> Response:
    body = parse(models.SegmentIssueIn)
    made, job = bootstrap.segment_issues().start(models.job_id_of(job_id), body.template_id, body.tag, principal().sub)
    return created(job) if made else ok(job)


@bp.route("/admin/segment-issues/{job_id}", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def segment_issue_progress(job_id: str) -> Response:
    job = bootstrap.segment_issues().progress(models.job_id_of(job_id))
    if job is None:
        raise NotFound("no such segment issue", job_id=job_id)
    return ok(job.view())


@bp.route("/admin/membership-plans/{plan_id}", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_membership_plan(plan_id: str) -> Response:
    body = parse(models.MembershipPlanIn)
    made, plan = bootstrap.membership_plans().save(body.plan(models.plan_id_of(plan_id)), body.version)
    return created(plan) if made else ok(plan)


@bp.route("/admin/membership-plans/{plan_id}", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def get_membership_plan(plan_id: str) -> Response:
    return ok(bootstrap.membership_plans().show(models.plan_id_of(plan_id)))


@bp.route("/admin/membership-plans", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def list_membership_plans() -> Response:
    return ok({"items": bootstrap.membership_plans().all()})


@bp.route("/memberships", methods=["POST"], roles=[Role.CUSTOMER])
def buy_membership() -> Response:
    """A plan bought as an order, paid like any order (docs/membership.md, "Buying a plan")."""
    body = parse(models.MembershipPurchaseIn)
    who = principal()
    request = IdempotentRequest.of(f"memberships:{who.sub}", idempotency_key(), body.model_dump(mode="json"))
    stored = bootstrap.membership_purchase().buy(body.plan_id, body.store_id, who.sub, request)
    return json_response(stored.body, stored.status)
