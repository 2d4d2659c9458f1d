"""Promotions (API.md, "Promotions"; docs/pricing.md): `PUT /admin/promotions/{id}` for merchant
admins, `GET /promotions` for anyone. The request models, the service and the data layer load on
first use (shared/kernel/lazy.py), not at cold start."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from shared.kernel.errors import NotFound
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.web.api import Api, decode_cursor, encode_cursor, json_response, ok, parse, query_int, query_str, validate

if TYPE_CHECKING:
    from functions.promotions import models
    from shared.platform import bootstrap
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.promotions.models")
    bootstrap = lazy_import("shared.platform.bootstrap")


bp = Api(__name__)


@bp.route("/admin/promotions/{promotion_id}", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_promotion(promotion_id: str) -> Response:
    path = validate(models.PromotionPath, {"promotion_id": promotion_id})
    body = parse(models.PromotionIn)
    view, was_new = bootstrap.promotions().put(body.to_draft(path.promotion_id), body.version)
    return json_response(view, 201 if was_new else 200)


@bp.route("/admin/promotions/{promotion_id}", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def show_promotion(promotion_id: str) -> Response:
    path = validate(models.PromotionPath, {"promotion_id": promotion_id})
    found = bootstrap.promotions().show(path.promotion_id)
    if found is None:
        raise NotFound("no such promotion", promotion_id=path.promotion_id)
    return ok(found)


@bp.route("/promotions", methods=["GET"], public=True)
def running_promotions() -> Response:
    limit = query_int("limit", 100, low=1, high=100)
    cursor = decode_cursor(query_str("cursor"))
    after = cursor.get("after") if cursor is not None else None
    items, last = bootstrap.promotions().running(limit, after if isinstance(after, str) else None)
    return ok({"items": items, "next_cursor": encode_cursor(None if last is None else {"after": last})})
