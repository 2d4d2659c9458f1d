"""The transactional outbox: an event joins the transaction of the change it announces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from shared.data.items.events import EventItem
from shared.data.transactions import Transaction
from shared.kernel.clock import SYSTEM, Clock
from shared.kernel.events import DomainEvent

RETENTION_S = 7 * 24 * 3600


def emit(tx: Transaction, event: DomainEvent, clock: Clock = SYSTEM) -> None:
    """`clock` is the writer's: the item's created_at and its TTL are read from it once."""
    now_ms = clock.now_ms()
    pk, sk = EventItem.key(event.event_id)
    item = EventItem(
        pk,
        sk,
        event_id=event.event_id,
        event_type=str(event.type),
        aggregate_id=event.aggregate_id,
        occurred_at=event.occurred_at,
        body=json.dumps(event.to_message(), ensure_ascii=False),
        created_at=now_ms,
        ttl=datetime.fromtimestamp(now_ms / 1000, tz=UTC) + timedelta(seconds=RETENTION_S),
    )
    tx.put(item, f"event:{event.type}", condition=EventItem.pk.does_not_exist())
