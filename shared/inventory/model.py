"""Stock per SKU and location (pure): a level and what a stock count does to it.

Invariant: available = on_hand - reserved >= 0 at every location. An admin count below what
orders already hold is refused (`OnHandBelowReserved`, 409): those units are promised. Orders move
stock through the transaction parts of `shared.data.stores.stock`; `shared.inventory.stock` sets
counts and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.kernel.errors import ConcurrentUpdate, OnHandBelowReserved


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


class StockChanged(ConcurrentUpdate):
    """The stock item changed between our read and our conditional write."""
