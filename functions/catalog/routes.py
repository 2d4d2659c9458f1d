from __future__ import annotations

import time

from chalice import Response

from functions.catalog.models import ProductIn, SkuPath, product_view
from shared import bootstrap, catalog
from shared.web.api import Api, created, decode_cursor, encode_cursor, ok, parse, query_int, query_str, validate
from shared.web.auth import Role

bp = Api(__name__)


@bp.route("/admin/products/{sku}", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_product(sku: str) -> Response:
    path = validate(SkuPath, {"sku": sku})
    body = parse(ProductIn)
    product, was_new = catalog.upsert_product(
        body.to_domain(path.sku), bootstrap.products(), now_ms=int(time.time() * 1000)
    )
    return created(product_view(product)) if was_new else ok(product_view(product))


@bp.route("/products", methods=["GET"], public=True)
def list_products() -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    page = catalog.list_products(bootstrap.products(), limit, decode_cursor(query_str("cursor")))
    return ok({"items": [product_view(p) for p in page.products], "next_cursor": encode_cursor(page.next_cursor)})


@bp.route("/products/{sku}", methods=["GET"], public=True)
def get_product(sku: str) -> Response:
    path = validate(SkuPath, {"sku": sku})
    return ok(product_view(catalog.get_product(path.sku, bootstrap.products())))
