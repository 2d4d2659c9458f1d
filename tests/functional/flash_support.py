"""Set-up and audits for flash-sale tests: the flash-sale service over the moto table (with the
clock and settings a test chooses), a sale, a buyer, and the books of a sale read straight from
the table (units on shards, units in live orders, counts)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.data.items import FlashBuyerItem, FlashClaimItem, OrderItem
from shared.data.stores.flash_sales import DynamoFlashSales, DynamoPurchaseParts, DynamoShards
from shared.flash_sales.commands import FlashOrder
from shared.flash_sales.model import FlashSale, NewFlashSale
from shared.flash_sales.service import FlashSales, FlashSaleSettings
from shared.kernel.clock import SYSTEM, Clock, now_ms
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType
from shared.ordering.pricing import PricingRules
from shared.platform import bootstrap


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(now_ms() / 1000 + seconds, tz=UTC).isoformat()


class NoStores:
    def list(self) -> list:
        return []


def flash_service(clock: Clock = SYSTEM, settings: FlashSaleSettings | None = None) -> FlashSales:
    """The flash-sale service on the bound moto table, as bootstrap builds it, with this clock and
    these settings, no stores and the default pricing rules."""
    return FlashSales(
        sales=DynamoFlashSales(),
        shards=DynamoShards(),
        parts=DynamoPurchaseParts(),
        orders=bootstrap.ordering(clock),
        replays=bootstrap.orders(),
        products=bootstrap.products(),
        stores=NoStores(),
        rules=PricingRules(),
        settings=settings or FlashSaleSettings(),
        clock=clock,
        addresses=bootstrap.saved_addresses(),
    )


def given_sale(
    flash: FlashSales,
    quantity: int = 10,
    per_user_limit: int = 1,
    price_fen: int = 5000,
    peak: int = 2000,
    payment_window_s: int = 900,
    starts_in_s: float = -1,
    lasts_s: float = 3600,
) -> FlashSale:
    """A sale of TEA-1 (the catalogue of orders_support must be seeded), created now by the
    service's clock."""
    now = flash.clock.now_ms()
    wanted = NewFlashSale(
        sku="TEA-1",
        price_fen=price_fen,
        quantity=quantity,
        per_user_limit=per_user_limit,
        starts_at_ms=now + int(starts_in_s * 1000),
        ends_at_ms=now + int((starts_in_s + lasts_s) * 1000),
        payment_window_s=payment_window_s,
        expected_peak_per_s=peak,
    )
    created = flash.create(wanted, IdempotentRequest.of("flash-sales:test", None, {}))
    return flash.sale(created.body["flash_sale_id"])


HOME_DELIVERY = Fulfilment(FulfilmentType.DELIVERY, address=Address("韩梅梅", "13700000000", "上海", "徐汇区 3 号"))


def buy(flash: FlashSales, sale: FlashSale, customer: str, qty: int = 1, key: str | None = None) -> StoredResponse:
    request = IdempotentRequest.of(f"flash:{sale.sale_id}:{customer}", key, {"qty": qty})
    return flash.purchase(sale.sale_id, customer, FlashOrder(qty, HOME_DELIVERY), request)


@dataclass(frozen=True)
class Books:
    quantity: int
    on_shards: int
    in_live_orders: int
    live_orders: int
    bought: dict[str, int]  # the buyers' counts
    held: dict[str, int]  # units in each buyer's live orders
    unclaimed: int  # units taken that no claim covers (in flight, or waiting for the reconciler)

    @property
    def oversold(self) -> int:
        return max(0, self.in_live_orders - self.quantity)

    @property
    def balanced(self) -> bool:
        """Every unit is on a shard or in a live order, exactly once."""
        return self.on_shards + self.in_live_orders == self.quantity and self.bought == self.held

    @property
    def over_limit(self) -> int:
        return sum(1 for units in self.held.values() if units > self.limit)

    limit: int = 1


def books(sale: FlashSale) -> Books:
    levels = DynamoShards().levels(sale)
    orders = [o for o in OrderItem.scan(OrderItem.flash_sale_id == sale.sale_id) if isinstance(o, OrderItem)]
    live = [o for o in orders if o.status != "CANCELLED"]
    held: Counter[str] = Counter()
    for order in live:
        held[order.customer_id] += sum(line["qty"] for line in order.body["lines"])
    prefix = f"FLASH#{sale.sale_id}#BUYER#"
    bought = {
        item.pk.removeprefix(prefix): int(item.bought)
        for item in FlashBuyerItem.scan(FlashBuyerItem.pk.startswith(prefix))
        if int(item.bought)
    }
    claimed = sum(
        int(c.qty) for c in FlashClaimItem.scan(FlashClaimItem.sale_id == sale.sale_id) if isinstance(c, FlashClaimItem)
    )
    taken = sum(level.taken for level in levels)
    return Books(
        quantity=sale.quantity,
        on_shards=sum(level.remaining for level in levels),
        in_live_orders=sum(held.values()),
        live_orders=len(live),
        bought=bought,
        held=dict(held),
        unclaimed=taken - claimed,
        limit=sale.per_user_limit,
    )
