"""Stock as merchant admins set and see it: a count at one location, and a product's sheet."""

from __future__ import annotations

import random
import time
from dataclasses import replace

from shared.inventory.model import StockChanged, StockLevel
from shared.inventory.ports import StockRepository, StockSheet
from shared.kernel.errors import ConcurrentUpdate, NotFound, UnknownLocation

SET_ATTEMPTS = 5


def set_on_hand(
    sku: str, location: str, on_hand: int, repo: StockRepository, attempts: int = SET_ATTEMPTS
) -> tuple[StockLevel, bool]:
    """Set the count at one location, keeping what orders reserved; returns the level and whether
    it is the location's first stock item. A read then a write conditional on the values read: an
    order reserving in between makes the write fail and the count is applied again on fresh values.
    The product's low-stock threshold is copied onto the item so the stream alone can tell when
    `available` crosses it."""
    for attempt in range(attempts):
        product, place, current = repo.read_for_count(sku, location)
        if product is None:
            raise NotFound("no such product", sku=sku)
        if place is None:
            raise UnknownLocation("no such location; use WH or a store id", location=location)
        base = current or StockLevel(sku, location, on_hand=0, reserved=0, available=0)
        level = replace(base.counted(on_hand), low_stock_threshold=product.low_stock_threshold)
        try:
            repo.write_count(level, expected=current)
        except StockChanged:
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
            continue
        return level, current is None
    raise ConcurrentUpdate("the stock kept changing while it was counted; retry", sku=sku, location=location)


def stock_sheet(sku: str, repo: StockRepository) -> StockSheet:
    sheet = repo.sheet(sku)
    if sheet is None:
        raise NotFound("no such product", sku=sku)
    return sheet
