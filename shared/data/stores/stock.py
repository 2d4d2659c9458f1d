"""Stock movements as parts of a transaction. Each keeps available = on_hand - reserved >= 0 under
a condition, so concurrent writers can never take the same unit twice.

Lifecycle (lock on order, deduct on pay): `reserve` when an order is placed; `commit` when it is
paid (the units leave on_hand); `release` when it is cancelled or expires; `restock` when refunded
units come back to the shelf.
"""

from __future__ import annotations

from shared.data.items import StockItem
from shared.data.transactions import Transaction


def label(sku: str, location: str) -> str:
    return f"stock:{sku}:{location}"


def sku_of(stock_label: str) -> str:
    return stock_label.split(":")[1]


def reserve(tx: Transaction, sku: str, location: str, qty: int) -> None:
    tx.update(
        StockItem,
        StockItem.key(sku, location),
        [StockItem.available.add(-qty), StockItem.reserved.add(qty)],
        label(sku, location),
        condition=StockItem.pk.exists() & (StockItem.available >= qty),
    )


def commit(tx: Transaction, sku: str, location: str, qty: int) -> None:
    tx.update(
        StockItem,
        StockItem.key(sku, location),
        [StockItem.on_hand.add(-qty), StockItem.reserved.add(-qty)],
        label(sku, location),
        condition=StockItem.reserved >= qty,
    )


def release(tx: Transaction, sku: str, location: str, qty: int) -> None:
    tx.update(
        StockItem,
        StockItem.key(sku, location),
        [StockItem.available.add(qty), StockItem.reserved.add(-qty)],
        label(sku, location),
        condition=StockItem.reserved >= qty,
    )


def restock(tx: Transaction, sku: str, location: str, qty: int) -> None:
    tx.update(
        StockItem,
        StockItem.key(sku, location),
        [StockItem.available.add(qty), StockItem.on_hand.add(qty)],
        label(sku, location),
        condition=StockItem.pk.exists(),
    )
