"""Set-up for order tests: products and stock on the moto table, and placements priced by the
real pricing module (no HTTP), so lifecycle tests do not depend on the quote route."""

from __future__ import annotations

import time

from shared.catalog import model as catalog
from shared.catalog.model import Product
from shared.data.items import StockItem
from shared.kernel.idempotency import IdempotentRequest
from shared.ordering.placement import Placement
from shared.ordering.pricing import CartLine, PricingRules, price_cart
from shared.platform import bootstrap
from tests.fakes.promotions import full_300_off_30
from tests.functional.events_support import announced

PRODUCTS = {
    "TEA-1": Product(sku="TEA-1", name="龙井", price_fen=10000),
    "CUP-1": Product(sku="CUP-1", name="杯子", price_fen=3333),
}


def given_catalogue(stock: dict[tuple[str, str], int]) -> None:
    for product in PRODUCTS.values():
        catalog.upsert_product(product, bootstrap.products(), int(time.time() * 1000))
    for (sku, location), on_hand in stock.items():
        pk, sk = StockItem.key(sku, location)
        StockItem(pk, sk, sku=sku, location=location, on_hand=on_hand, reserved=0, available=on_hand).save()


def stock_of(sku: str, location: str = "WH") -> tuple[int, int, int]:
    item = StockItem.get(*StockItem.key(sku, location), consistent_read=True)
    return int(item.on_hand), int(item.reserved), int(item.available)


def placement(
    lines: dict[str, int], fulfilment: dict | None = None, location: str = "WH", window_s: int = 900
) -> Placement:
    fulfilment = fulfilment or {"type": "delivery"}
    quote = price_cart(
        [CartLine(sku, qty) for sku, qty in lines.items()],
        PRODUCTS,
        is_member=False,
        fulfilment_type=fulfilment["type"],
        rules=PricingRules(),
        promotions=(full_300_off_30(),),  # the standing promotion every test table has
    )
    return Placement(quote=quote, location=location, fulfilment=fulfilment, payment_window_s=window_s)


def request(customer: str, key: str | None, body: dict) -> IdempotentRequest:
    return IdempotentRequest.of(f"orders:{customer}", key, body)


def events_of(order_id: str) -> list[str]:
    """The events announced for the order: outbox items and those the relay derives from the
    order's own changes, read from the table's stream as the relay reads it."""
    return sorted(event["type"] for event in announced() if event["aggregate_id"] == order_id)
