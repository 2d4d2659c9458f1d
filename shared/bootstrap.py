"""Cold-start wiring: settings validated once, the table bound once, real repositories handed out.
Tests and the local runner call `reset()` after changing the environment."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import Settings, reset_settings, settings


@lru_cache(maxsize=1)
def ready() -> Settings:
    from shared.data.connection import bind

    current = settings()
    bind(current.table_name, current.region, current.dynamodb_endpoint)
    return current


def reset() -> None:
    reset_settings()
    ready.cache_clear()


def products():  # type: ignore[no-untyped-def]
    from shared.data.catalog_store import DynamoProducts

    ready()
    return DynamoProducts()


def orders():  # type: ignore[no-untyped-def]
    from shared.data import order_store

    ready()
    return order_store


def payment_provider():  # type: ignore[no-untyped-def]
    from shared.payments import HmacWebhookProvider

    return HmacWebhookProvider(ready().payment_webhook_secret.get_secret_value())


def pricing_rules():  # type: ignore[no-untyped-def]
    from shared.pricing import PricingRules

    s = settings()
    return PricingRules(
        free_shipping_threshold_fen=s.free_shipping_threshold_fen,
        shipping_fen={
            "delivery": s.shipping_delivery_fen,
            "ship_from_store": s.shipping_ship_from_store_fen,
            "same_city": s.shipping_same_city_fen,
        },
        promotion_id=s.promotion_id,
        promotion_threshold_fen=s.promotion_threshold_fen,
        promotion_off_fen=s.promotion_off_fen,
    )


def locations():  # type: ignore[no-untyped-def]
    from shared.data.locations_store import DynamoLocations

    ready()
    return DynamoLocations()


def stock_levels():  # type: ignore[no-untyped-def]
    from shared.data.stock_levels_store import DynamoStockLevels

    ready()
    return DynamoStockLevels()


def checkout():  # type: ignore[no-untyped-def]
    from shared.checkout import Checkout
    from shared.data.checkout_reads import load_for_checkout

    current = ready()
    return Checkout(
        read=load_for_checkout,
        rules=pricing_rules(),
        payment_window_s=current.order_payment_window_s,
        same_city_radius_km=current.same_city_radius_km,
    )
