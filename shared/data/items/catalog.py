from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute

from shared.data.table import BaseItem


class ProductItem(BaseItem, discriminator="Product"):
    """pk `PRODUCT#<sku>`, sk `PRODUCT`; gsi1 `CATALOG` / `<sku>` lists the catalogue in SKU order."""

    sku = UnicodeAttribute()
    name = UnicodeAttribute()
    name_en = UnicodeAttribute(null=True)
    category = UnicodeAttribute(null=True)
    price_fen = NumberAttribute()
    member_price_fen = NumberAttribute(null=True)
    low_stock_threshold = NumberAttribute(null=True)
    updated_at = NumberAttribute()
    version = VersionAttribute()

    @staticmethod
    def key(sku: str) -> tuple[str, str]:
        return f"PRODUCT#{sku}", "PRODUCT"
