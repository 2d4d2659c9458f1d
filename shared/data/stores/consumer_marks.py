"""Each consumer's progress on each event (ConsumedItem): claimed under a lease, then DONE.

See shared.messaging.consumers for why a claim with a lease and not a marker written after the effect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import DeleteError, PutError

from shared.data.items.consumers import ConsumedItem
from shared.data.transactions import Transaction, condition_failed, translated
from shared.messaging.ports import ClaimOutcome, HeldClaim

# Longer than any message can still arrive: SQS retention (4 days) plus the stream's 24 hours.
RETENTION_S = 6 * 24 * 3600
CLAIMED = "CLAIMED"
DONE = "DONE"


class DynamoMarks:
    def claim(self, consumer: str, event_id: str, token: str, now_ms: int, lease_ms: int) -> ClaimOutcome:
        """One conditional put: the event is ours if nobody marked it, or if the last claim's
        lease ran out (its worker died). Otherwise it is DONE, or BUSY with another worker.

        A put whose answer was lost (a read timeout after DynamoDB applied it) is retried by
        botocore and refused by its own condition: the mark then holds OUR token, and the claim is
        ours. Read as BUSY, the event waited out its own 60 s lease, and on the notifications queue
        (5 receives, 15-30 s of backoff) it went to the dead-letter queue unhandled."""
        pk, sk = ConsumedItem.key(consumer, event_id)
        item = ConsumedItem(
            pk,
            sk,
            consumer=consumer,
            event_id=event_id,
            state=CLAIMED,
            token=token,
            lease_until=now_ms + lease_ms,
            created_at=now_ms,
            ttl=_kept_until(now_ms),
        )
        free = ConsumedItem.pk.does_not_exist() | (
            (ConsumedItem.state == CLAIMED) & (ConsumedItem.lease_until < now_ms)
        )
        with translated():
            try:
                item.save(condition=free)
                return ClaimOutcome.CLAIMED
            except PutError as exc:
                if not condition_failed(exc):
                    raise
            try:
                held = ConsumedItem.get(pk, sk, consistent_read=True)
            except ConsumedItem.DoesNotExist:
                return ClaimOutcome.BUSY  # released between our put and our read: try again later
        if held.state == DONE:
            return ClaimOutcome.DONE
        return ClaimOutcome.CLAIMED if held.token == token else ClaimOutcome.BUSY

    def complete(self, consumer: str, event_id: str, token: str, now_ms: int) -> None:
        """Mark DONE whoever holds the claim now: our effect happened, so redeliveries must skip."""
        pk, sk = ConsumedItem.key(consumer, event_id)
        with translated():
            ConsumedItem(pk, sk).update(
                actions=[
                    ConsumedItem.entity.set(ConsumedItem),  # the item is created if it was released meanwhile
                    ConsumedItem.consumer.set(consumer),
                    ConsumedItem.event_id.set(event_id),
                    ConsumedItem.state.set(DONE),
                    ConsumedItem.token.set(token),
                    ConsumedItem.lease_until.set(now_ms),
                    ConsumedItem.created_at.set(now_ms),
                    ConsumedItem.ttl.set(_kept_until(now_ms)),
                ]
            )

    def release(self, consumer: str, event_id: str, token: str) -> None:
        """Give up our claim after a failure, so the retry need not wait for the lease to run out.
        Only a claim: a mark DONE on our token stays DONE. A `ClaimingConsumer` whose transaction
        (effect and DONE) applied but whose answer was lost sees its retry refused ("mark") and
        fails; deleting the DONE mark then would let the redelivery run the effect again."""
        pk, sk = ConsumedItem.key(consumer, event_id)
        with translated():
            try:
                ConsumedItem(pk, sk).delete(condition=(ConsumedItem.token == token) & (ConsumedItem.state == CLAIMED))
            except DeleteError as exc:
                if not condition_failed(exc):
                    raise


def _kept_until(now_ms: int) -> datetime:
    """The mark's TTL from the caller's clock (the consumer runtime's), not from PynamoDB's reading
    of the wall clock, so one claim has one time."""
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC) + timedelta(seconds=RETENTION_S)


def done_in(tx: Transaction, claim: HeldClaim) -> None:
    """Add "the mark becomes DONE" to `tx`, conditional on the claim still being the caller's, so a
    consumer's effect and its mark commit together (shared.messaging.ports.ClaimingConsumer). The
    part is labelled `mark`: its failure means the claim was lost."""
    tx.update(
        ConsumedItem,
        ConsumedItem.key(claim.consumer, claim.event_id),
        [
            ConsumedItem.state.set(DONE),
            ConsumedItem.lease_until.set(claim.now_ms),
            ConsumedItem.ttl.set(_kept_until(claim.now_ms)),
        ],
        "mark",
        condition=(ConsumedItem.token == claim.token) & (ConsumedItem.state == CLAIMED),
    )


def still_claimed_in(tx: Transaction, claim: HeldClaim, label: str) -> None:
    """A check that the claim is still the caller's, for a part of a write spread over several transactions."""
    tx.check(
        ConsumedItem,
        ConsumedItem.key(claim.consumer, claim.event_id),
        (ConsumedItem.token == claim.token) & (ConsumedItem.state == CLAIMED),
        label,
    )
