from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from shared.kernel.clock import now_ms
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import Api, created, decode_cursor, encode_cursor, ok, parse, query_int, query_str, validate

if TYPE_CHECKING:
    from functions.catalog import models
    from shared.catalog import model as catalog
    from shared.inventory import stock as inventory
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.catalog.models")
    catalog = lazy_import("shared.catalog.model")
    inventory = lazy_import("shared.inventory.stock")


bp = Api(__name__)


@bp.route("/admin/products/{sku}", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_product(sku: str) -> Response:
    path = validate(models.SkuPath, {"sku": sku})
    body = parse(models.ProductIn)
    product, was_new = catalog.upsert_product(body.to_domain(path.sku), bootstrap.products(), now_ms=now_ms())
    return created(models.product_view(product)) if was_new else ok(models.product_view(product))


@bp.route("/products", methods=["GET"], public=True)
def list_products() -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    cursor = decode_cursor(query_str("cursor"))
    page = catalog.list_products(bootstrap.products(), limit, cursor, bootstrap.stock_levels())
    items = [models.product_view(p, page.available.get(p.sku, 0)) for p in page.products]
    return ok({"items": items, "next_cursor": encode_cursor(page.next_cursor)})


@bp.route("/products/{sku}", methods=["GET"], public=True)
def get_product(sku: str) -> Response:
    path = validate(models.SkuPath, {"sku": sku})
    return ok(models.stocked_product_view(inventory.stock_sheet(path.sku, bootstrap.stock_levels())))
