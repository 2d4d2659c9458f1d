"""What the stock use cases (shared.inventory.stock) need from a store, and the sheet it returns
(DynamoDB in `shared.data.stores.stock_levels`, fakes in unit tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.inventory.model import StockLevel


@dataclass(frozen=True)
class StockSheet:
    """One product and its stock at every location that has a stock item."""

    product: Product
    levels: tuple[StockLevel, ...]

    @property
    def available(self) -> int:
        return sum(level.available for level in self.levels)


class StockRepository(Protocol):
    def read_for_count(self, sku: str, location: str) -> tuple[Product | None, Location | None, StockLevel | None]:
        """The product, the location and its current stock item, in one strongly consistent read."""
        ...

    def write_count(self, level: StockLevel, expected: StockLevel | None) -> None:
        """Store `level` if the item still holds `expected` (absent if None); else StockChanged."""
        ...

    def sheet(self, sku: str) -> StockSheet | None: ...
