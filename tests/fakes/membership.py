"""In-memory membership ports (shared.membership.ports) with the DynamoDB store's conditions and
all-or-nothing writes; tests/contract/test_membership_ports.py runs one class against both."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate
from shared.kernel.events import DomainEvent
from shared.membership import model
from shared.membership.model import (
    DEFAULT_RULES,
    InsufficientPoints,
    LedgerEntry,
    LotState,
    Member,
    MembershipRules,
    OrderPoints,
    OrderSpend,
    PointsAlreadyHeld,
    PointsBalance,
    PointsNotHeld,
)
from shared.membership.ports import (
    Cursor,
    MemberChange,
    MembershipClaimLost,
    MemberState,
    PointsAlreadyRecorded,
)
from shared.membership.segments import CouponIssue, Issued, JobStatus, SegmentIssue
from shared.membership.tags import Activity, TagRange
from shared.messaging.ports import HeldClaim
from shared.ordering.model import Order
from shared.ordering.ports import OrderingUnitOfWork
from shared.ordering.pricing import PointsOffer
from tests.fakes.messaging import MemoryMarks


class MemoryMembershipRules:
    def __init__(self) -> None:
        self.stored: MembershipRules | None = None

    def current(self) -> MembershipRules:
        return self.stored or DEFAULT_RULES

    def save(self, rules: MembershipRules) -> None:
        if (self.stored.version if self.stored else 0) != rules.version - 1:
            raise ConcurrentUpdate("the membership rules changed meanwhile", version=rules.version)
        self.stored = rules


class MemoryMembers:
    def __init__(self, marks: MemoryMarks | None = None) -> None:
        self.marks = marks or MemoryMarks()
        self.members: dict[str, Member] = {}
        self.balances: dict[str, PointsBalance] = {}
        self.books: dict[tuple[str, str], OrderPoints] = {}
        self.entries: dict[tuple[str, str], LedgerEntry] = {}  # (sub, "<at iso>#<entry id>")
        self.events: dict[str, DomainEvent] = {}
        self.holds: dict[tuple[str, str], tuple[int, str]] = {}  # (sub, order) -> (points, status)
        self.activities: dict[str, Activity] = {}
        self.spends: dict[tuple[str, str], OrderSpend] = {}  # spent at checkout
        self.lock = threading.Lock()

    # -- MemberStore ---------------------------------------------------------------------------
    def member(self, customer_sub: str) -> Member | None:
        return self.members.get(customer_sub)

    def enrol(self, member: Member) -> Member:
        with self.lock:
            return self.members.setdefault(member.customer_sub, replace(member, version=1))

    def state(self, customer_sub: str, order_id: str | None) -> MemberState:
        book = self.books.get((customer_sub, order_id)) if order_id is not None else None
        spend = self.spends.get((customer_sub, order_id)) if order_id is not None else None
        return MemberState(
            self.members.get(customer_sub),
            self.balances.get(customer_sub),
            book,
            self.activities.get(customer_sub),
            spend,
        )

    def write(self, change: MemberChange, claim: HeldClaim | None = None) -> None:
        with self.lock:
            self._check(change, claim)
            if change.member_after is not None and change.member_before is not None:
                member = change.member_after
                self.members[member.customer_sub] = replace(member, version=change.member_before.version + 1)
            if change.balance_after is not None and change.balance_before is not None:
                balance = change.balance_after
                self.balances[balance.customer_sub] = replace(balance, version=change.balance_before.version + 1)
            if change.book_after is not None and change.book_before is not None:
                book = change.book_after
                key = (book.customer_sub, book.order_id)
                self.books[key] = replace(book, version=change.book_before.version + 1)
            if change.activity_after is not None and change.activity_before is not None:
                activity = change.activity_after
                self.activities[activity.customer_sub] = replace(activity, version=change.activity_before.version + 1)
            if change.spend_after is not None and change.spend_before is not None:
                spend = change.spend_after
                key = (spend.customer_sub, spend.order_id)
                self.spends[key] = replace(spend, version=change.spend_before.version + 1)
            for entry in change.entries:
                self.entries[_entry_key(entry)] = entry
            if change.announce is not None:
                self.events[change.announce.event_id] = change.announce
            if claim is not None:
                self.marks.complete(claim.consumer, claim.event_id, claim.token, claim.now_ms)

    def _check(self, change: MemberChange, claim: HeldClaim | None) -> None:
        if claim is not None:
            held = self.marks.marks.get((claim.consumer, claim.event_id))
            if held is None or held["state"] != "CLAIMED" or held["token"] != claim.token:
                raise MembershipClaimLost("the claim is not ours", event_id=claim.event_id)
        if any(_entry_key(e) in self.entries for e in change.entries) or (
            change.announce is not None and change.announce.event_id in self.events
        ):
            raise PointsAlreadyRecorded("this change was written before")
        stale = []
        if change.member_before is not None and change.member_after is not None:
            stale.append(_version(self.members.get(change.member_after.customer_sub)) != change.member_before.version)
        if change.balance_before is not None and change.balance_after is not None:
            stale.append(
                _version(self.balances.get(change.balance_after.customer_sub)) != change.balance_before.version
            )
        if change.book_before is not None and change.book_after is not None:
            key = (change.book_after.customer_sub, change.book_after.order_id)
            stale.append(_version(self.books.get(key)) != change.book_before.version)
        if change.activity_before is not None and change.activity_after is not None:
            stale.append(
                _version(self.activities.get(change.activity_after.customer_sub)) != change.activity_before.version
            )
        if change.spend_before is not None and change.spend_after is not None:
            key = (change.spend_after.customer_sub, change.spend_after.order_id)
            stored = self.spends.get(key)
            stale.append(stored is None or stored.version != change.spend_before.version)
        if any(stale):
            raise ConcurrentUpdate("the member's points changed meanwhile")

    def due(self, state: LotState, shard: int, until_ms: int, limit: int) -> list[OrderPoints]:
        def due_at(book: OrderPoints) -> int | None:
            return book.due_at_ms if state is LotState.FROZEN else book.expires_at_ms

        found = [
            b
            for b in self.books.values()
            if b.state is state and b.shard == shard and due_at(b) is not None and (due_at(b) or 0) <= until_ms
        ]
        return sorted(found, key=lambda b: (due_at(b) or 0, b.customer_sub, b.order_id))[:limit]

    def ledger(self, customer_sub: str, limit: int, cursor: Cursor) -> tuple[list[LedgerEntry], Cursor]:
        keys = sorted((k for k in self.entries if k[0] == customer_sub), reverse=True)
        if cursor is not None:
            keys = [k for k in keys if k[1] < cursor["sk"]]
        page = keys[:limit]
        more = len(keys) > limit
        return [self.entries[k] for k in page], ({"sk": page[-1][1]} if more and page else None)

    def tagged(self, tag: TagRange, shard: int, limit: int, cursor: Cursor) -> tuple[list[Activity], Cursor]:
        ordered = sorted(
            (a for a in self.activities.values() if model.shard_of(a.customer_sub) == shard),
            key=lambda a: a.sort_key(tag.ordering),
        )
        inside = [
            a
            for a in ordered
            if (tag.low is None or a.sort_key(tag.ordering) >= tag.low)
            and (tag.high is None or a.sort_key(tag.ordering) < tag.high)
            and (cursor is None or a.sort_key(tag.ordering) > cursor["position"])
        ]
        page = inside[:limit]
        more = len(inside) > limit
        next_cursor = {"position": page[-1].sort_key(tag.ordering)} if more and page else None
        return [a for a in page if a.orders >= tag.min_orders], next_cursor

    # -- spending at checkout (the data layer's HoldParts.spend, in the order's transaction) -----
    def spend(self, customer_sub: str, order_id: str, points: int, paid_fen: int, at_ms: int) -> None:
        """All or nothing, as the order's transaction: PointsAlreadyHeld if the order spent before,
        InsufficientPoints if fewer are available."""
        model.check_spend(points)
        with self.lock:
            if (customer_sub, order_id) in self.spends or (customer_sub, order_id) in self.holds:
                raise PointsAlreadyHeld("the order's points hold is not as expected")
            balance = self.balances.get(customer_sub)
            if balance is None or balance.available < points:
                raise InsufficientPoints("not enough points available")
            self._move(balance, model.spent_at_checkout(customer_sub, order_id, points, at_ms))
            self.spends[(customer_sub, order_id)] = OrderSpend(customer_sub, order_id, points, paid_fen)

    # -- PointsHolds ---------------------------------------------------------------------------
    def reserve(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        model.check_spend(points)
        with self.lock:
            hold = self.holds.get((customer_sub, order_id))
            if hold is not None:
                if hold == (points, "HELD"):
                    return
                raise PointsAlreadyHeld("the order's points hold is not as expected")
            balance = self.balances.get(customer_sub)
            if balance is None or balance.available < points:
                raise InsufficientPoints("not enough points available")
            self._move(balance, model.held(customer_sub, order_id, points, at_ms))
            self.holds[(customer_sub, order_id)] = (points, "HELD")

    def commit(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        with self.lock:
            if self._settled(customer_sub, order_id, points, "SPENT"):
                return
            self._move(self.balances[customer_sub], model.spent(customer_sub, order_id, points, at_ms))
            self.holds[(customer_sub, order_id)] = (points, "SPENT")

    def release(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        with self.lock:
            if self._settled(customer_sub, order_id, points, "RETURNED"):
                return
            balance = self.balances[customer_sub]
            self._move(balance, model.hold_returned(customer_sub, order_id, points, balance.debt, at_ms))
            self.holds[(customer_sub, order_id)] = (points, "RETURNED")

    def _settled(self, customer_sub: str, order_id: str, points: int, status: str) -> bool:
        hold = self.holds.get((customer_sub, order_id))
        if hold == (points, status):
            return True
        if hold != (points, "HELD"):
            raise PointsNotHeld("the order holds no such points", order_id=order_id)
        return False

    def _move(self, balance: PointsBalance, entry: LedgerEntry) -> None:
        after = balance.applied(entry)
        self.balances[balance.customer_sub] = replace(after, version=balance.version + 1)
        self.entries[_entry_key(entry)] = entry


def _version(item: Member | PointsBalance | OrderPoints | Activity | None) -> int:
    return item.version if item is not None else 0


def _entry_key(entry: LedgerEntry) -> tuple[str, str]:
    return entry.customer_sub, f"{iso(entry.at_ms)}#{entry.entry_id}"


class MemorySegmentJobs:
    """shared.membership.segments.SegmentJobs in memory, with the store's version condition."""

    def __init__(self) -> None:
        self.jobs: dict[str, SegmentIssue] = {}
        self.lock = threading.Lock()

    def get(self, job_id: str) -> SegmentIssue | None:
        return self.jobs.get(job_id)

    def save(self, before: SegmentIssue | None, after: SegmentIssue) -> SegmentIssue:
        with self.lock:
            stored = self.jobs.get(after.job_id)
            if _job_version(stored) != _job_version(before):
                raise ConcurrentUpdate("the segment issue changed meanwhile", job_id=after.job_id)
            saved = replace(after, version=_job_version(before) + 1)
            self.jobs[after.job_id] = saved
            return saved

    def running(self, limit: int) -> list[SegmentIssue]:
        found = [j for j in self.jobs.values() if j.status is JobStatus.RUNNING]
        return sorted(found, key=lambda j: (j.created_at_ms, j.job_id))[:limit]


def _job_version(job: SegmentIssue | None) -> int:
    return 0 if job is None else job.version


@dataclass
class DiesAfter:
    """A CouponIssue whose run dies (an exception out of the Lambda) after `after` coupons: a run
    killed in the middle of a page."""

    inner: CouponIssue
    after: int
    calls: int = 0

    def check(self, template_id: str) -> None:
        self.inner.check(template_id)

    def issue(self, template_id: str, member_id: str, key: str) -> Issued:
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("the Lambda timed out")
        return self.inner.issue(template_id, member_id, key)


@dataclass
class MemoryOrderPoints:
    """`shared.ordering.ports.PointsHolder` and `PointsReader` over a MemoryMembers: the spend is a
    part of the order's in-memory unit of work (all or nothing with the order), refused as the
    DynamoDB balance condition refuses it."""

    members: MemoryMembers
    rules: MemoryMembershipRules

    def __call__(self, customer_sub: str, points: int) -> PointsOffer:
        rules = self.rules.current()
        balance = self.members.balances.get(customer_sub)
        return PointsOffer(
            points,
            rules.redeem_points_per_yuan,
            rules.redeem_cap_bp,
            rules.redeem_cap_fen,
            balance.available if balance is not None else 0,
        )

    def spend(self, uow: OrderingUnitOfWork, order: Order, points: int) -> None:
        from tests.fakes.ordering import MemoryOrderingUnitOfWork

        assert isinstance(uow, MemoryOrderingUnitOfWork)
        sub, paid = order.customer_id, sum(line.payable_fen for line in order.lines)

        def check() -> Exception | None:
            if (sub, order.order_id) in self.members.spends:
                return PointsAlreadyHeld("the order's points hold is not as expected")
            balance = self.members.balances.get(sub)
            return (
                InsufficientPoints("not enough points available")
                if balance is None or balance.available < points
                else None
            )

        def apply() -> None:
            self.members.spend(sub, order.order_id, points, paid, order.created_at_ms)

        uow.add_part(("points", sub, order.order_id), check, apply)
