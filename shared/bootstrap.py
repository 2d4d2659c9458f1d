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
