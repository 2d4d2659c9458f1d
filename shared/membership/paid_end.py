"""A paid membership's end, as the stream and the jobs see it (docs/membership.md, "Expiry and the
reminder before it"; the jobs are shared/membership/paid_expiry.py): the `Ending` record, its
place in gsi2 `PAIDMEMBER#END`, and the events its item's change announces (the stream is the
outbox, docs/events.md). Pure: shared.data derives the events from stream images with it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate
from shared.kernel.events import DomainEvent, EventType

ACTIVE, EXPIRED = "ACTIVE", "EXPIRED"
# Derived event ids: uuid5 of (type, member, until), so a redelivered stream record, or a second
# change with the same meaning, names the same event (the consumers' per-id idempotency holds).
EVENTS_NAMESPACE = uuid.UUID("2c5e8f0a-7d41-4b9e-a3c6-51f0e8d2b7a4")


@dataclass(frozen=True)
class Ending:
    """A paid membership as the jobs see it (`MEMBER#<sub>` / `PAIDMEMBER`)."""

    customer_id: str
    tier: str
    until_ms: int
    status: str  # ACTIVE | EXPIRED
    version: int
    store_id: str | None = None
    guide_id: str | None = None
    reminded_for_ms: int | None = None  # the until whose reminder was sent
    expired_for_ms: int | None = None  # the until whose expiry was handled

    @property
    def position(self) -> str:
        """Its place in the `PAIDMEMBER#END` ordering (the index's sort key)."""
        return position(self.until_ms, self.customer_id)


def position(until_ms: int, customer_id: str) -> str:
    return f"{iso(until_ms)}#{customer_id}"


def edge(at_ms: int) -> str:
    """A position past every membership ending at or before `at_ms` (`~` sorts after any sub)."""
    return f"{iso(at_ms)}#~"


class AlreadyReminded(ConcurrentUpdate):
    """The membership's reminder for this `until_ms` was written before (or `until_ms` moved)."""


# -- the events derived from the item's change (the stream is the outbox, docs/events.md) ----------
def announced(before: Ending | None, after: Ending) -> list[DomainEvent]:
    """What a change of the PAIDMEMBER item announces:

    - ACTIVE -> EXPIRED with `until_ms` unchanged (the membership ran to its end): MembershipExpired.
      A refund that ends the membership moves `until_ms` to the refund's time in the same write and
      marks `expired_for_ms`; it announces nothing here (RefundIssued says it). A late write (a
      retried or redriven event) whose membership had already run out moves `until_ms` to that
      end and leaves `expired_for_ms` unset: MembershipExpired, as the job's (the same id for that end).
    - `reminded_for_ms` set to a new value that is the current `until_ms`: MembershipExpiring.
    An INSERT (no before) announces neither."""
    if before is None:
        return []
    events = []
    ran_out = before.until_ms == after.until_ms or after.expired_for_ms is None
    if before.status == ACTIVE and after.status == EXPIRED and ran_out:
        events.append(expired_event(after))
    if after.reminded_for_ms != before.reminded_for_ms and after.reminded_for_ms == after.until_ms:
        events.append(expiring_event(after))
    return events


def _event_id(kind: EventType, ending: Ending) -> str:
    return str(uuid.uuid5(EVENTS_NAMESPACE, f"{kind}|{ending.customer_id}|{ending.until_ms}"))


def _payload(ending: Ending) -> dict[str, object]:
    return {
        "customer_id": ending.customer_id,
        "tier": ending.tier,
        "until": iso(ending.until_ms),
        "store_id": ending.store_id,
        "guide_id": ending.guide_id,
    }


def expired_event(ending: Ending) -> DomainEvent:
    """`occurred_at` is the end itself, so the event re-derived from a redelivered record is identical."""
    kind = EventType.MEMBERSHIP_EXPIRED
    return DomainEvent(kind, ending.customer_id, _payload(ending), _event_id(kind, ending), iso(ending.until_ms))


def expiring_event(ending: Ending) -> DomainEvent:
    """`occurred_at` is the end too (what the message is about; the event is identical on redelivery)."""
    kind = EventType.MEMBERSHIP_EXPIRING
    return DomainEvent(kind, ending.customer_id, _payload(ending), _event_id(kind, ending), iso(ending.until_ms))
