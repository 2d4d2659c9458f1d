"""Profit sharing (docs/payments.md, "Profit sharing"): the job that shares paid orders' commissions
through WeChat Pay once their after-sale window closed and confirms them by query, and finance's view
of the shares (one order's, and those that need finance)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Rate, Response

from functions.payments.routes import bp
from shared.kernel.errors import MalformedRequest, NotFound
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.web.api import ok, query_int, query_str, validate

if TYPE_CHECKING:
    from functions.payments import models
    from shared.platform import bootstrap
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.payments.models")
    bootstrap = lazy_import("shared.platform.bootstrap")


@bp.route("/finance/profit-sharing", methods=["GET"], roles=[Role.FINANCE, Role.MERCHANT_ADMIN])
def profit_shares_needing_attention() -> Response:
    if query_str("status") != "needs_attention":
        raise MalformedRequest("?status= is required; the shares listed are those that need finance: needs_attention")
    limit = query_int("limit", 20, low=1, high=100)
    return ok({"items": [s.view() for s in bootstrap.profit_sharing().needing_attention(limit)]})


@bp.route("/finance/orders/{order_id}/profit-sharing", methods=["GET"], roles=[Role.FINANCE, Role.MERCHANT_ADMIN])
def order_profit_share(order_id: str) -> Response:
    oid = validate(models.OrderPath, {"order_id": order_id}).order_id
    share = bootstrap.profit_sharing().share_of(oid)
    if share is None:
        raise NotFound("no profit share for this order", order_id=order_id)
    return ok(share.view())


@bp.schedule(Rate(5, unit=Rate.MINUTES), name="share_profits")
def share_profits(event: object) -> dict[str, int]:
    """Shares the orders whose share is due (WAITING ones whose entries became settleable, PENDING ones
    asked again, PROCESSING ones confirmed); nothing where WeChat Pay profit sharing is off."""
    current = bootstrap.ready()
    if current.payment_provider != "wechatpay" or not current.wechatpay_profit_sharing:
        return {"checked": 0}
    return bootstrap.profit_sharing().settle_due()
