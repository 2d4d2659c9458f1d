from __future__ import annotations

from chalice import Response

from functions.catalog.models import ProductIn, SkuPath, product_view, stocked_product_view
from shared.catalog import model as catalog
from shared.inventory import stock as inventory
from shared.kernel.clock import now_ms
from shared.kernel.identity import Role
from shared.platform import bootstrap
from shared.web.api import Api, created, decode_cursor, encode_cursor, ok, parse, query_int, query_str, validate

bp = Api(__name__)


@bp.route("/admin/products/{sku}", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_product(sku: str) -> Response:
    path = validate(SkuPath, {"sku": sku})
    body = parse(ProductIn)
    product, was_new = catalog.upsert_product(body.to_domain(path.sku), bootstrap.products(), now_ms=now_ms())
    return created(product_view(product)) if was_new else ok(product_view(product))


@bp.route("/products", methods=["GET"], public=True)
def list_products() -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    cursor = decode_cursor(query_str("cursor"))
    page = catalog.list_products(bootstrap.products(), limit, cursor, bootstrap.stock_levels())
    items = [product_view(p, page.available.get(p.sku, 0)) for p in page.products]
    return ok({"items": items, "next_cursor": encode_cursor(page.next_cursor)})


@bp.route("/products/{sku}", methods=["GET"], public=True)
def get_product(sku: str) -> Response:
    path = validate(SkuPath, {"sku": sku})
    return ok(stocked_product_view(inventory.stock_sheet(path.sku, bootstrap.stock_levels())))
