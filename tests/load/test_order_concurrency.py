"""Many concurrent clients against the serialised local server: no unit is sold twice and one
Idempotency-Key makes one order, whatever the interleaving."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.local.faults import FaultInjector
from shared.data.items import OrderItem
from shared.kernel.errors import OutOfStock, TemporarilyUnavailable
from shared.platform import bootstrap
from tests.functional.events_support import announced
from tests.functional.orders_support import given_catalogue, placement, request, stock_of

pytestmark = pytest.mark.load


def _orders() -> list[OrderItem]:
    return [item for item in OrderItem.scan() if isinstance(item, OrderItem)]


def _placed_events() -> int:
    """OrderPlaced events the stream announces (derived from the orders' INSERTs), by distinct id."""
    return len({e["event_id"] for e in announced() if e["type"] == "OrderPlaced"})


def race_for_stock(customers: int, qty_each: int = 1, attempts: int = 10) -> dict[str, int]:
    """Each customer sends one request and, on a retryable 503, sends it again with the same key,
    as a storefront does, until it gets a definite answer."""

    placing = bootstrap.ordering()

    def buy(i: int) -> str:
        body = {"lines": {"TEA-1": qty_each}, "i": i}
        for _ in range(attempts):
            try:
                placing.place(placement({"TEA-1": qty_each}), f"c-{i}", request(f"c-{i}", f"k-{i}", body))
                return "ok"
            except OutOfStock:
                return "out"
            except TemporarilyUnavailable:
                continue
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


def replay_one_key(clients: int) -> set[str]:
    body = {"lines": {"TEA-1": 2}}
    placing = bootstrap.ordering()

    def send(_: int) -> str:
        for _attempt in range(10):
            try:
                stored = placing.place(placement({"TEA-1": 2}), "alice", request("alice", "same-key", body))
                return stored.body["order_id"]
            except TemporarilyUnavailable:
                continue
        return "no answer"

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return set(pool.map(send, range(clients)))


def test_twenty_concurrent_replays_of_one_key_make_one_order(table):
    given_catalogue({("TEA-1", "WH"): 100})
    body = {"lines": {"TEA-1": 2}}
    placing = bootstrap.ordering()

    def send(_: int) -> str:
        stored = placing.place(placement({"TEA-1": 2}), "alice", request("alice", "same-key", body))
        return stored.body["order_id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        order_ids = set(pool.map(send, range(20)))
    assert len(order_ids) == 1
    assert len(_orders()) == 1
    assert stock_of("TEA-1") == (100, 2, 98)
    assert _placed_events() == 1


def test_with_ten_percent_faults_the_race_still_makes_exactly_ten_orders(table):
    # Given 10 units, and throttling, conflicts and timeouts (sent or applied) on 10% of calls
    given_catalogue({("TEA-1", "WH"): 10})
    faults = FaultInjector(rate=0.1, seed=11)
    # When 50 customers race, retrying 503s with their key
    with faults.attached():
        outcome = race_for_stock(50)
    # Then every customer has a definite answer, 10 orders exist, no unit or event is lost or doubled
    assert faults.total > 0, faults.report()
    assert outcome == {"ok": 10, "out": 40, "retry": 0}
    assert len(_orders()) == 10
    assert stock_of("TEA-1") == (10, 10, 0)
    assert _placed_events() == 10


def test_with_ten_percent_faults_replays_of_one_key_make_one_order(table):
    given_catalogue({("TEA-1", "WH"): 100})
    faults = FaultInjector(rate=0.1, seed=5)
    with faults.attached():
        order_ids = replay_one_key(20)
    assert faults.total > 0, faults.report()
    assert len(order_ids) == 1 and "no answer" not in order_ids
    assert len(_orders()) == 1
    assert stock_of("TEA-1") == (100, 2, 98)
    assert _placed_events() == 1
