"""Set-up and audits for flash-sale tests: a sale on the moto table, buyers' tokens, and the
books of a sale read straight from the table (units on shards, units in live orders, counts)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.data.items import FlashBuyerItem, FlashClaimItem, OrderItem
from shared.data.stores import flash_sales as flash_sale_store
from shared.flash_sales import purchase as flash_purchases
from shared.flash_sales.model import FlashSale, new_sale_id
from shared.kernel.clock import now_ms
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.pricing import PricingRules
from tests.functional.orders_support import PRODUCTS


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(now_ms() / 1000 + seconds, tz=UTC).isoformat()


def given_sale(
    quantity: int = 10,
    per_user_limit: int = 1,
    price_fen: int = 5000,
    peak: int = 2000,
    payment_window_s: int = 900,
    starts_in_s: float = -1,
    lasts_s: float = 3600,
) -> FlashSale:
    now = now_ms()
    planned = FlashSale.plan(
        new_sale_id(now),
        PRODUCTS["TEA-1"],
        price_fen=price_fen,
        quantity=quantity,
        per_user_limit=per_user_limit,
        starts_at_ms=now + int(starts_in_s * 1000),
        ends_at_ms=now + int((starts_in_s + lasts_s) * 1000),
        payment_window_s=payment_window_s,
        expected_peak_per_s=peak,
        now_ms=now,
    )
    flash_purchases.create_sale(planned, IdempotentRequest.of("flash-sales:test", None, {}), now)
    return planned


def buy(sale: FlashSale, customer: str, qty: int = 1, key: str | None = None, at: int | None = None) -> StoredResponse:
    request = IdempotentRequest.of(f"flash:{sale.sale_id}:{customer}", key, {"qty": qty})
    return flash_purchases.purchase(
        sale.sale_id,
        customer,
        flash_purchases.FlashOrder(qty),
        request,
        at or now_ms(),
        PricingRules(),
        lambda: [],
    )


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
    levels = flash_sale_store.levels(sale)
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
