"""What the flash-sale use cases need from the outside (docs/flash-sales.md).

Implemented for DynamoDB by `shared.data.stores.flash_sales`, in memory by `tests/fakes/flash_sales.py`;
`tests/contract/test_flash_sale_ports.py` runs the same tests against both.

- `SaleStore`: the sale's immutable settings, created once with its shards.
- `ShardStore`: the hot shards outside any order: the contended path's single-item decrement,
  consistent reads of every shard, giving units back (VOID claims and the increment in ONE write,
  so at most once), and the reconciler's claims and marks.
- `PurchaseParts`: the flash parts of an order's unit of work (ordering's `OrderingUnitOfWork`),
  so that they apply with the order or not at all. A part that is refused raises, at the unit of
  work's commit, the error named on it; nothing of the transaction applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from shared.flash_sales.model import FlashSale, ListedProduct, ReconcileMarks, ShardLevel, Take, UnitClaim
from shared.inventory.locations import Location
from shared.kernel.errors import TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.ports import OrderingUnitOfWork


class SaleStore(Protocol):
    def create(
        self, sale: FlashSale, request: IdempotentRequest, response: StoredResponse, now_ms: int
    ) -> StoredResponse:
        """The sale, its shards (`split` of its quantity), the reconciler's marks and the hold of
        its quantity at `sale.location` (available down, reserved up) in one write, with the
        idempotency record of `request`: `response`, or the first response stored under the key
        (nothing created); IdempotencyKeyReused for the key with another body; OutOfStock (sku,
        location) if the location has fewer available than the quantity (nothing created)."""
        ...

    def get(self, sale_id: str) -> FlashSale | None:
        """The sale as created (a consistent read), or None."""
        ...

    def cancel(self, sale: FlashSale, now_ms: int) -> FlashSale:
        """The sale cancelled at `now_ms` and every one of its shards closed (no purchase takes from a
        closed shard: it raises SaleCancelled) in ONE write, conditional on the sale being neither
        cancelled nor ended: the cancelled sale; the sale as first cancelled if another request
        cancelled it first (nothing written); Ended if it had ended (nothing written)."""
        ...

    def ending_after(self, after_ms: int) -> Iterable[FlashSale]:
        """Sales that end at or after `after_ms` (live, future and recently ended ones), by end time."""
        ...


class ShardStore(Protocol):
    def take(self, sale_id: str, shard: int, qty: int) -> Take:
        """One conditional decrement of one shard (never a transaction): the units it took, numbered
        by the shard's `taken`. SaleCancelled if the shard is closed; ShardShort(remaining) if the
        shard has fewer than qty; TemporarilyUnavailable if it is busy (throttled, or held by a
        transaction)."""
        ...

    def levels(self, sale: FlashSale) -> list[ShardLevel]:
        """Every shard of the sale, read consistently, in shard order."""
        ...

    def give_back(self, sale_id: str, takes: Sequence[Take], now_ms: int) -> None:
        """A VOID claim of every take and the shards' increments in ONE write. UnitsClaimed (naming
        the takes already claimed and how) if any take was claimed before: then nothing applied.
        TemporarilyUnavailable: nothing applied."""
        ...

    def settle(self, sale: FlashSale, shard: int, qty: int) -> bool:
        """After the sale's end: the shard's `qty` remaining units go back to the sale's location
        (reserved down, available up) with the shard's remaining down to 0, in ONE write,
        conditional on the shard still having exactly `qty`, so a unit goes back once. False if the
        shard changed (nothing written); TemporarilyUnavailable: nothing written."""
        ...

    def claims_between(self, sale_id: str, shard: int, after_unit: int, through_unit: int) -> list[UnitClaim]:
        """Claims of the shard whose first unit is in (after_unit, through_unit], in unit order."""
        ...

    def marks(self, sale_id: str) -> ReconcileMarks:
        """How far the reconciler has judged each shard of the sale."""
        ...

    def save_marks(self, sale_id: str, marks: ReconcileMarks) -> bool:
        """Store `marks.shards` if the stored version is still `marks.version`; False (nothing
        written) if another reconciler moved them first."""
        ...


class PurchaseParts(Protocol):
    def take_in_order(self, uow: OrderingUnitOfWork, sale_id: str, shard: int, qty: int) -> None:
        """The shard's decrement as a part of the order's transaction (the uncontended path).
        At commit: SaleCancelled if the shard is closed; ShardShort(remaining) if it had fewer than qty."""
        ...

    def count_purchase(self, uow: OrderingUnitOfWork, sale: FlashSale, customer_id: str, qty: int) -> None:
        """The buyer's count goes up by qty. At commit: LimitReached if that passes the limit."""
        ...

    def claim(self, uow: OrderingUnitOfWork, sale_id: str, taken: Take, order_id: str, now_ms: int) -> None:
        """The order claims the units of `taken` (the contended path). At commit: UnitsClaimed if
        they were claimed already (given back by the reconciler: the order cannot be written)."""
        ...

    def release(self, uow: OrderingUnitOfWork, sale_id: str, shard: int, customer_id: str, qty: int) -> None:
        """An unpaid order's units go back to `shard` and its buyer's count goes down by qty, in
        the transaction that cancels the order."""
        ...

    def busy_on_shard(self, busy: TemporarilyUnavailable, shard: int) -> bool:
        """Was the order's transaction refused because `shard` was held by another transaction
        or throttled (the sale is contended), rather than for another item or a timeout?"""
        ...


class StoredResponses(Protocol):
    def replay_placed(self, request: IdempotentRequest) -> StoredResponse | None:
        """The response stored under the request's key (same body), or None; IdempotencyKeyReused
        for the key with another body. The order placed under the key carries it."""
        ...


class StoreList(Protocol):
    def list(self) -> Sequence[Location]:
        """Every location (the warehouse and the stores)."""
        ...


class ProductLookup(Protocol):
    def get(self, sku: str) -> ListedProduct | None:
        """The catalogue's product, or None."""
        ...
