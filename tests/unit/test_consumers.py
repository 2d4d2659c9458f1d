"""The consumer framework's rules, with in-memory marks and queue (tests/fakes/messaging.py; the
DynamoDB and SQS versions are exercised on moto in tests/functional/test_consumers.py, and the
marks fake is checked against DynamoMarks in tests/contract/test_consumer_marks.py)."""

from __future__ import annotations

import json
import random

from shared.commission.ports import ClaimLost
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.consumers import RetryPolicy, Runtime, consume
from shared.messaging.ports import ClaimOutcome, HeldClaim
from tests.events import load
from tests.fakes.messaging import MemoryMarks, MemoryQueue

ARN = "arn:aws:sqs:ap-east-1:123456789012:retail-dev-NotificationsQueue-1A2B3C"


class RecordingConsumer:
    name = "recording"

    def __init__(self, failing: set[str] | None = None) -> None:
        self.handled: list[str] = []
        self.failing = failing or set()
        self.given_up: list[tuple[str, str]] = []

    def handle(self, event: DomainEvent) -> None:
        if event.event_id in self.failing:
            raise ConnectionError(f"provider down for {event.event_id}")
        self.handled.append(event.event_id)

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        self.given_up.append((event.event_id, reason))


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_392_000_000

    def __call__(self) -> int:
        return self.now


def event(event_id: str) -> DomainEvent:
    return DomainEvent(
        EventType.ORDER_PAID, "o-1", {"order_id": "o-1"}, event_id=event_id, occurred_at="2026-11-23T01:20:00.000Z"
    )


def sqs_event(*bodies: str, receives: int = 1) -> dict:
    template = load("sqs_batch")["Records"][0]
    records = []
    for n, body in enumerate(bodies):
        record = json.loads(json.dumps(template))
        record.update(messageId=f"m-{n}", receiptHandle=f"r-{n}", body=body)
        record["attributes"]["ApproximateReceiveCount"] = str(receives)
        records.append(record)
    return {"Records": records}


def runtime(marks=None, queue=None, clock=None) -> Runtime:
    return Runtime(marks or MemoryMarks(), queue or MemoryQueue(), RetryPolicy(base_s=2, lease_s=60), clock or Clock())


def body(event_id: str) -> str:
    return json.dumps(event(event_id).to_message())


def test_an_event_delivered_three_times_has_its_effect_once():
    # Given one event delivered three times (the relay and SQS both deliver at least once)
    consumer, kit = RecordingConsumer(), runtime()
    # When each delivery is consumed
    responses = [consume(sqs_event(body("e-1")), consumer, kit) for _ in range(3)]
    # Then the effect ran once and every delivery is acknowledged
    assert consumer.handled == ["e-1"]
    assert responses == [{"batchItemFailures": []}] * 3


def test_a_failing_record_alone_is_reported_and_retried_after_a_backoff():
    # Given a batch of three where the second fails
    consumer, kit = RecordingConsumer(failing={"e-2"}), runtime()
    # When consumed
    response = consume(sqs_event(body("e-1"), body("e-2"), body("e-3")), consumer, kit)
    # Then only the second is reported; the others took effect
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert consumer.handled == ["e-1", "e-3"]
    # And it comes back after a jittered backoff (first receive: 1..2 s), not the full visibility timeout
    assert [handle for handle, _ in kit.queue.delays] == ["r-1"]  # type: ignore[attr-defined]
    assert 1 <= kit.queue.delays[0][1] <= 2  # type: ignore[attr-defined]
    # And its claim was released, so the retry can take it at once
    assert ("recording", "e-2") not in kit.marks.marks  # type: ignore[attr-defined]


def test_the_backoff_doubles_per_receive_and_is_capped():
    policy, rng = RetryPolicy(base_s=2, cap_s=300), random.Random(1)
    ceilings = [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    for receives, ceiling in enumerate(ceilings, start=1):
        assert ceiling / 2 - 0.5 <= policy.delay_s(receives, rng) <= ceiling


def test_on_the_last_receive_the_message_goes_to_the_dead_letter_queue_with_its_reason():
    # Given an event whose effect keeps failing, on its fifth receive (maxReceiveCount 5)
    consumer, kit = RecordingConsumer(failing={"e-9"}), runtime()
    # When consumed
    response = consume(sqs_event(body("e-9"), receives=5), consumer, kit)
    # Then it leaves the queue (acknowledged) for the dead-letter queue, saying why
    assert response == {"batchItemFailures": []}
    [(dead_body, attributes)] = kit.queue.dead  # type: ignore[attr-defined]
    assert dead_body == body("e-9")
    assert attributes["failure_reason"] == "ConnectionError: provider down for e-9"
    assert attributes["event_id"] == "e-9" and attributes["consumer"] == "recording"
    assert attributes["receive_count"] == "5"
    # And the consumer is told once, to record it
    assert consumer.given_up == [("e-9", "ConnectionError: provider down for e-9")]


def test_a_poison_message_is_retried_then_dead_lettered():
    # Given a body that is no event at all
    consumer, kit = RecordingConsumer(), runtime()
    # When it is received for the first time, it is reported failed (the queue decides when to stop)
    assert consume(sqs_event("not json"), consumer, kit) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    # And on the last receive it lands in the dead-letter queue with the parse error as reason
    assert consume(sqs_event("not json", receives=5), consumer, kit) == {"batchItemFailures": []}
    [(dead_body, attributes)] = kit.queue.dead  # type: ignore[attr-defined]
    assert dead_body == "not json"
    assert attributes["failure_reason"].startswith("PoisonMessage: not an event")
    assert consumer.handled == [] and consumer.given_up == []


def test_while_another_worker_holds_the_event_the_delivery_waits():
    # Given a worker that claimed the event and died without finishing
    marks, clock = MemoryMarks(), Clock()
    assert marks.claim("recording", "e-5", "dead-worker", clock(), 60_000) is ClaimOutcome.CLAIMED
    consumer = RecordingConsumer()
    kit = runtime(marks=marks, clock=clock)
    # When the event is delivered again within the lease
    first = consume(sqs_event(body("e-5")), consumer, kit)
    # Then it is retried, not handled twice at once
    assert first == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert consumer.handled == []
    # And once the lease has run out, the next delivery handles it
    clock.now += 61_000
    assert consume(sqs_event(body("e-5"), receives=2), consumer, kit) == {"batchItemFailures": []}
    assert consumer.handled == ["e-5"]


class LostAnswers(MemoryMarks):
    """DynamoDB under a lost response: every claim is written, its answer lost, and the SDK sends
    the same put again (the fault harness's timeout_applied, infra/local/faults.py)."""

    def claim(self, consumer: str, event_id: str, token: str, now_ms: int, lease_ms: int) -> ClaimOutcome:
        super().claim(consumer, event_id, token, now_ms, lease_ms)
        return super().claim(consumer, event_id, token, now_ms, lease_ms)


def test_a_claim_whose_answer_was_lost_is_still_ours_and_the_event_is_handled_once():
    # Given marks whose every claim answer is lost, and a queue that gives up after 5 receives
    consumer, queue = RecordingConsumer(), MemoryQueue(max_receives=5)
    kit = runtime(marks=LostAnswers(), queue=queue)
    # When the event is delivered, and delivered again
    responses = [consume(sqs_event(body("e-7"), receives=n), consumer, kit) for n in (1, 2)]
    # Then the first delivery handled it (it was not BUSY on its own claim until the DLQ), once
    assert responses == [{"batchItemFailures": []}] * 2
    assert consumer.handled == ["e-7"] and queue.dead == []


class MarkInItsWrite:
    """A ClaimingConsumer whose effect and DONE mark are one write (as the commission ledger's
    transaction), here with its answer lost: the write applied, the SDK's retry is refused on the
    mark (it is DONE now), and the consumer raises as DynamoLedger does (ClaimLost)."""

    name = "one-write"

    def __init__(self, marks: MemoryMarks, lose_answer: bool = True) -> None:
        self.marks = marks
        self.lose_answer = lose_answer
        self.effects: list[str] = []

    def handle_claimed(self, event: DomainEvent, claim: HeldClaim) -> None:
        self.effects.append(event.event_id)
        self.marks.complete(claim.consumer, claim.event_id, claim.token, claim.now_ms)
        if self.lose_answer:
            self.lose_answer = False
            raise ClaimLost("the claim on the event is not ours")

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        raise AssertionError(f"gave up on {event.event_id}: {reason}")


def test_a_write_with_its_mark_whose_answer_was_lost_is_not_run_again_on_redelivery():
    # Given a consumer whose first write applied but answered "claim lost"
    marks = MemoryMarks()
    consumer = MarkInItsWrite(marks)
    kit = runtime(marks=marks)
    # When the delivery fails and the event comes back
    first = consume(sqs_event(body("e-8")), consumer, kit)
    again = consume(sqs_event(body("e-8"), receives=2), consumer, kit)
    # Then the failed delivery's release left the DONE mark alone: the redelivery is a duplicate
    assert first == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert again == {"batchItemFailures": []}
    assert consumer.effects == ["e-8"]


def redelivered_until_settled(
    consumer: RecordingConsumer, kit: Runtime, queue: MemoryQueue, clock: Clock, event_id: str
) -> int:
    """Deliver like SQS: each failed delivery comes back after the delay the runtime asked for, up
    to the queue's receive limit. Returns the receives it took."""
    for receives in range(1, (queue.limit or 5) + 1):
        if consume(sqs_event(body(event_id), receives=receives), consumer, kit) == {"batchItemFailures": []}:
            return receives
        clock.now += queue.delays[-1][1] * 1000
    raise AssertionError("still failing past the receive limit")


def test_an_event_held_by_a_worker_that_will_never_finish_is_handled_before_the_dead_letter_queue():
    # Given a claim whose worker died (or whose release failed), and the notifications queue's
    # 5 receives with the production backoff (2 s doubling: 15-30 s in all) and 60 s lease
    marks, clock, queue = MemoryMarks(), Clock(), MemoryQueue(max_receives=5)
    assert marks.claim("recording", "e-9", "dead-worker", clock(), 60_000) is ClaimOutcome.CLAIMED
    consumer = RecordingConsumer()
    kit = runtime(marks=marks, queue=queue, clock=clock)
    # When the event is redelivered as the runtime asks
    receives = redelivered_until_settled(consumer, kit, queue, clock, "e-9")
    # Then the held delivery came back after the lease, and the next one handled it: not dead-lettered
    assert queue.delays[0][1] >= 61
    assert (receives, consumer.handled, queue.dead) == (2, ["e-9"], [])


class ClaimAppliedThenTimedOut(MemoryMarks):
    """A claim put that DynamoDB applied, whose answers were all lost: the SDK gives up (a timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.timed_out = False

    def claim(self, consumer: str, event_id: str, token: str, now_ms: int, lease_ms: int) -> ClaimOutcome:
        outcome = super().claim(consumer, event_id, token, now_ms, lease_ms)
        if not self.timed_out:
            self.timed_out = True
            raise TimeoutError("read timeout")
        return outcome


def test_a_claim_that_raised_is_given_back_so_the_retry_need_not_wait_out_its_lease():
    # Given a first claim that was written although it raised
    marks, clock, queue = ClaimAppliedThenTimedOut(), Clock(), MemoryQueue(max_receives=5)
    consumer = RecordingConsumer()
    kit = runtime(marks=marks, queue=queue, clock=clock)
    # When the event comes back after its backoff
    receives = redelivered_until_settled(consumer, kit, queue, clock, "e-10")
    # Then the second delivery claimed it (the failed one released what it had written) and handled it
    assert queue.delays[0][1] <= 2
    assert (receives, consumer.handled) == (2, ["e-10"])
