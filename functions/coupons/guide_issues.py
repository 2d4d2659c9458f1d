"""A guide issues a coupon of a guide-only template to one of its members:
`POST /guides/me/coupons/{template_id}/issue` (docs/coupons.md, "Guides"; docs/openapi.yaml).

The request model and the services are bound with `lazy_import` (shared/kernel/lazy.py), so the
cold import of app.py does not pay for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from functions.coupons.routes import bp
from shared.kernel.errors import NotFound
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.web.api import idempotency_key, json_response, parse, principal

if TYPE_CHECKING:
    from functions.coupons import models
    from shared.coupons import claims
    from shared.kernel import idempotency
    from shared.platform import bootstrap
else:
    models = lazy_import("functions.coupons.models")
    claims = lazy_import("shared.coupons.claims")
    idempotency = lazy_import("shared.kernel.idempotency")
    bootstrap = lazy_import("shared.platform.bootstrap")


@bp.route("/guides/me/coupons/{template_id}/issue", methods=["POST"], roles=[Role.GUIDE])
def issue_coupon(template_id: str) -> Response:
    """Idempotent with `Idempotency-Key`, as a claim is: a replay answers the first coupon."""
    if not models.TEMPLATE_ID.fullmatch(template_id):
        raise NotFound("no such coupon template", template_id=template_id[:64])
    body = parse(models.GuideIssueIn)
    guide_id = principal().sub
    request = idempotency.IdempotentRequest.of(
        f"coupon-guide-issues:{template_id}:{guide_id}", idempotency_key(), body.model_dump(mode="json")
    )
    stored = claims.issue_by_guide(template_id, guide_id, body.member_id, request, bootstrap.coupons())
    return json_response(stored.body, stored.status)
