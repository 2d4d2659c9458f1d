"""Stock counts in DynamoDB, as admins set and read them (see StockItem for keys). The order
path moves stock through the transaction parts in `stock_store`; this module never reserves.

Access patterns (docs/data-model.md):
- a product with all its stock: one Query on pk `PRODUCT#<sku>` (the product item sorts as
  `PRODUCT`, its stock items as `STOCK#<location>`);
- a count: one strongly consistent BatchGetItem of product, location and stock item, then one
  conditional Put (first count) or Update (on the values read);
- available totals of a page of products: one BatchGetItem of (sku, location) stock items.
"""

from __future__ import annotations

from collections.abc import Sequence

from pynamodb.exceptions import PutError, UpdateError

from shared.catalog.model import Product
from shared.data.batch_get import get_items
from shared.data.item_mapping import level_of, location_of, product_of
from shared.data.items import LocationItem, ProductItem, StockItem
from shared.data.stores.locations import DynamoLocations
from shared.data.table import BaseItem
from shared.data.transactions import condition_failed, translated
from shared.inventory.locations import Location
from shared.inventory.model import StockChanged, StockLevel
from shared.inventory.ports import StockSheet


class DynamoStockLevels:
    def read_for_count(self, sku: str, location: str) -> tuple[Product | None, Location | None, StockLevel | None]:
        keys = ProductItem.key(sku), LocationItem.key(location), StockItem.key(sku, location)
        found = get_items(keys, consistent=True)
        product, place, stock = (found.get(key) for key in keys)
        return (
            product_of(product) if isinstance(product, ProductItem) else None,
            location_of(place) if isinstance(place, LocationItem) else None,
            level_of(stock) if isinstance(stock, StockItem) else None,
        )

    def write_count(self, level: StockLevel, expected: StockLevel | None) -> None:
        pk, sk = StockItem.key(level.sku, level.location)
        with translated():
            try:
                if expected is None:
                    self._first_count(pk, sk, level)
                else:
                    self._recount(pk, sk, level, expected)
            except (PutError, UpdateError) as exc:
                if condition_failed(exc):
                    raise StockChanged("the stock changed while it was counted", sku=level.sku) from exc
                raise

    @staticmethod
    def _first_count(pk: str, sk: str, level: StockLevel) -> None:
        StockItem(
            pk,
            sk,
            sku=level.sku,
            location=level.location,
            on_hand=level.on_hand,
            reserved=level.reserved,
            available=level.available,
            low_stock_threshold=level.low_stock_threshold,
        ).save(condition=StockItem.pk.does_not_exist())

    @staticmethod
    def _recount(pk: str, sk: str, level: StockLevel, expected: StockLevel) -> None:
        threshold = (
            StockItem.low_stock_threshold.set(level.low_stock_threshold)
            if level.low_stock_threshold is not None
            else StockItem.low_stock_threshold.remove()
        )
        # Conditional on every counter read: a reservation, commit or release in between fails
        # the write, and the caller counts again on fresh values.
        StockItem(pk, sk).update(
            actions=[StockItem.on_hand.set(level.on_hand), StockItem.available.set(level.available), threshold],
            condition=(StockItem.on_hand == expected.on_hand)
            & (StockItem.reserved == expected.reserved)
            & (StockItem.available == expected.available),
        )

    def sheet(self, sku: str) -> StockSheet | None:
        pk, _ = ProductItem.key(sku)
        product: Product | None = None
        levels: list[StockLevel] = []
        with translated():
            for item in BaseItem.query(pk):
                if isinstance(item, ProductItem):
                    product = product_of(item)
                elif isinstance(item, StockItem):
                    levels.append(level_of(item))
        if product is None:
            return None
        return StockSheet(product, tuple(sorted(levels, key=lambda level: level.location)))

    def available_totals(self, skus: Sequence[str], locations: Sequence[str] | None = None) -> dict[str, int]:
        """Total available per SKU over `locations` (every location by default; 0 where no stock
        item exists): one BatchGetItem per 100 (sku, location) keys."""
        if locations is None:
            locations = [place.location_id for place in DynamoLocations().list()]
        found = get_items([StockItem.key(sku, location) for sku in skus for location in locations])
        totals = dict.fromkeys(skus, 0)
        for item in found.values():
            if isinstance(item, StockItem):
                totals[item.sku] = totals.get(item.sku, 0) + int(item.available)
        return totals
