"""The membership ports (shared.membership.ports): one class of tests against the in-memory fake
(tests/fakes/membership.py) and against the DynamoDB stores on a moto table from infra/template.yaml."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.kernel.errors import ConcurrentUpdate
from shared.kernel.events import DomainEvent, EventType
from shared.membership import model
from shared.membership.earning import change_of
from shared.membership.model import (
    DAY_MS,
    DEFAULT_RULES,
    InsufficientPoints,
    Level,
    LotState,
    Member,
    MembershipRules,
    OrderPoints,
    PointsAlreadyHeld,
    PointsBalance,
    PointsNotHeld,
    shard_of,
)
from shared.membership.ports import MemberChange, MembershipClaimLost, PointsAlreadyRecorded
from shared.messaging.ports import HeldClaim
from tests.fakes.membership import MemoryMembers, MemoryMembershipRules
from tests.fakes.messaging import MemoryMarks

NOV_3 = 1_793_700_000_000  # 2026-11-03T10:00:00Z
WINDOW = 7 * DAY_MS
RULES = MembershipRules((Level(0, "会员", 0), Level(1, "银卡", 10_000)), points_expire_after_days=30)


@pytest.fixture(params=["memory", "dynamodb"])
def ports(request: pytest.FixtureRequest):
    """(store, holds, rules, marks)"""
    if request.param == "memory":
        marks = MemoryMarks()
        store = MemoryMembers(marks)
        return store, store, MemoryMembershipRules(), marks
    request.getfixturevalue("table")
    from shared.data.stores.consumer_marks import DynamoMarks
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules, DynamoPointsHolds

    return DynamoMembers(), DynamoPointsHolds(), DynamoMembershipRules(), DynamoMarks()


def spend(store, customer: str, order_id: str, points: int, paid_fen: int, at_ms: int) -> None:
    """Points spent at checkout, as the order's transaction spends them (the parts alone here)."""
    if isinstance(store, MemoryMembers):
        store.spend(customer, order_id, points, paid_fen, at_ms)
        return
    from shared.data.stores.membership import hold_parts
    from shared.data.transactions import Transaction, TransactionCancelled

    parts = hold_parts(Transaction())
    parts.spend(customer, order_id, points, paid_fen, at_ms)
    try:
        parts.tx.commit()
    except TransactionCancelled as cancelled:
        parts.raise_domain_error(cancelled)
        raise


def completed(store, customer: str, order_id: str, paid_fen: int, at_ms: int = NOV_3) -> None:
    """An order's completion written as the consumer writes it."""
    state = store.state(customer, order_id)
    member = state.member or Member(customer, at_ms)
    balance = state.balance or PointsBalance(customer)
    book = state.book or OrderPoints(customer, order_id, paid_fen)
    step = model.complete(book, member, balance, RULES, at_ms, WINDOW)
    store.write(change_of(state, step, balance, book, member))


def released(store, customer: str, order_id: str, at_ms: int) -> None:
    state = store.state(customer, order_id)
    step = model.release(state.book, state.balance, RULES, at_ms)
    store.write(change_of(state, step, state.balance, state.book))


class TestMembershipPorts:
    def test_enrolment_is_once_and_state_reads_what_was_written(self, ports):
        store, _, _, _ = ports
        first = store.enrol(Member("c-1", NOV_3))
        again = store.enrol(Member("c-1", NOV_3 + 5))
        assert first == again == Member("c-1", NOV_3, version=1)
        completed(store, "c-1", "o-1", 12_345)
        state = store.state("c-1", "o-1")
        assert state.member == Member("c-1", NOV_3, level=1, growth_fen=12_345, level_changed_at_ms=NOV_3, version=2)
        assert state.balance == PointsBalance("c-1", frozen=123, version=1)
        assert state.book.state is LotState.FROZEN and state.book.frozen_points == 123
        assert state.book.due_at_ms == NOV_3 + WINDOW and state.book.version == 1
        assert store.state("c-1", "o-2").book is None and store.state("c-2", None).member is None

    def test_a_write_is_all_or_nothing_over_the_versions_read(self, ports):
        store, _, _, _ = ports
        completed(store, "c-1", "o-1", 10_000)
        state = store.state("c-1", "o-1")
        step = model.release(state.book, state.balance, RULES, NOV_3 + WINDOW)
        stale = replace(state.balance, version=0)  # as if no balance were stored
        with pytest.raises(ConcurrentUpdate):
            store.write(replace(change_of(state, step, state.balance, state.book), balance_before=stale))
        assert store.state("c-1", "o-1") == state  # nothing of it written: not the lot, not the entry
        assert [e.kind for e in store.ledger("c-1", 10, None)[0]] == [model.EntryKind.EARNED]
        store.write(change_of(state, step, state.balance, state.book))
        with pytest.raises((ConcurrentUpdate, PointsAlreadyRecorded)):
            store.write(change_of(state, step, state.balance, state.book))  # the same move again
        assert store.state("c-1", None).balance == PointsBalance("c-1", available=100, released_total=100, version=2)

    def test_an_entry_or_an_announcement_written_before_refuses_the_write(self, ports):
        store, _, _, _ = ports
        cause = DomainEvent(EventType.ORDER_COMPLETED, "o-1", {"order_id": "o-1", "customer_id": "c-1"})
        member = Member("c-1", NOV_3)
        grown = member.grown(20_000, RULES, NOV_3)
        announce = model.level_changed(member, grown, cause)
        assert announce is not None
        store.write(MemberChange(member_before=member, member_after=grown, announce=announce))
        stored = store.member("c-1")
        with pytest.raises(PointsAlreadyRecorded):
            store.write(MemberChange(member_before=stored, member_after=stored, announce=announce))
        assert store.member("c-1") == stored

    def test_a_claimed_write_marks_the_event_done_and_a_lost_claim_writes_nothing(self, ports):
        store, _, _, marks = ports
        marks.claim("membership", "e-1", "theirs", NOV_3, 60_000)
        member = Member("c-1", NOV_3)
        change = MemberChange(member_before=member, member_after=member.grown(100, RULES, NOV_3))
        with pytest.raises(MembershipClaimLost):
            store.write(change, HeldClaim("membership", "e-1", "mine", NOV_3 + 1))
        assert store.member("c-1") is None
        marks.claim("membership", "e-2", "mine", NOV_3, 60_000)
        store.write(change, HeldClaim("membership", "e-2", "mine", NOV_3 + 1))
        assert store.member("c-1").growth_fen == 100
        assert marks.claim("membership", "e-2", "again", NOV_3 + 2, 60_000).value == "done"

    def test_lots_are_due_by_state_shard_and_time_and_leave_the_queue_when_moved(self, ports):
        store, _, _, _ = ports
        customers = [f"c-{n}" for n in range(8)]
        assert len({shard_of(c) for c in customers}) == model.POINTS_SHARDS
        for n, customer in enumerate(customers):
            completed(store, customer, "o-1", 10_000, NOV_3 + n * 1_000)
        for shard in range(model.POINTS_SHARDS):
            due = store.due(LotState.FROZEN, shard, NOV_3 + WINDOW + 3_500, 50)
            mine = [c for n, c in enumerate(customers) if shard_of(c) == shard and n <= 3]
            assert [b.customer_sub for b in due] == mine  # oldest first, none due later
        first = customers[0]
        released(store, first, "o-1", NOV_3 + WINDOW)
        shard = shard_of(first)
        assert first not in [b.customer_sub for b in store.due(LotState.FROZEN, shard, NOV_3 + 2 * WINDOW, 50)]
        assert store.due(LotState.RELEASED, shard, NOV_3 + WINDOW + 30 * DAY_MS - 1, 50) == []
        [lot] = store.due(LotState.RELEASED, shard, NOV_3 + WINDOW + 30 * DAY_MS, 50)
        assert (lot.customer_sub, lot.credited, lot.released_through) == (first, 100, 100)
        state = store.state(first, "o-1")
        step = model.expire(state.book, state.balance, NOV_3 + WINDOW + 30 * DAY_MS)
        store.write(change_of(state, step, state.balance, state.book))
        assert store.due(LotState.RELEASED, shard, NOV_3 + 99 * WINDOW, 50) == []
        assert store.state(first, None).balance.available == 0

    def test_the_ledger_is_newest_first_in_pages(self, ports):
        store, holds, _, _ = ports
        completed(store, "c-1", "o-1", 50_000)
        released(store, "c-1", "o-1", NOV_3 + WINDOW)
        for n in range(3):
            holds.reserve("c-1", f"o-spend-{n}", 10, NOV_3 + WINDOW + 1_000 * (n + 1))
        first, cursor = store.ledger("c-1", 3, None)
        rest, end = store.ledger("c-1", 3, cursor)
        kinds = [(e.kind.value, e.order_id) for e in first + rest]
        assert kinds == [
            ("held", "o-spend-2"),
            ("held", "o-spend-1"),
            ("held", "o-spend-0"),
            ("released", "o-1"),
            ("earned", "o-1"),
        ]
        assert store.ledger("c-2", 3, None) == ([], None)
        assert end is None or store.ledger("c-1", 3, end) == ([], None)

    def test_holds_move_the_balance_under_conditions_and_are_idempotent_per_order(self, ports):
        store, holds, _, _ = ports
        with pytest.raises(InsufficientPoints):
            holds.reserve("c-1", "o-a", 1, NOV_3)  # no balance at all
        completed(store, "c-1", "o-1", 30_000)
        released(store, "c-1", "o-1", NOV_3 + WINDOW)
        at = NOV_3 + WINDOW + 1
        with pytest.raises(InsufficientPoints):
            holds.reserve("c-1", "o-a", 301, at)
        holds.reserve("c-1", "o-a", 100, at)
        holds.reserve("c-1", "o-a", 100, at + 5)  # a retry: no second hold
        with pytest.raises(PointsAlreadyHeld):
            holds.reserve("c-1", "o-a", 50, at)
        holds.reserve("c-1", "o-b", 200, at)
        assert store.state("c-1", None).balance.available == 0
        holds.commit("c-1", "o-a", 100, at)
        holds.commit("c-1", "o-a", 100, at)
        holds.release("c-1", "o-b", 200, at)
        holds.release("c-1", "o-b", 200, at)
        with pytest.raises(PointsNotHeld):
            holds.commit("c-1", "o-b", 200, at)
        with pytest.raises(PointsNotHeld):
            holds.release("c-1", "o-c", 5, at)
        balance = store.state("c-1", None).balance
        assert (balance.available, balance.reserved, balance.debt, balance.released_total) == (200, 0, 0, 300)
        # A whole write after the holds still sees their version (each added 1)
        state = store.state("c-1", None)
        store.write(MemberChange(balance_before=state.balance, balance_after=state.balance))

    def test_a_checkout_spend_is_read_back_and_what_comes_back_is_written_on_its_version(self, ports):
        store, _, _, _ = ports
        completed(store, "c-1", "o-1", 30_000)
        released(store, "c-1", "o-1", NOV_3 + WINDOW)
        at = NOV_3 + WINDOW + 1
        with pytest.raises(InsufficientPoints):
            spend(store, "c-1", "o-s", 301, 9_000, at)
        spend(store, "c-1", "o-s", 100, 9_000, at)
        with pytest.raises(PointsAlreadyHeld):  # one spend per order
            spend(store, "c-1", "o-s", 100, 9_000, at)
        state = store.state("c-1", "o-s")
        assert state.spend == model.OrderSpend("c-1", "o-s", 100, 9_000)
        assert state.balance.available == 200
        # A refund's share written as the consumer writes it, conditional on the spend's version
        spent, after, entry = model.spend_refunded(state.spend, state.balance, "r-1", 3_000, at)
        change = MemberChange(
            balance_before=state.balance,
            balance_after=after,
            spend_before=state.spend,
            spend_after=spent,
            entries=(entry,),
        )
        store.write(change)
        with pytest.raises(ConcurrentUpdate):
            store.write(replace(change, balance_before=store.state("c-1", None).balance, entries=()))
        again = store.state("c-1", "o-s")
        assert (
            again.spend == replace(spent, version=2) and again.spend.returned == 33 and again.balance.available == 233
        )
        assert store.state("c-1", None).spend is None

    def test_rules_are_the_defaults_until_saved_and_each_save_is_the_next_version(self, ports):
        _, _, rules, _ = ports
        assert rules.current() == DEFAULT_RULES
        rules.save(replace(RULES, version=1))
        assert rules.current() == replace(RULES, version=1)
        with pytest.raises(ConcurrentUpdate):
            rules.save(replace(RULES, version=1))
        rules.save(replace(RULES, points_per_yuan=2, version=2))
        assert rules.current().points_per_yuan == 2 and rules.current().version == 2
