from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class StockItem(BaseItem, discriminator="Stock"):
    """pk `PRODUCT#<sku>`, sk `STOCK#<location>`: one product's stock at one location, beside its
    product item so one query reads a product with all its stock.

    Invariant, kept by every write under a condition: available = on_hand - reserved >= 0.
    DynamoDB conditions cannot do arithmetic, so `available` is stored and moved with the others.
    `low_stock_threshold` is copied here so the stream alone can tell when `available` crosses it.
    """

    sku = UnicodeAttribute()
    location = UnicodeAttribute()
    on_hand = NumberAttribute()
    reserved = NumberAttribute()
    available = NumberAttribute()
    low_stock_threshold = NumberAttribute(null=True)

    @staticmethod
    def key(sku: str, location: str) -> tuple[str, str]:
        return f"PRODUCT#{sku}", f"STOCK#{location}"
