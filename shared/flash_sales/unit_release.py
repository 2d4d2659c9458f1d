"""Who gives a flash-sale order's units back when it is cancelled or expires.

A flash order's units came from the sale's shards, not from a stock item, so `order_lifecycle`
hands such orders to the releaser the flash-sale module registers. This registry is its own light
module (no data layer) so the flash-sale blueprint can register at the cold import of app.py
without loading botocore; whichever function cancels or expires orders has then registered it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.data.transactions import Transaction
    from shared.ordering.model import Order

UnitReleaser = Callable[["Transaction", "Order"], None]
_flash_releaser: list[UnitReleaser] = []


def register_flash_releaser(releaser: UnitReleaser) -> None:
    _flash_releaser[:] = [releaser]


def flash_releaser() -> UnitReleaser:
    """The registered releaser. Never a silent fallback to the stock item: that would release
    units the stock item never reserved."""
    if not _flash_releaser:
        raise RuntimeError("no flash-sale releaser registered (import shared.flash_sales.model; app.py does)")
    return _flash_releaser[0]
