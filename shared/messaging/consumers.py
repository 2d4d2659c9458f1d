"""The queue-consumer framework: each consumer handles each event once in effect, reports
partial batch failures, retries with backoff and gives up into its dead-letter queue with a reason.

Delivery is at least once (the relay may send an event twice; SQS may deliver a message twice,
even to two workers at the same moment). Per (consumer, event id) a mark goes through:

    (none) --claim--> CLAIMED(token, lease) --effect ok--> DONE
                          |  effect failed: release (delete), retry later
                          |  worker died: the lease runs out, the next delivery claims it

- A claim is one conditional put: it succeeds if there is no mark, or the mark is CLAIMED with an
  expired lease. A DONE mark turns every redelivery into a no-op; a live claim held by another
  worker makes this delivery fail softly and come back once that lease has run out (so two workers
  never run the effect at the same time). Not after the usual backoff: the holder may be dead, or
  a worker whose release failed, and 5 receives of backoff (15-30 s) are spent long before a 60 s
  lease ends; the event then went to the dead-letter queue unhandled (seen under the fault
  harness, tests/e2e/test_commission_faults_http.py). A claim that raised may have been written
  (its answer lost): the worker gives it back before failing.
- Why not just a "processed" marker written after success: two concurrent deliveries would both
  run the effect. Why not the marker before the effect: a crash after it would lose the effect.
- The window that remains: the worker dies (or cannot write DONE) after the effect and before the
  mark. The lease then runs out and the event is handled again. So the effect itself must be
  idempotent by event id (the notifications consumer keys every message by event, channel and
  recipient). The lease is the queue's visibility timeout (60 s), longer than a handler runs.
  A `ClaimingConsumer` closes the window: its effect is one transaction that also sets the mark
  DONE, conditional on its claim's token (the commission ledger).

Retries: a failed record is reported in `batchItemFailures` and made visible again after a
jittered exponential backoff (ChangeMessageVisibility) rather than the whole visibility timeout.
On the delivery that reaches the queue's `maxReceiveCount` the consumer moves the message to the
dead-letter queue itself, with `failure_reason`, and calls the consumer's `gave_up`; SQS's own
redrive still catches what a crashed invocation never reported.
"""

from __future__ import annotations

import functools
import json
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.kernel.events import DomainEvent
from shared.messaging.ports import ClaimingConsumer, ClaimOutcome, Consumer, HeldClaim, Marks, RetryQueue
from shared.platform.observability import count, flush, logger


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 2.0
    cap_s: float = 300.0
    lease_s: float = 60.0

    def delay_s(self, receive_count: int, rng: random.Random | None = None) -> int:
        """Equal-jitter exponential backoff: between half and all of base * 2^(n-1), capped."""
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, receive_count - 1))
        return round((rng or random).uniform(ceiling / 2, ceiling))


class PoisonMessage(Exception):
    """The message is not an event this suite wrote; retrying cannot help, but the dead-letter
    queue keeps it for a human."""


class RecordFailed(Exception):
    pass


class HeldElsewhere(RecordFailed):
    """Another worker holds a live claim on the event: retry once its lease has run out."""


def parse(body: str) -> DomainEvent:
    try:
        return DomainEvent.from_message(json.loads(body))
    except (ValueError, KeyError, TypeError) as exc:
        raise PoisonMessage(f"not an event: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Runtime:
    """What every consumer runs on: DynamoDB marks, its queue, the retry policy, a clock (epoch ms)."""

    marks: Marks
    queue: RetryQueue
    policy: RetryPolicy
    clock: Callable[[], int]


@dataclass
class _Batch:
    consumer: Consumer | ClaimingConsumer
    runtime: Runtime
    retries: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def deliver(self, record: Any) -> None:
        """One SQS record (powertools SQSRecord): raises RecordFailed to report it failed."""
        event: DomainEvent | None = None
        try:
            event = parse(record.body)
            self._handle_once(event)
        except Exception as exc:  # every failure of one record is that record's alone
            # A held event comes back after the lease (plus a second: the lease's end is still its).
            wait_s = self.runtime.policy.lease_s + 1 if isinstance(exc, HeldElsewhere) else 0.0
            self._fail(record, event, f"{type(exc).__name__}: {exc}", wait_s)

    def _handle_once(self, event: DomainEvent) -> None:
        name = self.consumer.name
        token = uuid.uuid4().hex
        try:
            claim = self.runtime.marks.claim(
                name, event.event_id, token, self.runtime.clock(), int(self.runtime.policy.lease_s * 1000)
            )
        except Exception:
            # The put may have been applied with its answer lost: a claim of ours would hold the
            # event for a whole lease. Releasing takes only a CLAIMED mark with our token.
            _quietly(lambda: self.runtime.marks.release(name, event.event_id, token))
            raise
        if claim is ClaimOutcome.DONE:
            count("DuplicateEventsSkipped", consumer=name)
            return
        if claim is ClaimOutcome.BUSY:
            raise HeldElsewhere("another worker is handling this event")
        try:
            if isinstance(self.consumer, ClaimingConsumer):
                now = self.runtime.clock()
                self.consumer.handle_claimed(event, HeldClaim(name, event.event_id, token, now))
            else:
                self.consumer.handle(event)
        except Exception:
            _quietly(lambda: self.runtime.marks.release(name, event.event_id, token))
            raise
        self.runtime.marks.complete(name, event.event_id, token, self.runtime.clock())
        count("EventsConsumed", consumer=name)

    def _fail(self, record: Any, event: DomainEvent | None, reason: str, wait_s: float = 0.0) -> None:
        receives = int(record.attributes.approximate_receive_count or 1)
        limit = self.runtime.queue.max_receives(record.event_source_arn)
        if limit is not None and receives >= limit:
            self._give_up(record, event, reason, receives)
            return  # reported as done: it left the queue for the dead-letter queue
        logger.warning(
            "event failed; will retry",
            extra={
                "consumer": self.consumer.name,
                "message_id": record.message_id,
                "receives": receives,
                "reason": reason,
            },
        )
        self.retries.setdefault(record.event_source_arn, []).append(
            (record.receipt_handle, max(self.runtime.policy.delay_s(receives), math.ceil(wait_s)))
        )
        raise RecordFailed(reason)

    def _give_up(self, record: Any, event: DomainEvent | None, reason: str, receives: int) -> None:
        name = self.consumer.name
        if event is not None:
            _quietly(lambda: self.consumer.gave_up(event, reason))
        attributes = {
            "failure_reason": reason[:1000],
            "consumer": name,
            "receive_count": str(receives),
            "event_id": event.event_id if event else "",
            "event_type": str(event.type) if event else "",
        }
        self.runtime.queue.dead_letter(record.event_source_arn, record.body, attributes)
        logger.error("event dead-lettered", extra={"consumer": name, "message_id": record.message_id, "reason": reason})
        count("EventsDeadLettered", consumer=name)


def consume(sqs_event: dict[str, Any], consumer: Consumer | ClaimingConsumer, runtime: Runtime) -> dict[str, Any]:
    """Handle an SQS batch; returns the Lambda response naming the records to retry."""
    # Imported here: the batch utility costs ~40 ms, which the API Lambda's cold start never needs.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    batch = _Batch(consumer, runtime)
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    try:
        with processor(records=sqs_event.get("Records", []), handler=batch.deliver):
            processor.process()
        for source_arn, delays in batch.retries.items():
            _quietly(functools.partial(runtime.queue.retry_later, source_arn, delays))
        return dict(processor.response())
    finally:
        flush()


def _quietly(action: Callable[[], None]) -> None:
    """Best-effort side steps (release a claim, record a give-up, shorten a visibility timeout):
    their failure must not change the record's outcome, only be seen."""
    try:
        action()
    except Exception:
        logger.exception("best-effort step failed")
