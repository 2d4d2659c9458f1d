"""Binds every item class to the configured table through one shared connection.

One botocore client per process: cheaper cold starts, and one place where the fault harness and
the round-trip counter of `make bench` attach (`events()`).
"""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection

from shared.data.table import BaseItem


def _all_item_classes() -> list[type[BaseItem]]:
    found: list[type[BaseItem]] = [BaseItem]
    index = 0
    while index < len(found):
        found.extend(found[index].__subclasses__())
        index += 1
    return found


def bind(table_name: str, region: str, host: str | None = None) -> None:
    """Point every item class at `table_name`; safe to call again (tests bind fresh tables)."""
    # Import the item modules so that every subclass exists before connections are shared.
    import shared.data.items  # noqa: F401

    BaseItem.Meta.table_name = table_name
    BaseItem.Meta.region = region
    BaseItem.Meta.host = host
    for cls in _all_item_classes():
        cls._connection = None
    shared_connection = BaseItem._get_connection()
    for cls in _all_item_classes():
        cls._connection = shared_connection


def connection() -> Connection:
    """The low-level connection, for transactions and calls PynamoDB models do not express."""
    return BaseItem._get_connection().connection


def events() -> Any:
    """The botocore event system of the shared client (for the fault harness and counters)."""
    return connection().client.meta.events


def table_name() -> str:
    return BaseItem.Meta.table_name
