"""In-memory ports of the paid-membership jobs (shared/membership/paid_expiry.py) with the DynamoDB
store's conditions (shared/data/stores/paid_expiry.py): the index ordering `<until iso>#<sub>`, the
expiry's condition on version and ACTIVE, the reminder's on until and its mark, the checkpoint
only ever moved forward. Every write derives the events the stream would (`announced`)."""

from __future__ import annotations

from dataclasses import replace

from shared.kernel.errors import ConcurrentUpdate, TemporarilyUnavailable
from shared.kernel.events import DomainEvent
from shared.membership.paid_end import ACTIVE, EXPIRED, AlreadyReminded, Ending, announced


class MemoryEndingMembers:
    def __init__(self) -> None:
        self.members: dict[str, Ending] = {}
        self.events: list[DomainEvent] = []
        self.busy_for: set[str] = set()  # writes for these members answer TemporarilyUnavailable
        self.before_write: dict[str, object] = {}  # customer -> callable run before its next write
        self.queries = 0
        self.busy_queries = 0  # the next this many Queries answer TemporarilyUnavailable

    # what p1's purchase / refund would write (the tests' stand-in)
    def put(self, ending: Ending) -> Ending:
        before = self.members.get(ending.customer_id)
        stored = replace(ending, version=(before.version if before else 0) + 1)
        if before is not None:
            stored = replace(
                stored,
                reminded_for_ms=before.reminded_for_ms if ending.reminded_for_ms is None else ending.reminded_for_ms,
                # None leaves the mark, but on an EXPIRED write removes it (expired late, to announce)
                expired_for_ms=ending.expired_for_ms
                if ending.expired_for_ms is not None or ending.status == EXPIRED
                else before.expired_for_ms,
            )
        self._apply(before, stored)
        return stored

    def page(self, low: str, high: str, limit: int) -> tuple[list[Ending], bool]:
        self.queries += 1
        if self.busy_queries:
            self.busy_queries -= 1
            raise TemporarilyUnavailable("busy")
        in_range = sorted((m for m in self.members.values() if low < m.position <= high), key=lambda m: m.position)
        return in_range[:limit], len(in_range) > limit

    def get(self, customer_id: str) -> Ending | None:
        return self.members.get(customer_id)

    def expire(self, ending: Ending) -> None:
        stored = self._before(ending)
        if stored is None or stored.version != ending.version or stored.status != ACTIVE:
            raise ConcurrentUpdate("the membership changed since it was read")
        after = replace(stored, status=EXPIRED, expired_for_ms=stored.until_ms, version=stored.version + 1)
        self._apply(stored, after)

    def remind(self, ending: Ending) -> None:
        stored = self._before(ending)
        if (
            stored is None
            or stored.until_ms != ending.until_ms
            or stored.status != ACTIVE
            or stored.reminded_for_ms == ending.until_ms
        ):
            raise AlreadyReminded("reminded for this end, or the end moved")
        self._apply(stored, replace(stored, reminded_for_ms=ending.until_ms))

    def _before(self, ending: Ending) -> Ending | None:
        if ending.customer_id in self.busy_for:
            raise TemporarilyUnavailable("busy")
        hook = self.before_write.pop(ending.customer_id, None)
        if callable(hook):
            hook()
        return self.members.get(ending.customer_id)

    def _apply(self, before: Ending | None, after: Ending) -> None:
        self.members[after.customer_id] = after
        self.events += announced(before, after)


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.positions: dict[str, str] = {}

    def through(self, job: str) -> str | None:
        return self.positions.get(job)

    def advance(self, job: str, through: str) -> None:
        if through > self.positions.get(job, ""):
            self.positions[job] = through
