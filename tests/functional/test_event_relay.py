"""The relay on moto: the table's real stream, read by the local event runner (as Lambda would,
from the template's mapping), into the real consumer queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.runner import EventRunner
from shared.data.items import EventItem, StockItem
from shared.data.stores import stock as stock_store
from shared.data.transactions import Transaction
from shared.kernel.events import EventType
from shared.platform import bootstrap
from tests.functional.events_support import Queue, emit, order_event, stream_records


@pytest.fixture
def runner(table: dict) -> Iterator[EventRunner]:
    yield EventRunner(quiet=True)


@pytest.fixture
def notifications(table: dict) -> Queue:
    return Queue.of(table, "NotificationsQueue")


def put_stock(sku: str, location: str, on_hand: int, threshold: int) -> None:
    pk, sk = StockItem.key(sku, location)
    StockItem(
        pk,
        sk,
        sku=sku,
        location=location,
        on_hand=on_hand,
        reserved=0,
        available=on_hand,
        low_stock_threshold=threshold,
    ).save()


def move(kind: str, sku: str, location: str, qty: int) -> None:
    tx = Transaction()
    getattr(stock_store, kind)(tx, sku, location, qty)
    tx.commit()


def low_stock_items() -> list[EventItem]:
    return [item for item in EventItem.scan() if isinstance(item, EventItem) and item.event_type == "LowStock"]


def test_the_runner_maps_sources_to_functions_from_the_template(runner: EventRunner):
    # Then the mappings of infra/template.yaml drive app.py's functions: the stream the relay,
    # the notifications queue its consumer, the commission queue the ledger
    mapped = {m.source: (m.function.name, m.batch_size) for m in runner.mappings}
    assert mapped == {
        "stream": ("event_relay", 100),
        "NotificationsQueue": ("notifications_consumer", 10),
        "CommissionQueue": ("commission_consumer", 10),
        "SettlementQueue": ("settlement_worker", 1),
        "ReportingQueue": ("reporting_consumer", 10),
        "PaymentsQueue": ("payments_consumer", 2),
        "MembershipQueue": ("membership_consumer", 10),
    }


def test_an_event_reaches_its_consumers_queue_once(runner: EventRunner, notifications: Queue):
    # Given an OrderPaid written through the outbox
    event = emit(order_event(EventType.ORDER_PAID))
    # When the runner relays the stream
    runner.drain(sources=["stream"])
    # Then the notifications queue holds it once, exactly as written, labelled with its type
    [message] = notifications.receive()
    assert message["Body"] == EventItem.get(*EventItem.key(event.event_id)).body
    assert message["MessageAttributes"]["event_type"]["StringValue"] == "OrderPaid"
    assert message["MessageAttributes"]["event_id"]["StringValue"] == event.event_id


def test_an_event_nobody_subscribes_to_is_not_forwarded(runner: EventRunner, notifications: Queue):
    # Given an OrderCompleted (no consumer listens to it)
    emit(order_event(EventType.ORDER_COMPLETED))
    # When relayed
    runner.drain(sources=["stream"])
    # Then no queue receives it
    assert notifications.receive() == []


def test_low_stock_is_announced_once_per_crossing(runner: EventRunner, notifications: Queue):
    # Given 10 units with a threshold of 5
    put_stock("TEA-001", "S001", on_hand=10, threshold=5)
    # When orders take it to 7, 4 (crossing), 2; a release brings it back to 6; an order to 4 (crossing)
    for kind, qty in [("reserve", 3), ("reserve", 3), ("reserve", 2), ("release", 4), ("reserve", 2)]:
        move(kind, "TEA-001", "S001", qty)
    runner.drain(sources=["stream"])
    # Then exactly two LowStock events reach the queue, one per crossing
    lows = [e for e in notifications.events() if e["type"] == "LowStock"]
    assert [e["payload"]["available"] for e in sorted(lows, key=lambda e: e["occurred_at"])] == [4, 4]
    assert {e["aggregate_id"] for e in lows} == {"TEA-001@S001"}
    assert len(low_stock_items()) == 2


def test_a_redelivered_stream_record_derives_no_second_low_stock(table: dict):
    # Given a crossing in the stream
    put_stock("TEA-002", "WH", on_hand=6, threshold=5)
    move("reserve", "TEA-002", "WH", 2)
    records = stream_records()
    relay = bootstrap.event_relay()
    # When the relay gets the same records twice (Lambda redelivers after a failure)
    assert relay.relay(records) == {"batchItemFailures": []}
    assert relay.relay(records) == {"batchItemFailures": []}
    # Then the LowStock event exists once
    [item] = low_stock_items()
    assert item.aggregate_id == "TEA-002@WH"
