"""The stream relay: carries events from the table's stream to one queue per consumer: outbox
Event items, the events a state item's change announces (an order's INSERT is OrderPlaced,
docs/events.md), and LowStock, derived from stock changes.

Why a relay: a DynamoDB stream serves about two readers, and each consumer needs its own retries
and dead-letter queue. So one reader fans out to SQS (DESIGN.md, "Events").

Guarantees:
- Every Event INSERT, and every event derived from a state item's change, reaches every subscribed
  queue at least once (a derived event's id is fixed by the item's key and version, so a
  redelivered record forwards the same id). A record is done only when all
  its messages were taken; otherwise the batch reports that record's sequence number and Lambda
  retries from there (ReportBatchItemFailures), so later records may be sent twice. Consumers are
  idempotent per event id, which makes that harmless.
- LowStock: one event per crossing. A Stock MODIFY whose `available` drops below the item's
  `low_stock_threshold` from at or above it (and only that record) emits an event whose id is
  derived from the record; a redelivered record writes the same id, which the outbox's conditional
  put refuses. Orders that take stock further below the threshold do not cross it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from shared.kernel.errors import TemporarilyUnavailable
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.ports import Decode, EmitOnce, EventToForward, QueueMessage, Send, StreamChange
from shared.messaging.routing import SUBSCRIPTIONS, queues_for
from shared.platform.observability import count, logger

# Derived event ids: uuid5 over the stream record, so the same record always names the same event.
LOW_STOCK_NAMESPACE = uuid.UUID("6f1d3c5e-2b8a-4c1e-9a57-0d4e2f7b9c31")


def low_stock_event(change: StreamChange) -> DomainEvent | None:
    """The LowStock event this change announces, if `available` crossed the threshold downwards."""
    before, after = change.stock_before, change.stock_after
    if before is None or after is None or before.is_low or not after.is_low:
        return None
    stable = f"LowStock|{after.sku}|{after.location}|{change.sequence_number}|{change.record_id}"
    event = DomainEvent(
        type=EventType.LOW_STOCK,
        aggregate_id=f"{after.sku}@{after.location}",
        payload={
            "sku": after.sku,
            "location": after.location,
            "available": after.available,
            "on_hand": after.on_hand,
            "threshold": after.threshold,
        },
        event_id=str(uuid.uuid5(LOW_STOCK_NAMESPACE, stable)),
    )
    return replace(event, occurred_at=change.at) if change.at else event


class Relay:
    def __init__(
        self,
        queue_urls: dict[str, str],
        decode: Decode,
        send: Send,
        emit_once: EmitOnce,
        subscriptions: dict[str, frozenset[EventType]] = SUBSCRIPTIONS,
    ) -> None:
        missing = sorted(set(subscriptions) - set(queue_urls))
        if missing:
            # A deployment without a consumer's queue would silently drop its events: refuse to start.
            raise LookupError(f"CONSUMER_QUEUES lacks {', '.join(missing)}")
        self.queue_urls = queue_urls
        self.decode = decode
        self.send = send
        self.emit_once = emit_once
        self.subscriptions = subscriptions

    def relay(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Forward and derive for a batch of stream records, in stream order; the Lambda response
        names the first record that did not complete (Lambda retries from it)."""
        changes = [self.decode(record) for record in records]
        failed: set[int] = set()
        outgoing: dict[str, list[tuple[int, QueueMessage]]] = {}
        for index, change in enumerate(changes):
            for event in change.forwarded:
                for queue in queues_for(event.event_type, self.subscriptions):
                    outgoing.setdefault(queue, []).append((index, _message(event)))
            derived = low_stock_event(change)
            if derived is not None and not self._emit(derived):
                failed.add(index)
        for queue, entries in outgoing.items():
            refused = self.send(self.queue_urls[queue], [message for _, message in entries])
            failed.update(entries[i][0] for i in refused)
        forwarded = sum(len(entries) for entries in outgoing.values())
        if forwarded:
            count("EventsRelayed", forwarded)
        if not failed:
            return {"batchItemFailures": []}
        first = min(failed)
        logger.warning(
            "relay will retry", extra={"from_sequence": changes[first].sequence_number, "failed": len(failed)}
        )
        return {"batchItemFailures": [{"itemIdentifier": changes[first].sequence_number}]}

    def _emit(self, event: DomainEvent) -> bool:
        try:
            if self.emit_once(event):
                count("LowStockEmitted")
            return True
        except TemporarilyUnavailable:
            return False


def _message(event: EventToForward) -> QueueMessage:
    return QueueMessage(body=event.body, attributes={"event_type": event.event_type, "event_id": event.event_id})
