"""The flash-sale capability as its routes, its schedule and the order lifecycle use it: one
object per process (it keeps the sales it has read, the empty-shard hints and the contended
marks), built by `shared.platform.bootstrap.flash_sales` over the DynamoDB stores, and over
in-memory fakes in the unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.flash_sales.campaign import Campaigns, SaleBook
from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.give_back import GiveBack, ShardRelease, UnitReturns
from shared.flash_sales.model import ContendedSales, EmptyShardHints, FlashSale, NewFlashSale, SaleDefaults, Take
from shared.flash_sales.ports import ProductLookup, PurchaseParts, SaleStore, ShardStore, StoredResponses, StoreList
from shared.flash_sales.purchase import Purchases
from shared.flash_sales.reconcile import Reconciler
from shared.kernel.clock import Clock
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.addresses import NO_SAVED_ADDRESSES, SavedAddresses
from shared.ordering.placement import OrderPlacement
from shared.ordering.pricing import PricingRules


@dataclass(frozen=True)
class FlashSaleSettings:
    """docs/flash-sales.md, "Settings" (the FLASH_SALE_* variables and the orders' payment window)."""

    default_peak_per_s: int = 2_000
    payment_window_s: int = 900
    settle_s: float = 15.0
    empty_hint_s: float = 1.0
    contended_s: float = 10.0


class FlashSales:
    def __init__(
        self,
        *,
        sales: SaleStore,
        shards: ShardStore,
        parts: PurchaseParts,
        orders: OrderPlacement,
        replays: StoredResponses,
        products: ProductLookup,
        stores: StoreList,
        rules: PricingRules,
        settings: FlashSaleSettings,
        clock: Clock,
        addresses: SavedAddresses = NO_SAVED_ADDRESSES,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.book = SaleBook(sales)
        self.returns = UnitReturns(shards, clock)
        self.campaigns = Campaigns(
            self.book,
            sales,
            shards,
            products,
            SaleDefaults(payment_window_s=settings.payment_window_s, peak_per_s=settings.default_peak_per_s),
            clock,
        )
        self.purchases = Purchases(
            book=self.book,
            shards=shards,
            parts=parts,
            orders=orders,
            replays=replays,
            returns=self.returns,
            stores=stores,
            rules=rules,
            hints=EmptyShardHints(settings.empty_hint_s, clock),
            contention=ContendedSales(settings.contended_s, clock),
            clock=clock,
            addresses=addresses,
        )
        self.reconciler = Reconciler(sales, shards, clock, settings.settle_s)
        # ordering's FlashUnitReleaser, handed to the order lifecycle by bootstrap.
        self.releaser = ShardRelease(self.book, parts)

    @property
    def contention(self) -> ContendedSales:
        return self.purchases.contention

    @property
    def hints(self) -> EmptyShardHints:
        return self.purchases.hints

    def create(self, wanted: NewFlashSale, request: IdempotentRequest) -> StoredResponse:
        return self.campaigns.create(wanted, request)

    def cancel(self, sale_id: str) -> dict[str, Any]:
        return self.campaigns.cancel(sale_id)

    def view(self, sale_id: str) -> dict[str, Any]:
        return self.campaigns.view(sale_id)

    def sale(self, sale_id: str) -> FlashSale:
        return self.book.get(sale_id)

    def purchase(
        self, sale_id: str, customer_id: str, wanted: FlashOrder, request: IdempotentRequest
    ) -> StoredResponse:
        return self.purchases.purchase(sale_id, customer_id, wanted, request)

    def give_back(self, sale: FlashSale, takes: Sequence[Take]) -> GiveBack:
        return self.returns.give_back(sale, takes)

    def reconcile(self) -> int:
        return self.reconciler.run()
