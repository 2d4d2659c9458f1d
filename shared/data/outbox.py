"""The transactional outbox: an event joins the transaction of the change it announces."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from shared.data.items.events import EventItem
from shared.data.transactions import Transaction
from shared.kernel.events import DomainEvent

RETENTION_S = 7 * 24 * 3600


def emit(tx: Transaction, event: DomainEvent) -> None:
    pk, sk = EventItem.key(event.event_id)
    item = EventItem(
        pk,
        sk,
        event_id=event.event_id,
        event_type=str(event.type),
        aggregate_id=event.aggregate_id,
        occurred_at=event.occurred_at,
        body=json.dumps(event.to_message(), ensure_ascii=False),
        created_at=int(time.time() * 1000),
        ttl=timedelta(seconds=RETENTION_S),
    )
    tx.put(item, f"event:{event.type}", condition=EventItem.pk.does_not_exist())
