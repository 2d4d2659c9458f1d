"""Coupons (API.md, "Coupons"; docs/coupons.md): templates for merchant admins, claims and the wallet
for customers, redemption in the store, and the sweeper that expires unused coupons. The services
load the data layer through `bootstrap.coupons()`, on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Rate, Response

from shared.kernel.errors import MalformedRequest, NotFound
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import (
    Api,
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
    from functions.coupons import models
    from shared.coupons import claims, expiry, redemption, templates, wallet
    from shared.coupons import model as coupons_model
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.coupons.models")
    claims = lazy_import("shared.coupons.claims")
    expiry = lazy_import("shared.coupons.expiry")
    coupons_model = lazy_import("shared.coupons.model")
    redemption = lazy_import("shared.coupons.redemption")
    templates = lazy_import("shared.coupons.templates")
    wallet = lazy_import("shared.coupons.wallet")


bp = Api(__name__)


def _template_id(template_id: str) -> str:
    if not models.TEMPLATE_ID.fullmatch(template_id):
        raise NotFound("no such coupon template", template_id=template_id[:64])  # not an id we ever gave out
    return template_id


# -- templates ---------------------------------------------------------------------------------
@bp.route("/admin/coupon-templates", methods=["POST"], roles=[Role.MERCHANT_ADMIN])
def create_template() -> Response:
    body = parse(models.CouponTemplateIn)
    request = IdempotentRequest.of(
        f"coupon-templates:{principal().sub}", idempotency_key(), body.model_dump(mode="json")
    )
    stored = templates.create_template(body.to_draft(), body.expected_peak_per_s, request, bootstrap.coupons())
    return json_response(stored.body, stored.status)


@bp.route("/admin/coupon-templates", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def list_templates() -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    items, cursor = templates.list_templates(limit, decode_cursor(query_str("cursor")), bootstrap.coupons())
    return ok({"items": items, "next_cursor": encode_cursor(cursor)})


@bp.route("/admin/coupon-templates/{template_id}", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def show_template(template_id: str) -> Response:
    return ok(templates.show_template(_template_id(template_id), bootstrap.coupons()))


@bp.route("/admin/coupon-templates/{template_id}", methods=["PATCH"], roles=[Role.MERCHANT_ADMIN])
def edit_template(template_id: str) -> Response:
    found = _template_id(template_id)
    body = parse(models.CouponTemplateEditIn)
    return ok(templates.edit_template(found, body.to_edit(), bootstrap.coupons()))


# -- claims and the wallet ---------------------------------------------------------------------
@bp.route("/coupon-templates/{template_id}/claim", methods=["POST"], roles=[Role.CUSTOMER])
def claim(template_id: str) -> Response:
    found = _template_id(template_id)
    who = principal()
    request = IdempotentRequest.of(f"coupon-claims:{found}:{who.sub}", idempotency_key(), {"template_id": found})
    stored = claims.claim(found, who.sub, request, bootstrap.coupons())
    return json_response(stored.body, stored.status)


@bp.route("/me/coupons", methods=["GET"], roles=[Role.CUSTOMER])
def my_coupons() -> Response:
    who = principal()
    ports = bootstrap.coupons()
    # Every parameter is checked, even those ?cart= makes irrelevant: a bad one is a 400, not ignored.
    status = query_str("status")
    if status is not None and status not in coupons_model.Status.__members__:
        raise MalformedRequest("?status= is one of " + ", ".join(coupons_model.Status.__members__), param="status")
    limit = query_int("limit", 20, low=1, high=100)
    cursor = decode_cursor(query_str("cursor"))
    cart = query_str("cart")
    if cart is not None:
        return ok({"items": wallet.usable_for_cart(who.sub, models.parse_cart(cart), ports), "next_cursor": None})
    items, next_cursor = wallet.my_coupons(
        who.sub, None if status is None else coupons_model.Status(status), limit, cursor, ports
    )
    return ok({"items": items, "next_cursor": encode_cursor(next_cursor)})


# -- in the store ------------------------------------------------------------------------------
@bp.route(
    "/stores/{store_id}/coupon-redemptions", methods=["POST"], roles=[Role.STORE_STAFF, Role.GUIDE, Role.CUSTOMER]
)
def redeem(store_id: str) -> Response:
    body = parse(models.CouponRedemptionIn)
    who = principal()
    cmd = redemption.OfflineRedemption(store_id, body.code, body.purchase_fen, body.verification_code)
    payload = {"store_id": store_id, **body.model_dump(mode="json")}
    request = IdempotentRequest.of(f"coupon-redemptions:{who.sub}", idempotency_key(), payload)
    stored = redemption.redeem_offline(cmd, who, request, bootstrap.coupons())
    return json_response(stored.body, stored.status)


@bp.route(
    "/stores/{store_id}/coupon-redemptions",
    methods=["GET"],
    roles=[Role.STORE_STAFF, Role.GUIDE, Role.MERCHANT_ADMIN],
)
def store_redemptions(store_id: str) -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    cursor = decode_cursor(query_str("cursor"))
    items, next_cursor = redemption.store_redemptions(store_id, principal(), limit, cursor, bootstrap.coupons())
    return ok({"items": items, "next_cursor": encode_cursor(next_cursor)})


@bp.route("/stores/{store_id}/verification-code", methods=["GET"], roles=[Role.STORE_STAFF, Role.GUIDE])
def verification_code(store_id: str) -> Response:
    return ok(redemption.store_verification_code(store_id, principal(), bootstrap.coupons()))


@bp.route("/admin/coupon-redemptions/{redemption_id}/reversal", methods=["POST"], roles=[Role.MERCHANT_ADMIN])
def reverse(redemption_id: str) -> Response:
    if not models.REDEMPTION_ID.fullmatch(redemption_id):
        raise NotFound("no such redemption", redemption_id=redemption_id[:64])
    body = parse(models.ReversalIn)
    return ok(redemption.reverse_redemption(redemption_id, body.reason, principal(), bootstrap.coupons()))


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="expire_coupons")
def expire_coupons(event: object) -> dict:
    """AVAILABLE coupons past their use window become EXPIRED (the templates' books say so)."""
    return {"expired": expiry.expire_lapsed(bootstrap.coupons())}
