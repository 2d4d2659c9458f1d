"""Products in DynamoDB (see ProductItem for keys)."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from shared.catalog.model import Page, Product
from shared.data.item_mapping import product_of
from shared.data.items import ProductItem
from shared.data.transactions import condition_failed, translated
from shared.kernel.errors import ConcurrentUpdate

CATALOG_PARTITION = "CATALOG"


class DynamoProducts:
    def get(self, sku: str) -> Product | None:
        pk, sk = ProductItem.key(sku)
        with translated():
            try:
                return product_of(ProductItem.get(pk, sk))
            except ProductItem.DoesNotExist:
                return None

    def put(self, product: Product) -> bool:
        pk, sk = ProductItem.key(product.sku)
        with translated():
            try:
                existing = ProductItem.get(pk, sk, consistent_read=True)
            except ProductItem.DoesNotExist:
                existing = None
        item = existing or ProductItem(pk, sk, created_at=product.updated_at_ms)
        item.sku = product.sku
        item.name = product.name
        item.name_en = product.name_en
        item.category = product.category
        item.price_fen = product.price_fen
        item.member_price_fen = product.member_price_fen
        item.low_stock_threshold = product.low_stock_threshold
        item.updated_at = product.updated_at_ms
        item.gsi1pk = CATALOG_PARTITION
        item.gsi1sk = product.sku
        with translated():
            try:
                # The version attribute makes this conditional: two admins saving at once cannot
                # silently overwrite each other; the loser is told to retry (409).
                item.save()
            except PutError as exc:
                if condition_failed(exc):
                    raise ConcurrentUpdate("the product changed while saving; retry", sku=product.sku) from exc
                raise
        return existing is None

    def list(self, limit: int, cursor: dict | None) -> Page:
        with translated():
            result = ProductItem.gsi1.query(CATALOG_PARTITION, limit=limit, last_evaluated_key=cursor)
            products = [product_of(item) for item in result if isinstance(item, ProductItem)]
            return Page(products=products, next_cursor=result.last_evaluated_key)
