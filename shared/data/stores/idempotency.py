"""The idempotency record as a transaction participant (see shared.kernel.idempotency)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from shared.data.items import IdempotencyItem
from shared.data.transactions import Transaction, TransactionCancelled, translated
from shared.kernel.clock import now_ms
from shared.kernel.errors import IdempotencyKeyReused
from shared.kernel.idempotency import IdempotentRequest, StoredResponse

LABEL = "idempotency"
RETENTION_S = 24 * 3600


def join(tx: Transaction, request: IdempotentRequest, response: StoredResponse) -> None:
    """Add the record to `tx`: the transaction applies only if the key is new."""
    pk, sk = IdempotencyItem.key(request.scope, request.key)
    created = now_ms()
    item = IdempotencyItem(
        pk,
        sk,
        request_hash=request.fingerprint,
        status_code=response.status,
        response_body=json.dumps(response.body, ensure_ascii=False),
        created_at=created,
        # An absolute expiry from the kernel's clock: a timedelta would have PynamoDB read the wall clock.
        ttl=datetime.fromtimestamp(created / 1000 + RETENTION_S, tz=UTC),
    )
    tx.put(item, LABEL, condition=IdempotencyItem.pk.does_not_exist())


def replay(request: IdempotentRequest, cancelled: TransactionCancelled | None = None) -> StoredResponse | None:
    """The stored response if this key was used before with the same body; IdempotencyKeyReused if
    it was used with another body; None if it was never used."""
    raw = cancelled.items.get(LABEL) if cancelled is not None else None
    if raw:
        hash_value = UnicodeAttribute().deserialize(raw["request_hash"]["S"])
        status = int(NumberAttribute().deserialize(raw["status_code"]["N"]))
        body = raw["response_body"]["S"]
    else:
        pk, sk = IdempotencyItem.key(request.scope, request.key)
        with translated():
            try:
                item = IdempotencyItem.get(pk, sk, consistent_read=True)
            except IdempotencyItem.DoesNotExist:
                return None
        hash_value, status, body = item.request_hash, int(item.status_code), item.response_body
    if hash_value != request.fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request body", idempotency_key=request.key
        )
    return StoredResponse(status=status, body=json.loads(body), replayed=True)


def was_replayed(cancelled: TransactionCancelled) -> bool:
    return LABEL in cancelled.failed


def commit(tx: Transaction, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
    """Join the record to `tx` and commit it. A replay of the key gets its first response back
    (another body with the key: IdempotencyKeyReused); any other cancellation propagates."""
    join(tx, request, response)
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        stored = replay(request, cancelled) if was_replayed(cancelled) else None
        if stored is None:
            raise
        return stored
    return response
