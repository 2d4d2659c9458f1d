"""Creating a flash sale and showing it; the sales' settings as one process keeps them."""

from __future__ import annotations

from typing import Any

from shared.flash_sales.model import FlashSale, NewFlashSale, SaleDefaults, new_sale_id
from shared.flash_sales.ports import ProductLookup, SaleStore, ShardStore
from shared.kernel.clock import Clock, iso
from shared.kernel.errors import NotFound, UnknownSku
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.platform.observability import count

SALES_KEPT = 512


class SaleBook:
    """The sales' settings, read once per process: they never change after creation, so a
    purchase reads none (docs/flash-sales.md, "The purchase"). Bounded; thread-safe enough (a
    race reads a sale twice)."""

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

    def view(self, sale_id: str) -> dict[str, Any]:
        """What a storefront shows: `remaining` is the sum of the shards, read consistently."""
        found = self._book.get(sale_id)
        remaining = sum(level.remaining for level in self._shards.levels(found))
        return {
            "flash_sale_id": found.sale_id,
            **describe(found),
            "remaining": remaining,
            "status": found.status(self._clock.now_ms(), remaining).value,
        }
