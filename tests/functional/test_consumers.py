"""The consumer framework on moto: DynamoDB marks, the real queue and its dead-letter queue
(maxReceiveCount 5 from infra/template.yaml), driven as Lambda's SQS poller drives a function."""

from __future__ import annotations

import json
import time

import pytest

from infra.local.faults import FaultInjector, Kind
from infra.local.runner import EventRunner
from shared.data.items import ConsumedItem
from shared.data.stores.consumer_marks import DynamoMarks
from shared.kernel.clock import now_ms
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.ports import ClaimOutcome
from tests.functional.events_support import Queue, emit, fast_runtime, order_event


class RecordingConsumer:
    name = "recording"

    def __init__(self, fail_times: dict[str, int] | None = None, always_fail: set[str] | None = None) -> None:
        self.handled: list[str] = []
        self.attempts: dict[str, int] = {}
        self.fail_times = fail_times or {}
        self.always_fail = always_fail or set()
        self.given_up: list[tuple[str, str]] = []

    def handle(self, event: DomainEvent) -> None:
        self.attempts[event.event_id] = self.attempts.get(event.event_id, 0) + 1
        if event.event_id in self.always_fail or self.attempts[event.event_id] <= self.fail_times.get(
            event.event_id, 0
        ):
            raise TimeoutError(f"provider timed out on {event.type}")
        self.handled.append(event.event_id)

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        self.given_up.append((event.event_id, reason))


@pytest.fixture
def queue(table: dict) -> Queue:
    return Queue.of(table, "NotificationsQueue")


@pytest.fixture
def dead_letters(table: dict) -> Queue:
    return Queue.of(table, "NotificationsDLQ")


def relayed(*events: DomainEvent) -> list[DomainEvent]:
    """Emit through the outbox and let the relay put them on the queue."""
    for event in events:
        emit(event)
    EventRunner(quiet=True).drain(sources=["stream"])
    return list(events)


def test_redelivered_events_take_effect_once(queue: Queue):
    # Given an event on the queue, and the same message delivered twice more (at-least-once)
    [event] = relayed(order_event(EventType.ORDER_PAID))
    for _ in range(2):
        queue.send(json.dumps(event.to_message()))
    consumer = RecordingConsumer()
    # When every copy is consumed
    queue.deliver_all(consumer, fast_runtime())
    # Then the effect happened once and the mark says DONE
    assert consumer.handled == [event.event_id]
    mark = ConsumedItem.get(*ConsumedItem.key("recording", event.event_id))
    assert mark.state == "DONE"


def test_one_failing_message_does_not_hold_back_its_batch(queue: Queue):
    # Given three events of which the second fails once
    events = relayed(*(order_event(EventType.ORDER_PAID, order_id=f"o-{n}") for n in range(3)))
    failing = events[1].event_id
    consumer = RecordingConsumer(fail_times={failing: 1})
    # When the first batch is consumed
    first = queue.deliver(consumer, fast_runtime())
    # Then only the failing message is reported, the other two took effect and left the queue
    assert first is not None and len(first["batchItemFailures"]) == 1
    assert sorted(consumer.handled) == sorted(e.event_id for e in events if e.event_id != failing)
    [left] = queue.peek()
    assert json.loads(left["Body"])["event_id"] == failing
    # And its retry succeeds, once
    queue.deliver_all(consumer, fast_runtime())
    assert sorted(consumer.handled) == sorted(e.event_id for e in events)


def test_a_poison_message_ends_in_the_dead_letter_queue_after_max_receive_count(queue: Queue, dead_letters: Queue):
    # Given a message that is not an event
    queue.send("{not json")
    consumer = RecordingConsumer()
    # When Lambda keeps delivering it
    responses = queue.deliver_all(consumer, fast_runtime())
    # Then it was tried maxReceiveCount (5) times and is now in the dead-letter queue with the reason
    assert len(responses) == 5
    [dead] = dead_letters.receive()
    assert dead["Body"] == "{not json"
    assert dead["MessageAttributes"]["failure_reason"]["StringValue"].startswith("PoisonMessage")
    assert dead["MessageAttributes"]["receive_count"]["StringValue"] == "5"
    assert queue.peek() == []


def test_an_event_that_keeps_failing_is_dead_lettered_with_its_reason_and_the_consumer_told(
    queue: Queue, dead_letters: Queue
):
    # Given an event whose provider always times out
    [event] = relayed(order_event(EventType.ORDER_FULFILLED))
    consumer = RecordingConsumer(always_fail={event.event_id})
    # When delivered until the queue gives up
    queue.deliver_all(consumer, fast_runtime())
    # Then it was attempted five times, is in the dead-letter queue with the reason, and not marked done
    assert consumer.attempts[event.event_id] == 5
    [dead] = dead_letters.receive()
    assert dead["MessageAttributes"]["event_id"]["StringValue"] == event.event_id
    assert (
        dead["MessageAttributes"]["failure_reason"]["StringValue"]
        == "TimeoutError: provider timed out on OrderFulfilled"
    )
    assert consumer.given_up == [(event.event_id, "TimeoutError: provider timed out on OrderFulfilled")]
    with pytest.raises(ConsumedItem.DoesNotExist):
        ConsumedItem.get(*ConsumedItem.key("recording", event.event_id))


def test_an_event_held_by_a_crashed_worker_is_handled_after_its_lease(queue: Queue):
    # Given a worker that claimed the event and died before marking it done
    [event] = relayed(order_event(EventType.ORDER_PAID))
    marks, start = DynamoMarks(), now_ms()
    assert marks.claim("recording", event.event_id, "crashed", start, 60_000) is ClaimOutcome.CLAIMED
    consumer = RecordingConsumer()
    # When it is delivered within the lease, it waits (a runtime whose lease is 1 s: the message
    # is hidden until that lease could have run out, 2 s, not for a backoff of no time)
    message_id = queue.peek()[0]["MessageId"]
    assert queue.deliver(consumer, fast_runtime(clock=lambda: start + 1_000, lease_s=1)) == {
        "batchItemFailures": [{"itemIdentifier": message_id}]
    }
    assert consumer.handled == [] and queue.deliver(consumer, fast_runtime()) is None
    # And after the lease it is handled, once
    deadline = time.monotonic() + 30
    while not consumer.handled and time.monotonic() < deadline:
        queue.deliver_all(consumer, fast_runtime(clock=lambda: start + 61_000))
        time.sleep(0.2)
    assert consumer.handled == [event.event_id]


def test_an_event_whose_claim_answer_was_lost_is_handled_on_that_delivery(queue: Queue):
    # Given the claim's put applied by DynamoDB and its answer lost (botocore sends it again)
    [event] = relayed(order_event(EventType.ORDER_PAID))
    consumer = RecordingConsumer()
    lost = FaultInjector(rate=1.0, kinds=[Kind.TIMEOUT_APPLIED], operations=["PutItem"], max_faults=1)
    # When the event is delivered
    with lost.attached():
        answer = queue.deliver(consumer, fast_runtime())
    # Then the repeated put, refused by its own claim, still holds it: handled now, not BUSY until
    # its lease runs out (the notifications queue dead-lettered such events after 5 receives)
    assert lost.count(Kind.TIMEOUT_APPLIED) == 1
    assert answer == {"batchItemFailures": []} and consumer.handled == [event.event_id]
    assert ConsumedItem.get(*ConsumedItem.key("recording", event.event_id)).state == "DONE"
