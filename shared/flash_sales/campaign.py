"""Creating a flash sale and showing it; the sales' settings as one process keeps them."""

from __future__ import annotations

from typing import Any

from shared.flash_sales.model import FlashSale, NewFlashSale, SaleDefaults, SaleStatus, new_sale_id
from shared.flash_sales.ports import ProductLookup, SaleStore, ShardStore
from shared.kernel.clock import Clock, iso
from shared.kernel.errors import Ended, NotFound, UnknownSku
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.platform.observability import count

SALES_KEPT = 512


class SaleBook:
    """The sales' settings, read once per process: they never change after creation but for a
    cancellation, which every shard also carries (a purchase's decrement is refused on a closed
    shard), so a purchase reads none (docs/flash-sales.md, "The purchase", "Cancelling a sale").
    Bounded; thread-safe enough (a race reads a sale twice)."""

    def __init__(self, sales: SaleStore, kept: int = SALES_KEPT) -> None:
        self._store = sales
        self._kept = kept
        self._sales: dict[str, FlashSale] = {}

    def get(self, sale_id: str) -> FlashSale:
        known = self._sales.get(sale_id)
        if known is not None:
            return known
        found = self._store.get(sale_id)
        if found is None:
            raise NotFound("no such flash sale", flash_sale_id=sale_id)
        if len(self._sales) >= self._kept:
            self._sales.clear()
        self._sales[sale_id] = found
        return found

    def forget(self, sale_id: str) -> None:
        """The sale changed (it was cancelled): the next `get` reads it again."""
        self._sales.pop(sale_id, None)


def describe(sale: FlashSale) -> dict[str, Any]:
    return {
        "sku": sale.sku,
        "price_fen": sale.price_fen,
        "quantity": sale.quantity,
        "per_user_limit": sale.per_user_limit,
        "starts_at": iso(sale.starts_at_ms),
        "ends_at": iso(sale.ends_at_ms),
        "payment_window_s": sale.payment_window_s,
        "shards": sale.shards,
        **({"cancelled_at": iso(sale.cancelled_at_ms)} if sale.cancelled_at_ms is not None else {}),
    }


class Campaigns:
    def __init__(
        self,
        book: SaleBook,
        sales: SaleStore,
        shards: ShardStore,
        products: ProductLookup,
        defaults: SaleDefaults,
        clock: Clock,
    ) -> None:
        self._book = book
        self._sales = sales
        self._shards = shards
        self._products = products
        self._defaults = defaults
        self._clock = clock

    def create(self, wanted: NewFlashSale, request: IdempotentRequest) -> StoredResponse:
        """201 and the sale, created with its N shards and the reconciler's state in one write;
        UnknownSku, or ValidationFailed naming every problem (nothing written). A replay of the
        same Idempotency-Key returns the first answer and creates nothing."""
        product = self._products.get(wanted.sku)
        if product is None:
            raise UnknownSku("no such product", sku=wanted.sku)
        now = self._clock.now_ms()
        planned = FlashSale.plan(new_sale_id(now), product, wanted, self._defaults, now)
        response = StoredResponse(201, {"flash_sale_id": planned.sale_id, **describe(planned)})
        stored = self._sales.create(planned, request, response, now)
        if stored is response:
            count("FlashSalesCreated")
        return stored

    def cancel(self, sale_id: str) -> dict[str, Any]:
        """The merchant stops the sale now: purchases are refused from then on (SaleCancelled) and
        the reconciler gives what its shards hold back to the location as after an end; orders
        placed stay as they are. The same answer however often it is asked; NotFound; Ended (409)
        for a sale that ended first."""
        found = self._sales.get(sale_id)
        if found is None:
            raise NotFound("no such flash sale", flash_sale_id=sale_id)
        if found.cancelled_at_ms is None:
            now = self._clock.now_ms()
            if now >= found.ends_at_ms:
                raise Ended("the flash sale has ended", flash_sale_id=sale_id)
            found = self._sales.cancel(found, now)
            count("FlashSalesCancelled")
        self._book.forget(sale_id)
        return {"flash_sale_id": found.sale_id, **describe(found), "status": SaleStatus.CANCELLED.value}

    def view(self, sale_id: str) -> dict[str, Any]:
        """What a storefront shows: `remaining` is the sum of the shards, read consistently."""
        found = self._book.get(sale_id)
        levels = self._shards.levels(found)
        if found.cancelled_at_ms is None and any(level.closed for level in levels):
            self._book.forget(sale_id)  # cancelled since this process read it
            found = self._book.get(sale_id)
        remaining = sum(level.remaining for level in levels)
        return {
            "flash_sale_id": found.sale_id,
            **describe(found),
            "remaining": remaining,
            "status": found.status(self._clock.now_ms(), remaining).value,
        }
