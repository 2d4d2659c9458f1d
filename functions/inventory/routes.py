from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import Api, created, ok, parse, validate

if TYPE_CHECKING:
    from functions.inventory import models
    from shared.inventory import stock as inventory
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.inventory.models")
    inventory = lazy_import("shared.inventory.stock")


bp = Api(__name__)


@bp.route("/admin/stock/{sku}", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_stock(sku: str) -> Response:
    path = validate(models.SkuPath, {"sku": sku})
    body = parse(models.StockIn)
    level, was_new = inventory.set_on_hand(path.sku, body.location, body.on_hand, bootstrap.stock_levels())
    return created(models.level_view(level)) if was_new else ok(models.level_view(level))


@bp.route("/admin/stock/{sku}", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def get_stock(sku: str) -> Response:
    path = validate(models.SkuPath, {"sku": sku})
    return ok(models.sheet_view(inventory.stock_sheet(path.sku, bootstrap.stock_levels())))
