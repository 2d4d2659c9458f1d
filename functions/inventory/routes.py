from __future__ import annotations

from chalice import Response

from functions.inventory.models import SkuPath, StockIn, level_view, sheet_view
from shared.inventory import stock as inventory
from shared.kernel.identity import Role
from shared.platform import bootstrap
from shared.web.api import Api, created, ok, parse, validate

bp = Api(__name__)


@bp.route("/admin/stock/{sku}", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_stock(sku: str) -> Response:
    path = validate(SkuPath, {"sku": sku})
    body = parse(StockIn)
    level, was_new = inventory.set_on_hand(path.sku, body.location, body.on_hand, bootstrap.stock_levels())
    return created(level_view(level)) if was_new else ok(level_view(level))


@bp.route("/admin/stock/{sku}", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def get_stock(sku: str) -> Response:
    path = validate(SkuPath, {"sku": sku})
    return ok(sheet_view(inventory.stock_sheet(path.sku, bootstrap.stock_levels())))
