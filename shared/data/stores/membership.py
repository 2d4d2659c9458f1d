"""Members, points and the membership rules in DynamoDB (docs/data-model.md, "Members"): implements
shared.membership.ports.RulesStore, MemberStore and PointsHolds.

A member write is one TransactWriteItems: the profile, the balance and the order's lot (each a Put
conditional on the version read, or on not existing), the new ledger entries (`attribute_not_exists`),
the MemberLevelChanged it announces (outbox) and with a claim the consumer's mark set DONE on its
token. A spend is one too: the order's hold item, the balance moved by `ADD` under a condition that
does the arithmetic (`available >= :points`), and its entry; `hold_parts` adds those parts to
another capability's transaction (an order's), as `coupon_parts` does for coupons.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from shared.data import outbox
from shared.data.batch_get import get_items
from shared.data.items.membership import (
    MemberActivityItem,
    MemberFirstOrderItem,
    MemberProfileItem,
    MembershipRulesItem,
    OrderPointsItem,
    PointsBalanceItem,
    PointsEntryItem,
    PointsHoldItem,
    SegmentIssueItem,
)
from shared.data.stores.consumer_marks import done_in
from shared.data.stores.ordering_uow import DynamoOrderingUnitOfWork
from shared.data.transactions import Transaction, TransactionCancelled, condition_failed, translated
from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate
from shared.membership import model
from shared.membership.model import (
    DEFAULT_RULES,
    EntryKind,
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
from shared.membership.segments import JobStatus, SegmentIssue
from shared.membership.tags import Activity, Ordering, Tag, TagRange
from shared.messaging.ports import HeldClaim
from shared.ordering.model import Order
from shared.ordering.ports import OrderingUnitOfWork
from shared.ordering.pricing import PointsOffer

HELD, SPENT, RETURNED = "HELD", "SPENT", "RETURNED"
HOLD_LABEL, BALANCE_LABEL = "points hold", "points balance"


class DynamoMembershipRules:
    def current(self) -> MembershipRules:
        with translated():
            try:
                item = MembershipRulesItem.get(*MembershipRulesItem.key(), consistent_read=True)
            except DoesNotExist:
                return DEFAULT_RULES
        return MembershipRules.of(item.body, version=int(item.version))

    def save(self, rules: MembershipRules) -> None:
        pk, sk = MembershipRulesItem.key()
        body = {**rules.view()}
        body.pop("version")
        previous = (
            MembershipRulesItem.pk.does_not_exist()
            if rules.version == 1
            else MembershipRulesItem.version == rules.version - 1
        )
        with translated():
            try:
                MembershipRulesItem(pk, sk, version=rules.version, body=body).save(condition=previous)
            except PutError as exc:
                if condition_failed(exc):
                    raise ConcurrentUpdate("the membership rules changed meanwhile", version=rules.version) from exc
                raise


class DynamoMembers:
    def member(self, customer_sub: str) -> Member | None:
        with translated():
            try:
                return _member_of(MemberProfileItem.get(*MemberProfileItem.key(customer_sub), consistent_read=True))
            except DoesNotExist:
                return None

    def enrol(self, member: Member) -> Member:
        with translated():
            try:
                _member_item(member, 1).save(condition=MemberProfileItem.pk.does_not_exist())
                return _replace_version(member, 1)
            except PutError as exc:
                if not condition_failed(exc):
                    raise
        stored = self.member(member.customer_sub)
        if stored is None:  # enrolled and gone in between: nothing deletes members
            raise ConcurrentUpdate("the member changed meanwhile", customer_id=member.customer_sub)
        return stored

    def state(self, customer_sub: str, order_id: str | None) -> MemberState:
        keys = [
            MemberProfileItem.key(customer_sub),
            PointsBalanceItem.key(customer_sub),
            MemberActivityItem.key(customer_sub),
        ]
        if order_id is not None:
            keys += [OrderPointsItem.key(customer_sub, order_id), PointsHoldItem.key(customer_sub, order_id)]
        found = get_items(keys, consistent=True).values()
        member = next((_member_of(i) for i in found if isinstance(i, MemberProfileItem)), None)
        balance = next((_balance_of(i) for i in found if isinstance(i, PointsBalanceItem)), None)
        book = next((_book_of(i) for i in found if isinstance(i, OrderPointsItem)), None)
        activity = next((_activity_of(i) for i in found if isinstance(i, MemberActivityItem)), None)
        spend = next((_spend_of(i) for i in found if isinstance(i, PointsHoldItem) and i.version is not None), None)
        return MemberState(member, balance, book, activity, spend)

    def write(self, change: MemberChange, claim: HeldClaim | None = None) -> None:
        tx = Transaction()
        if change.member_after is not None and change.member_before is not None:
            before = change.member_before.version
            tx.put(_member_item(change.member_after, before + 1), "member", _unchanged(MemberProfileItem, before))
        if change.balance_after is not None and change.balance_before is not None:
            before = change.balance_before.version
            tx.put(_balance_item(change.balance_after, before + 1), "balance", _unchanged(PointsBalanceItem, before))
        if change.book_after is not None and change.book_before is not None:
            before = change.book_before.version
            tx.put(_book_item(change.book_after, before + 1), "book", _unchanged(OrderPointsItem, before))
        _activity_parts(tx, change)
        _spend_parts(tx, change)
        for n, entry in enumerate(change.entries):
            tx.put(entry_item(entry), f"entry {n}", PointsEntryItem.pk.does_not_exist())
        if change.announce is not None:
            outbox.emit(tx, change.announce)
        if claim is not None:
            done_in(tx, claim)
        try:
            tx.commit()
        except TransactionCancelled as exc:
            if "mark" in exc.failed:
                raise MembershipClaimLost("the claim on the event is not ours") from exc
            if any(label.startswith(("entry", "event:")) for label in exc.failed):
                raise PointsAlreadyRecorded("this change was written before", failed=exc.failed) from exc
            raise ConcurrentUpdate("the member's points changed meanwhile", failed=exc.failed) from exc

    def due(self, state: LotState, shard: int, until_ms: int, limit: int) -> list[OrderPoints]:
        with translated():
            found = OrderPointsItem.gsi2.query(
                _queue(state, shard), OrderPointsItem.gsi2sk <= f"{iso(until_ms)}#~", limit=limit
            )
            return [_book_of(i) for i in found if isinstance(i, OrderPointsItem)]

    def ledger(self, customer_sub: str, limit: int, cursor: Cursor) -> tuple[list[LedgerEntry], Cursor]:
        pk, _ = PointsBalanceItem.key(customer_sub)
        with translated():
            result = PointsEntryItem.query(
                pk,
                PointsEntryItem.sk.startswith("PL#"),
                scan_index_forward=False,
                limit=limit,
                last_evaluated_key=cursor,
            )
            found = [_entry_of(customer_sub, i) for i in result if isinstance(i, PointsEntryItem)]
            return found, result.last_evaluated_key

    def tagged(self, tag: TagRange, shard: int, limit: int, cursor: Cursor) -> tuple[list[Activity], Cursor]:
        item_cls: Any = MemberFirstOrderItem if tag.ordering is Ordering.FIRST else MemberActivityItem
        index, sort = (
            (item_cls.gsi2, item_cls.gsi2sk) if tag.ordering is Ordering.AMOUNT else (item_cls.gsi1, item_cls.gsi1sk)
        )
        condition = None
        if tag.low is not None and tag.high is not None:
            condition = sort.between(tag.low, tag.high)  # inclusive: the high end is left out below
        elif tag.low is not None:
            condition = sort >= tag.low
        elif tag.high is not None:
            condition = sort < tag.high
        with translated():
            result = index.query(_tag_partition(tag.ordering, shard), condition, limit=limit, last_evaluated_key=cursor)
            found = list(result)
            next_cursor = result.last_evaluated_key
        inside = [i for i in found if tag.high is None or _sort_key_of(i, tag.ordering) < tag.high]
        subs = [str(i.customer_sub) for i in inside]
        if tag.ordering is Ordering.FIRST and subs:  # the index item is not the activity: read those
            inside = list(get_items([MemberActivityItem.key(sub) for sub in subs]).values())
        by_sub = {i.customer_sub: _activity_of(i) for i in inside if isinstance(i, MemberActivityItem)}
        members = [by_sub[sub] for sub in subs if sub in by_sub and by_sub[sub].orders >= tag.min_orders]
        return members, next_cursor


class DynamoSegmentJobs:
    """shared.membership.segments.SegmentJobs."""

    def get(self, job_id: str) -> SegmentIssue | None:
        with translated():
            try:
                return _job_of(SegmentIssueItem.get(*SegmentIssueItem.key(job_id), consistent_read=True))
            except DoesNotExist:
                return None

    def save(self, before: SegmentIssue | None, after: SegmentIssue) -> SegmentIssue:
        version = 0 if before is None else before.version
        stored = replace(after, version=version + 1)
        with translated():
            try:
                _job_item(stored).save(condition=_unchanged(SegmentIssueItem, version))
            except PutError as exc:
                if condition_failed(exc):
                    raise ConcurrentUpdate("the segment issue changed meanwhile", job_id=after.job_id) from exc
                raise
        return stored

    def running(self, limit: int) -> list[SegmentIssue]:
        with translated():
            found = SegmentIssueItem.gsi2.query(RUNNING_JOBS, limit=limit)
            return [_job_of(i) for i in found if isinstance(i, SegmentIssueItem)]


RUNNING_JOBS = "SEGISSUE#RUNNING"


def _job_item(job: SegmentIssue) -> SegmentIssueItem:
    pk, sk = SegmentIssueItem.key(job.job_id)
    running = job.status is JobStatus.RUNNING
    body = {
        "template_id": job.template_id,
        "tag": str(job.tag),
        "range": job.range.view(),
        "created_at_ms": job.created_at_ms,
        "created_by": job.created_by,
        "status": str(job.status),
        "cursor": job.cursor,
        "pages": job.pages,
        "issued": job.issued,
        "skipped": job.skipped,
        "stop_reason": job.stop_reason,
        "lease_until_ms": job.lease_until_ms,
        "updated_at_ms": job.updated_at_ms,
    }
    return SegmentIssueItem(
        pk,
        sk,
        version=job.version,
        body=body,
        created_at=job.created_at_ms,
        gsi2pk=RUNNING_JOBS if running else None,
        gsi2sk=f"{iso(job.created_at_ms)}#{job.job_id}" if running else None,
    )


def _job_of(item: SegmentIssueItem) -> SegmentIssue:
    body: dict[str, Any] = dict(item.body)
    return SegmentIssue(
        job_id=item.pk.removeprefix("SEGISSUE#"),
        template_id=body["template_id"],
        tag=Tag(body["tag"]),
        range=TagRange.of_view(body["range"]),
        created_at_ms=int(body["created_at_ms"]),
        created_by=body["created_by"],
        status=JobStatus(body["status"]),
        cursor=body.get("cursor"),
        pages=int(body["pages"]),
        issued=int(body["issued"]),
        skipped={k: int(v) for k, v in (body.get("skipped") or {}).items()},
        stop_reason=body.get("stop_reason"),
        lease_until_ms=int(body["lease_until_ms"]),
        updated_at_ms=int(body["updated_at_ms"]),
        version=int(item.version),
    )


# -- spending ------------------------------------------------------------------------------------
class HoldParts:
    """The parts of a spend, added to a transaction the caller commits (its own, or an order's);
    `raise_domain_error` says what a cancellation meant for them."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def reserve(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        model.check_spend(points)
        pk, sk = PointsHoldItem.key(customer_sub, order_id)
        hold = PointsHoldItem(pk, sk, order_id=order_id, points=points, status=HELD, created_at=at_ms)
        self.tx.put(hold, HOLD_LABEL, PointsHoldItem.pk.does_not_exist())
        self._move(
            customer_sub, model.held(customer_sub, order_id, points, at_ms), PointsBalanceItem.available >= points
        )

    def spend(self, customer_sub: str, order_id: str, points: int, paid_fen: int, at_ms: int) -> None:
        """Spent at checkout, in the order's transaction: the hold item SPENT at once (version 1),
        the balance's `available` down only if it has the points (the condition does the sum)."""
        model.check_spend(points)
        spend = OrderSpend(customer_sub, order_id, points, paid_fen)
        self.tx.put(_spend_item(spend, 1, at_ms), HOLD_LABEL, PointsHoldItem.pk.does_not_exist())
        entry = model.spent_at_checkout(customer_sub, order_id, points, at_ms)
        self._move(customer_sub, entry, PointsBalanceItem.available >= points)

    def commit(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        self._settle_hold(customer_sub, order_id, points, SPENT)
        self._move(
            customer_sub, model.spent(customer_sub, order_id, points, at_ms), PointsBalanceItem.reserved >= points
        )

    def release(self, customer_sub: str, order_id: str, points: int, debt: int, at_ms: int) -> None:
        """`debt` as read: the points go to it first, and the write is conditional on it."""
        self._settle_hold(customer_sub, order_id, points, RETURNED)
        entry = model.hold_returned(customer_sub, order_id, points, debt, at_ms)
        self._move(customer_sub, entry, (PointsBalanceItem.reserved >= points) & (PointsBalanceItem.debt == debt))

    def _settle_hold(self, customer_sub: str, order_id: str, points: int, status: str) -> None:
        condition = (PointsHoldItem.status == HELD) & (PointsHoldItem.points == points)
        key = PointsHoldItem.key(customer_sub, order_id)
        self.tx.update(PointsHoldItem, key, [PointsHoldItem.status.set(status)], HOLD_LABEL, condition)

    def _move(self, customer_sub: str, entry: LedgerEntry, condition: Any) -> None:
        actions = [
            getattr(PointsBalanceItem, name).add(delta)
            for name, delta in (
                ("available", entry.available),
                ("reserved", entry.reserved),
                ("debt", entry.debt),
            )
            if delta
        ]
        actions.append(PointsBalanceItem.version.add(1))
        key = PointsBalanceItem.key(customer_sub)
        self.tx.update(PointsBalanceItem, key, actions, BALANCE_LABEL, condition)
        self.tx.put(entry_item(entry), f"entry {entry.kind.value}", PointsEntryItem.pk.does_not_exist())

    def raise_domain_error(self, cancelled: TransactionCancelled) -> None:
        if HOLD_LABEL in cancelled.failed:
            raise PointsAlreadyHeld("the order's points hold is not as expected") from cancelled
        if BALANCE_LABEL in cancelled.failed:
            raise InsufficientPoints("not enough points available") from cancelled


def hold_parts(tx: Transaction) -> HoldParts:
    return HoldParts(tx)


# -- spending at checkout (shared.ordering.ports.PointsReader and PointsHolder) -------------------
def points_offer(customer_sub: str, points: int) -> PointsOffer:
    """The merchant's spending rule and the member's available points: one BatchGetItem, only for
    a cart that names points (the order's conditional write is the check that counts)."""
    found = get_items([MembershipRulesItem.key(), PointsBalanceItem.key(customer_sub)]).values()
    rules_item = next((i for i in found if isinstance(i, MembershipRulesItem)), None)
    rules = DEFAULT_RULES if rules_item is None else MembershipRules.of(rules_item.body, int(rules_item.version))
    balance = next((i for i in found if isinstance(i, PointsBalanceItem)), None)
    return PointsOffer(
        points=points,
        per_yuan=rules.redeem_points_per_yuan,
        cap_bp=rules.redeem_cap_bp,
        cap_fen=rules.redeem_cap_fen,
        available=int(balance.available) if balance is not None else 0,
    )


class DynamoOrderPoints:
    """Takes an order's points off the member's balance as parts of the order's own transaction."""

    def spend(self, uow: OrderingUnitOfWork, order: Order, points: int) -> None:
        if not isinstance(uow, DynamoOrderingUnitOfWork):
            raise TypeError("points join DynamoDB units of work only")
        parts = hold_parts(uow.tx)
        paid = sum(line.payable_fen for line in order.lines)
        parts.spend(order.customer_id, order.order_id, points, paid, order.created_at_ms)
        uow.translate(parts.raise_domain_error)


class DynamoPointsHolds:
    def reserve(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        try:
            self._commit(lambda parts: parts.reserve(customer_sub, order_id, points, at_ms))
        except PointsAlreadyHeld:
            hold = self._hold(customer_sub, order_id)
            if hold is not None and hold.status == HELD and int(hold.points) == points:
                return  # the same order asked again (a retry whose first answer was lost)
            raise

    def commit(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        self._settled(customer_sub, order_id, points, SPENT, lambda p: p.commit(customer_sub, order_id, points, at_ms))

    def release(self, customer_sub: str, order_id: str, points: int, at_ms: int) -> None:
        with translated():
            balance = PointsBalanceItem.get(*PointsBalanceItem.key(customer_sub), consistent_read=True)
        debt = int(balance.debt)
        self._settled(
            customer_sub, order_id, points, RETURNED, lambda p: p.release(customer_sub, order_id, points, debt, at_ms)
        )

    def _settled(self, customer_sub: str, order_id: str, points: int, status: str, add: Any) -> None:
        try:
            self._commit(add)
        except PointsAlreadyHeld as exc:
            hold = self._hold(customer_sub, order_id)
            if hold is not None and hold.status == status and int(hold.points) == points:
                return  # done before
            if hold is not None and hold.status == HELD and int(hold.points) == points:
                raise ConcurrentUpdate("the balance changed meanwhile; retry", order_id=order_id) from exc
            raise PointsNotHeld("the order holds no such points", order_id=order_id) from exc
        except InsufficientPoints as exc:  # the reserved or debt condition: the balance moved meanwhile
            raise ConcurrentUpdate("the balance changed meanwhile; retry", order_id=order_id) from exc

    def _commit(self, add: Any) -> None:
        parts = hold_parts(Transaction())
        add(parts)
        try:
            parts.tx.commit()
        except TransactionCancelled as cancelled:
            parts.raise_domain_error(cancelled)
            raise

    def _hold(self, customer_sub: str, order_id: str) -> PointsHoldItem | None:
        with translated():
            try:
                return PointsHoldItem.get(*PointsHoldItem.key(customer_sub, order_id), consistent_read=True)
            except DoesNotExist:
                return None


# -- mapping -------------------------------------------------------------------------------------
def _spend_item(spend: OrderSpend, version: int, at_ms: int | None = None) -> PointsHoldItem:
    pk, sk = PointsHoldItem.key(spend.customer_sub, spend.order_id)
    later = version > 1  # what came back is written by the membership consumer, not by checkout
    return PointsHoldItem(
        pk,
        sk,
        order_id=spend.order_id,
        points=spend.points,
        status=spend.status,
        paid_fen=spend.paid_fen,
        refunded_fen=spend.refunded_fen if later else None,
        returned=spend.returned if later else None,
        refunds=list(spend.refunds) if later else None,
        version=version,
        created_at=at_ms,
    )


def _spend_of(item: PointsHoldItem) -> OrderSpend:
    return OrderSpend(
        customer_sub=item.pk.removeprefix("MEMBER#"),
        order_id=item.order_id,
        points=int(item.points),
        paid_fen=int(item.paid_fen or 0),
        status=item.status,
        refunded_fen=int(item.refunded_fen or 0),
        returned=int(item.returned or 0),
        refunds=tuple(item.refunds or ()),
        version=int(item.version or 1),
    )


def _unchanged(item_cls: Any, version: int) -> Any:
    return item_cls.pk.does_not_exist() if version == 0 else item_cls.version == version


def _replace_version(member: Member, version: int) -> Member:
    return replace(member, version=version)


def _member_item(member: Member, version: int) -> MemberProfileItem:
    pk, sk = MemberProfileItem.key(member.customer_sub)
    return MemberProfileItem(
        pk,
        sk,
        customer_sub=member.customer_sub,
        level=member.level,
        growth_fen=member.growth_fen,
        level_changed_at=member.level_changed_at_ms,
        version=version,
        created_at=member.created_at_ms,
    )


def _member_of(item: MemberProfileItem) -> Member:
    return Member(
        customer_sub=item.customer_sub,
        created_at_ms=int(item.created_at or 0),
        level=int(item.level),
        growth_fen=int(item.growth_fen),
        level_changed_at_ms=int(item.level_changed_at) if item.level_changed_at is not None else None,
        version=int(item.version),
    )


def _balance_item(balance: PointsBalance, version: int) -> PointsBalanceItem:
    pk, sk = PointsBalanceItem.key(balance.customer_sub)
    return PointsBalanceItem(
        pk,
        sk,
        customer_sub=balance.customer_sub,
        available=balance.available,
        frozen=balance.frozen,
        reserved=balance.reserved,
        debt=balance.debt,
        released_total=balance.released_total,
        version=version,
    )


def _balance_of(item: PointsBalanceItem) -> PointsBalance:
    return PointsBalance(
        customer_sub=item.customer_sub,
        available=int(item.available),
        frozen=int(item.frozen),
        reserved=int(item.reserved),
        debt=int(item.debt),
        released_total=int(item.released_total),
        version=int(item.version),
    )


BOOK_FIELDS = tuple(
    name for name in OrderPoints.__dataclass_fields__ if name not in ("customer_sub", "order_id", "state", "version")
)


def _queue(state: LotState, shard: int) -> str:
    return f"POINTS#{state.value.upper()}#{shard}"


def _index_fields(book: OrderPoints) -> tuple[str | None, str | None]:
    due = {LotState.FROZEN: book.due_at_ms, LotState.RELEASED: book.expires_at_ms}.get(book.state)
    if due is None:
        return None, None
    return _queue(book.state, book.shard), f"{iso(due)}#{book.customer_sub}#{book.order_id}"


def _book_item(book: OrderPoints, version: int) -> OrderPointsItem:
    pk, sk = OrderPointsItem.key(book.customer_sub, book.order_id)
    gsi2pk, gsi2sk = _index_fields(book)
    body = {name: getattr(book, name) for name in BOOK_FIELDS}
    body["refunds"] = list(book.refunds)
    return OrderPointsItem(
        pk,
        sk,
        customer_sub=book.customer_sub,
        order_id=book.order_id,
        state=book.state.value,
        version=version,
        body=body,
        gsi2pk=gsi2pk,
        gsi2sk=gsi2sk,
    )


def _book_of(item: OrderPointsItem) -> OrderPoints:
    body: dict[str, Any] = dict(item.body)
    body["refunds"] = tuple(body.get("refunds") or ())
    return OrderPoints(
        customer_sub=item.customer_sub,
        order_id=item.order_id,
        state=LotState(item.state),
        version=int(item.version),
        **{name: body[name] for name in BOOK_FIELDS if name in body},
    )


def _activity_parts(tx: Transaction, change: MemberChange) -> None:
    """The activity item (and at the first paid order, its first-order index item)."""
    if change.activity_after is None or change.activity_before is None:
        return
    before, after = change.activity_before.version, change.activity_after
    tx.put(_activity_item(after, before + 1), "activity", _unchanged(MemberActivityItem, before))
    if before == 0:
        tx.put(_first_order_item(after), "first order", MemberFirstOrderItem.pk.does_not_exist())


def _spend_parts(tx: Transaction, change: MemberChange) -> None:
    """What came back of the points an order spent at checkout, conditional on the version read."""
    if change.spend_after is not None and change.spend_before is not None:
        before = change.spend_before.version
        tx.put(_spend_item(change.spend_after, before + 1), "spend", PointsHoldItem.version == before)


def _tag_partition(ordering: Ordering, shard: int) -> str:
    return f"MTAG#{ordering.value.upper()}#{shard}"


def _sort_key_of(item: Any, ordering: Ordering) -> str:
    return str(item.gsi2sk if ordering is Ordering.AMOUNT else item.gsi1sk)


def _activity_item(activity: Activity, version: int) -> MemberActivityItem:
    pk, sk = MemberActivityItem.key(activity.customer_sub)
    shard = model.shard_of(activity.customer_sub)
    return MemberActivityItem(
        pk,
        sk,
        customer_sub=activity.customer_sub,
        first_order_at=activity.first_order_ms,
        last_order_at=activity.last_order_ms,
        orders=activity.orders,
        monetary_fen=activity.monetary_fen,
        store_id=activity.store_id,
        version=version,
        gsi1pk=_tag_partition(Ordering.LAST, shard),
        gsi1sk=activity.sort_key(Ordering.LAST),
        gsi2pk=_tag_partition(Ordering.AMOUNT, shard),
        gsi2sk=activity.sort_key(Ordering.AMOUNT),
    )


def _first_order_item(activity: Activity) -> MemberFirstOrderItem:
    pk, sk = MemberFirstOrderItem.key(activity.customer_sub)
    return MemberFirstOrderItem(
        pk,
        sk,
        customer_sub=activity.customer_sub,
        gsi1pk=_tag_partition(Ordering.FIRST, model.shard_of(activity.customer_sub)),
        gsi1sk=activity.sort_key(Ordering.FIRST),
    )


def _activity_of(item: MemberActivityItem) -> Activity:
    return Activity(
        customer_sub=item.customer_sub,
        first_order_ms=int(item.first_order_at),
        last_order_ms=int(item.last_order_at),
        orders=int(item.orders),
        monetary_fen=int(item.monetary_fen),
        store_id=item.store_id,
        version=int(item.version),
    )


def entry_item(entry: LedgerEntry) -> PointsEntryItem:
    pk, sk = PointsEntryItem.key(entry.customer_sub, iso(entry.at_ms), entry.entry_id)
    return PointsEntryItem(
        pk,
        sk,
        kind=entry.kind.value,
        order_id=entry.order_id,
        at=entry.at_ms,
        available=entry.available,
        frozen=entry.frozen,
        reserved=entry.reserved,
        debt=entry.debt,
        refund_id=entry.refund_id,
        created_at=entry.at_ms,
    )


def _entry_of(customer_sub: str, item: PointsEntryItem) -> LedgerEntry:
    return LedgerEntry(
        kind=EntryKind(item.kind),
        customer_sub=customer_sub,
        order_id=item.order_id,
        at_ms=int(item.at),
        available=int(item.available),
        frozen=int(item.frozen),
        reserved=int(item.reserved),
        debt=int(item.debt),
        refund_id=item.refund_id,
    )
