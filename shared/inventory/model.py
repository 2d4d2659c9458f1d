"""Stock per SKU and location, as merchant admins see and set it (pure domain and services; the
store is passed in). Orders move stock through the transaction parts of `shared.data.stores.stock`;
this module sets counts and reads them.

Invariant: available = on_hand - reserved >= 0 at every location. An admin count below what
orders already hold is refused (`OnHandBelowReserved`, 409): those units are promised.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Protocol

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.errors import ConcurrentUpdate, NotFound, OnHandBelowReserved, UnknownLocation

SET_ATTEMPTS = 5


@dataclass(frozen=True)
class StockLevel:
    sku: str
    location: str
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int | None = None

    def counted(self, on_hand: int) -> StockLevel:
        """This level after a stock count of `on_hand`: what orders reserved stays reserved."""
        if on_hand < self.reserved:
            raise OnHandBelowReserved(
                "on_hand cannot go below the units reserved by orders",
                sku=self.sku,
                location=self.location,
                on_hand=on_hand,
                reserved=self.reserved,
            )
        return replace(self, on_hand=on_hand, available=on_hand - self.reserved)

    def to_dict(self) -> dict:
        return {
            "location": self.location,
            "on_hand": self.on_hand,
            "reserved": self.reserved,
            "available": self.available,
        }


@dataclass(frozen=True)
class StockSheet:
    """One product and its stock at every location that has a stock item."""

    product: Product
    levels: tuple[StockLevel, ...]

    @property
    def available(self) -> int:
        return sum(level.available for level in self.levels)


class StockChanged(ConcurrentUpdate):
    """The stock item changed between our read and our conditional write."""


class StockRepository(Protocol):
    def read_for_count(self, sku: str, location: str) -> tuple[Product | None, Location | None, StockLevel | None]:
        """The product, the location and its current stock item, in one strongly consistent read."""
        ...

    def write_count(self, level: StockLevel, expected: StockLevel | None) -> None:
        """Store `level` if the item still holds `expected` (absent if None); else StockChanged."""
        ...

    def sheet(self, sku: str) -> StockSheet | None: ...


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
