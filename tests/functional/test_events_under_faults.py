"""The whole event path (outbox -> stream -> relay -> queue -> consumer) with DynamoDB and SQS
failing as they do in AWS: every event takes effect exactly once, nothing is lost, and nothing
lands in the dead-letter queue."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from infra.local.faults import FaultInjector
from infra.local.runner import EventRunner
from shared.data import queues
from shared.data.items import ConsumedItem, StockItem
from shared.data.queues import ConsumerQueue
from shared.data.stores import stock as stock_store
from shared.data.stores.consumer_marks import DynamoMarks
from shared.data.transactions import Transaction, translated
from shared.kernel.clock import now_ms
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.consumers import RetryPolicy, Runtime
from tests.functional.events_support import Queue, emit, order_event


class EffectOnce:
    """A consumer whose effect is itself idempotent by event id, as the framework requires: a
    conditional put of a record of the effect (the notifications consumer keys its messages so)."""

    name = "effects"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def handle(self, event: DomainEvent) -> None:
        self.calls.append(event.event_id)
        pk, sk = ConsumedItem.key("effect-record", event.event_id)
        record = ConsumedItem(
            pk, sk, consumer="effect-record", event_id=event.event_id, state="DONE", token="-", lease_until=0
        )
        with translated():
            try:
                record.save(condition=ConsumedItem.pk.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        raise AssertionError(f"{event.event_id} was dead-lettered: {reason}")


def effects() -> set[str]:
    return {
        item.event_id
        for item in ConsumedItem.scan(ConsumedItem.consumer == "effect-record")
        if isinstance(item, ConsumedItem)
    }


def test_every_event_takes_effect_once_under_dynamodb_and_sqs_faults(table: dict):
    # Given 24 order events and one low-stock crossing in the table's stream
    events = [emit(order_event(EventType.ORDER_PAID, order_id=f"o-{n}")) for n in range(24)]
    pk, sk = StockItem.key("TEA-001", "WH")
    StockItem(pk, sk, sku="TEA-001", location="WH", on_hand=6, reserved=0, available=6, low_stock_threshold=5).save()
    tx = Transaction()
    stock_store.reserve(tx, "TEA-001", "WH", 3)
    tx.commit()
    queue, dead = Queue.of(table, "NotificationsQueue"), Queue.of(table, "NotificationsDLQ")
    consumer = EffectOnce()
    # Backoff of about a second and a two-second lease: a delivery that finds a live claim comes
    # back after the lease instead of exhausting its receives.
    runtime = Runtime(DynamoMarks(), ConsumerQueue(), RetryPolicy(base_s=1, lease_s=2), now_ms)
    dynamodb_faults = FaultInjector(rate=0.1, seed=5)  # every kind, including responses lost after applying
    sqs_faults = FaultInjector(rate=0.5, seed=6)  # few SQS calls: fail half of them
    # When the relay and the consumer run under faults
    with dynamodb_faults.attached(), sqs_faults.attached(queues.client()):
        EventRunner(quiet=True).drain(timeout_s=60, quiet_s=1.0, sources=["stream"])
        queue.deliver_until_settled(consumer, runtime, timeout_s=120)
    print(dynamodb_faults.report(), sqs_faults.report(), sep="\n")
    # Then faults were really injected on both services
    assert dynamodb_faults.total > 0 and sqs_faults.total > 0, dynamodb_faults.report() + sqs_faults.report()
    # And every event (the 24 and the derived LowStock) took effect exactly once, none dead-lettered
    handled = effects()
    assert {e.event_id for e in events} <= handled
    assert len(handled) == 25
    assert dead.receive() == []
    marks = [m for m in ConsumedItem.scan(ConsumedItem.consumer == "effects") if isinstance(m, ConsumedItem)]
    assert len(marks) == 25 and {m.state for m in marks} == {"DONE"}
