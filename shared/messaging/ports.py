"""What the relay and the consumer runtime need from outside, and the values they exchange.

`shared.data` implements these (`data/stream.py` decodes into `StreamChange`, `data/queues.py` sends
`QueueMessage`s and is a `RetryQueue`, `data/stores/consumer_marks.py` is the DynamoDB `Marks`);
tests implement them in memory (`tests/fakes/messaging.py`). Nothing here imports a use case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from shared.kernel.events import DomainEvent

# --- the stream relay ---


@dataclass(frozen=True)
class EventToForward:
    event_id: str
    event_type: str
    body: str  # the message JSON, exactly as the outbox wrote it


@dataclass(frozen=True)
class StockSnapshot:
    """A stock item as one stream image shows it (before or after a change)."""

    sku: str
    location: str
    on_hand: int
    available: int
    threshold: int | None

    @property
    def is_low(self) -> bool:
        return self.threshold is not None and self.available < self.threshold


@dataclass(frozen=True)
class StreamChange:
    sequence_number: str
    record_id: str
    at: str
    event: EventToForward | None = None  # an outbox Event item inserted
    stock_before: StockSnapshot | None = None
    stock_after: StockSnapshot | None = None
    # Events the change of a state item announces (an order's INSERT is OrderPlaced), each under an
    # id fixed by the item's key and version, so a redelivered record names the same events.
    derived: tuple[EventToForward, ...] = ()

    def with_event(self, event: EventToForward) -> StreamChange:
        return replace(self, event=event)

    def with_derived(self, events: tuple[EventToForward, ...]) -> StreamChange:
        return replace(self, derived=events)

    @property
    def forwarded(self) -> tuple[EventToForward, ...]:
        """Every event this record carries to the queues."""
        return ((self.event,) if self.event is not None else ()) + self.derived

    def with_stock(self, before: StockSnapshot, after: StockSnapshot) -> StreamChange:
        return replace(self, stock_before=before, stock_after=after)


@dataclass(frozen=True)
class QueueMessage:
    body: str
    attributes: dict[str, str]


Send = Callable[[str, Sequence[QueueMessage]], list[int]]  # (queue url, messages) -> failed indexes
EmitOnce = Callable[[DomainEvent], bool]  # True if written now, False if it already existed
Decode = Callable[[dict[str, Any]], StreamChange]  # a Lambda stream record -> what it changed


# --- the consumer runtime (the claim/lease state machine is in shared.messaging.consumers) ---


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # ours: run the effect
    DONE = "done"  # handled before: skip
    BUSY = "busy"  # another worker holds a live lease: retry soon


class Marks(Protocol):
    def claim(self, consumer: str, event_id: str, token: str, now_ms: int, lease_ms: int) -> ClaimOutcome: ...

    def complete(self, consumer: str, event_id: str, token: str, now_ms: int) -> None: ...

    def release(self, consumer: str, event_id: str, token: str) -> None: ...


class RetryQueue(Protocol):
    def max_receives(self, source_arn: str) -> int | None: ...

    def retry_later(self, source_arn: str, delays: Sequence[tuple[str, int]]) -> None: ...

    def dead_letter(self, source_arn: str, body: str, attributes: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class HeldClaim:
    """The claim a worker holds on (consumer, event id): its token names it. A consumer whose effect
    is one transaction puts the mark's DONE in it, conditional on this token (`ClaimingConsumer`)."""

    consumer: str
    event_id: str
    token: str
    now_ms: int


class Consumer(Protocol):
    name: str

    def handle(self, event: DomainEvent) -> None:
        """The effect. Raise to have the event retried; must be idempotent per event id."""

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        """Called once when the event goes to the dead-letter queue (e.g. to record why)."""


@runtime_checkable
class ClaimingConsumer(Protocol):
    """A consumer that writes its effect and the mark's DONE in ONE transaction, conditional on the
    claim still being ours: then not even a crash between effect and mark can run it twice."""

    name: str

    def handle_claimed(self, event: DomainEvent, claim: HeldClaim) -> None: ...

    def gave_up(self, event: DomainEvent, reason: str) -> None: ...
