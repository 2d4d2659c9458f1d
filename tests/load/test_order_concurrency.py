"""Many concurrent clients against the serialised local server: no unit is sold twice and one
Idempotency-Key makes one order, whatever the interleaving."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import ordering
from shared.data.items import EventItem, OrderItem
from shared.errors import OutOfStock, TemporarilyUnavailable
from shared.orders import now_ms
from tests.functional.orders_support import given_catalogue, placement, request, stock_of

pytestmark = pytest.mark.load


def _orders() -> list[OrderItem]:
    return [item for item in OrderItem.scan() if isinstance(item, OrderItem)]


def _placed_events() -> int:
    return sum(1 for item in EventItem.scan() if item.event_type == "OrderPlaced")


def race_for_stock(customers: int, qty_each: int = 1) -> dict[str, int]:
    def buy(i: int) -> str:
        body = {"lines": {"TEA-1": qty_each}, "i": i}
        try:
            ordering.place(placement({"TEA-1": qty_each}), f"c-{i}", request(f"c-{i}", f"k-{i}", body), now_ms())
            return "ok"
        except OutOfStock:
            return "out"
        except TemporarilyUnavailable:
            return "retry"

    with ThreadPoolExecutor(max_workers=customers) as pool:
        results = list(pool.map(buy, range(customers)))
    return {kind: results.count(kind) for kind in ("ok", "out", "retry")}


def test_fifty_customers_racing_for_the_last_ten_units_make_ten_orders(table):
    # Given 10 units
    given_catalogue({("TEA-1", "WH"): 10})
    # When 50 customers buy one each at the same moment
    outcome = race_for_stock(50)
    # Then exactly 10 orders exist, 10 units are held, and 10 OrderPlaced events were written
    assert outcome["ok"] == 10 and outcome["out"] == 40
    assert len(_orders()) == 10
    assert stock_of("TEA-1") == (10, 10, 0)
    assert _placed_events() == 10


def test_twenty_concurrent_replays_of_one_key_make_one_order(table):
    given_catalogue({("TEA-1", "WH"): 100})
    body = {"lines": {"TEA-1": 2}}

    def send(_: int) -> str:
        stored = ordering.place(placement({"TEA-1": 2}), "alice", request("alice", "same-key", body), now_ms())
        return stored.body["order_id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        order_ids = set(pool.map(send, range(20)))
    assert len(order_ids) == 1
    assert len(_orders()) == 1
    assert stock_of("TEA-1") == (100, 2, 98)
    assert _placed_events() == 1
