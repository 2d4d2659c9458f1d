"""Members, levels and points (shared/membership/) on in-memory ports, through the consumer runtime:
enrolment, growth and levels, points earned frozen through the after-sale window, returned pro rata
on refunds (frozen, available, or as debt), expired first in first out, spent through holds; and a
hypothesis property over random sequences: the ledger sums to the balance, no point is spent twice."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kernel.clock import FakeClock, iso
from shared.kernel.errors import ConcurrentUpdate, RuleViolation
from shared.kernel.events import DomainEvent, EventType
from shared.membership.accounts import MemberAccounts
from shared.membership.earning import PointsEarning
from shared.membership.expiry import PointsExpiry
from shared.membership.model import (
    DAY_MS,
    EntryKind,
    InsufficientPoints,
    Level,
    MembershipRules,
    PointsAlreadyHeld,
    PointsNotHeld,
)
from shared.membership.release import PointsRelease
from shared.membership.rules import MembershipRulesAdmin
from shared.messaging.consumers import RetryPolicy, Runtime, consume
from tests.events import sqs_batch_of
from tests.fakes.membership import MemoryMembers, MemoryMembershipRules
from tests.fakes.messaging import MemoryMarks, MemoryQueue

WINDOW_MS = 7 * DAY_MS
LEVELS = MembershipRules(
    (
        Level(0, "普通会员", 0),
        Level(1, "银卡", 50_000, discount_bp=200, points_multiplier_bp=15_000),
        Level(2, "金卡", 200_000, member_price=True, discount_bp=500, points_multiplier_bp=20_000),
    ),
    points_per_yuan=1,
    points_expire_after_days=30,
)


class Kit:
    def __init__(self, rules: MembershipRules | None = LEVELS) -> None:
        self.clock = FakeClock()
        self.marks = MemoryMarks()
        self.store = MemoryMembers(self.marks)
        self.rules = MemoryMembershipRules()
        if rules is not None:
            MembershipRulesAdmin(self.rules).save(rules)
        self.consumer = PointsEarning(self.store, self.rules, WINDOW_MS)
        self.runtime = Runtime(self.marks, MemoryQueue(), RetryPolicy(base_s=0, lease_s=60), self.clock.now_ms)
        self.accounts = MemberAccounts(self.store, self.rules, self.clock)
        self.release = PointsRelease(self.store, self.rules, self.clock)
        self.expiry = PointsExpiry(self.store, self.clock)
        self.refunds = 0

    def deliver(self, *events: DomainEvent) -> dict:
        batch = sqs_batch_of([json.dumps(event.to_message()) for event in events])
        return consume(batch, self.consumer, self.runtime)

    def event(self, kind: EventType, order_id: str, customer: str = "c-1", **payload: object) -> DomainEvent:
        body = {"order_id": order_id, "customer_id": customer, **payload}
        return DomainEvent(kind, order_id, body, occurred_at=iso(self.clock.now_ms()))

    def order_event(self, kind: EventType, order_id: str, paid_fen: int, customer: str = "c-1", **extra: object):
        # Two lines, and 1,000 fen of freight that is on no line: never growth, never points.
        lines = [
            {"sku": "TEA-1", "qty": 1, "payable_fen": paid_fen // 2},
            {"sku": "CUP-1", "qty": 1, "payable_fen": paid_fen - paid_fen // 2},
        ]
        return self.event(kind, order_id, customer, lines=lines, total_fen=paid_fen + 1_000, **extra)

    def completed(self, order_id: str, paid_fen: int, customer: str = "c-1") -> DomainEvent:
        return self.order_event(EventType.ORDER_COMPLETED, order_id, paid_fen, customer)

    def refunded(self, order_id: str, paid_fen: int, amount_fen: int, customer: str = "c-1") -> DomainEvent:
        self.refunds += 1
        return self.order_event(
            EventType.REFUND_ISSUED, order_id, paid_fen, customer, refund_id=f"r-{self.refunds}", amount_fen=amount_fen
        )

    def me(self, customer: str = "c-1") -> dict:
        return self.accounts.me(customer)

    def points(self, customer: str = "c-1") -> dict:
        return self.me(customer)["points"]

    def ledger(self, customer: str = "c-1") -> list[dict]:
        items, _ = self.accounts.points_ledger(customer, 100, None)
        return items

    def after_window(self) -> int:
        self.clock.advance(WINDOW_MS / 1000 + 1)
        return self.release.release_due()


@pytest.fixture
def kit() -> Kit:
    return Kit()


def test_the_first_order_or_the_first_sign_in_enrols_once(kit: Kit):
    # Given a customer's first order paid, delivered twice
    paid = kit.order_event(EventType.ORDER_PAID, "o-1", 10_000)
    assert kit.deliver(paid, paid) == {"batchItemFailures": []}
    member = kit.store.member("c-1")
    assert member is not None and member.version == 1 and member.created_at_ms == kit.clock.now_ms()
    # When it signs in later, and another customer signs in first
    kit.clock.advance(60)
    me = kit.me()
    stranger = kit.me("c-2")
    # Then the member is the one enrolled by the order, and the sign-in enrols the other
    assert me["member_since"] == iso(member.created_at_ms)
    assert me["level"]["level"] == 0 and me["growth_fen"] == 0 and me["paid_membership"] is None
    assert me["next_level"]["level"] == 1
    assert stranger["points"] == {"available": 0, "frozen": 0, "reserved": 0, "debt": 0}
    assert kit.store.member("c-2").created_at_ms == kit.clock.now_ms()
    kit.clock.advance(60)
    assert kit.me("c-2")["member_since"] == stranger["member_since"]


def test_a_completed_order_grows_the_member_and_earns_frozen_points_once(kit: Kit):
    # Given level 0 (x1) and one point per yuan; an order of 123.45 yuan on its lines
    done = kit.completed("o-1", 12_345)
    # When its completion is heard three times
    kit.deliver(done, done)
    kit.deliver(done)
    # Then growth is the lines' paid amount (no freight) and 123 points are frozen, rounded down
    me = kit.me()
    assert me["growth_fen"] == 12_345
    assert me["points"] == {"available": 0, "frozen": 123, "reserved": 0, "debt": 0}
    [entry] = kit.ledger()
    assert (entry["kind"], entry["points"], entry["frozen"], entry["order_id"]) == ("earned", 123, 123, "o-1")
    # And the window has not closed: nothing is released yet
    kit.clock.advance(WINDOW_MS / 1000 - 60)
    assert kit.release.release_due() == 0
    kit.clock.advance(61)
    assert kit.release.release_due() == 1
    assert kit.points() == {"available": 123, "frozen": 0, "reserved": 0, "debt": 0}
    assert kit.release.release_due() == 0  # released once


def test_levels_follow_growth_both_ways_each_change_announced_once(kit: Kit):
    # Given a member with 400 yuan of completed orders (level 0)
    kit.deliver(kit.completed("o-1", 40_000))
    # When an order of 150 yuan completes: 550 yuan reaches level 1 (from 500)
    upgrade = kit.completed("o-2", 15_000)
    kit.deliver(upgrade, upgrade)
    me = kit.me()
    assert (me["level"]["level"], me["level"]["name"], me["growth_fen"]) == (1, "银卡", 55_000)
    # Then o-2 earned by the level before it (x1), and the change was announced once
    assert kit.points()["frozen"] == 400 + 150
    [changed] = kit.store.events.values()
    assert changed.type is EventType.MEMBER_LEVEL_CHANGED
    assert changed.payload == {
        "customer_id": "c-1",
        "from_level": 0,
        "to_level": 1,
        "growth_fen": 55_000,
        "order_id": "o-2",
        "cause_event_id": upgrade.event_id,
    }
    # And an order at level 1 earns x1.5
    kit.deliver(kit.completed("o-3", 10_001))
    assert kit.points()["frozen"] == 550 + 10_001 * 15_000 // 1_000_000
    # When 100 yuan of o-2 is refunded: 650.01 - 100 = 550.01 yuan, still level 1
    kit.deliver(kit.refunded("o-2", 15_000, 10_000))
    assert kit.me()["level"]["level"] == 1
    # And refunding o-3 in full takes the member back below 500 yuan: level 0, announced
    kit.deliver(kit.refunded("o-3", 10_001, 10_001))
    me = kit.me()
    assert (me["level"]["level"], me["growth_fen"]) == (0, 45_000)
    assert [e.payload["to_level"] for e in kit.store.events.values()] == [1, 0]


def test_a_refund_before_completion_is_counted_and_the_completion_earns_net_of_it(kit: Kit):
    # Given 300 yuan paid, 100 of it refunded before the order completes (heard first)
    kit.deliver(kit.refunded("o-1", 30_000, 10_000))
    assert kit.ledger() == [] and kit.me()["growth_fen"] == 0
    # When it completes
    kit.deliver(kit.completed("o-1", 30_000))
    # Then growth and points are on the 200 yuan kept, in one entry
    assert kit.me()["growth_fen"] == 20_000
    [entry] = kit.ledger()
    assert (entry["kind"], entry["frozen"]) == ("earned", 200)


def test_a_refund_while_frozen_reduces_the_frozen_points_pro_rata_and_in_parts_takes_back_all(kit: Kit):
    # Given 99.99 yuan completed: 99 points frozen
    kit.deliver(kit.completed("o-1", 9_999))
    # When it is refunded in three parts of 33.33 yuan
    for _ in range(3):
        kit.deliver(kit.refunded("o-1", 9_999, 3_333))
    # Then each took back its share on the running total (99 x 3,333 // 9,999 = 33, 66 - 33, 99 - 66)
    returned = [e["frozen"] for e in kit.ledger() if e["kind"] == "refund_returned"]
    assert sorted(returned) == [-33, -33, -33]
    assert kit.points() == {"available": 0, "frozen": 0, "reserved": 0, "debt": 0}
    assert kit.me()["growth_fen"] == 0
    # And the window closing releases nothing
    assert kit.after_window() == 1 and kit.points()["available"] == 0


def test_a_refund_after_release_takes_available_points_and_records_debt_when_short(kit: Kit):
    # Given 200 points released, 150 of them spent on another order
    kit.deliver(kit.completed("o-1", 20_000))
    kit.after_window()
    kit.store.reserve("c-1", "o-spend", 150, kit.clock.now_ms())
    kit.store.commit("c-1", "o-spend", 150, kit.clock.now_ms())
    assert kit.points() == {"available": 50, "frozen": 0, "reserved": 0, "debt": 0}
    # When o-1 is refunded in full, a minute later
    kit.clock.advance(60)
    kit.deliver(kit.refunded("o-1", 20_000, 20_000))
    # Then the 50 available are taken and the other 150 are a debt, never a negative balance
    assert kit.points() == {"available": 0, "frozen": 0, "reserved": 0, "debt": 150}
    newest = kit.ledger()[0]
    assert (newest["kind"], newest["available"], newest["debt"], newest["points"]) == ("refund_returned", -50, 150, -50)
    # And the next points released pay the debt first
    kit.clock.advance(60)
    kit.deliver(kit.completed("o-2", 20_000))
    kit.after_window()
    assert kit.points() == {"available": 50, "frozen": 0, "reserved": 0, "debt": 0}
    released = kit.ledger()[0]
    assert (released["kind"], released["frozen"], released["available"], released["debt"]) == (
        "released",
        -200,
        50,
        -150,
    )


def test_points_expire_first_in_first_out_n_days_after_they_became_available(kit: Kit):
    # Given 100 points available on day 0 and 300 on day 10, and 150 spent on day 12
    kit.deliver(kit.completed("o-1", 10_000))
    kit.after_window()
    kit.clock.advance(10 * 86_400)
    kit.deliver(kit.completed("o-2", 30_000))
    kit.after_window()  # 7 days later: day 17
    kit.store.reserve("c-1", "o-spend", 150, kit.clock.now_ms())
    kit.store.commit("c-1", "o-spend", 150, kit.clock.now_ms())
    assert kit.points()["available"] == 250
    # When the first lot's 30 days are up (20 days on: day 37 of the first lot, day 20 of the
    # second): the 150 spent used all of the first lot, which was first in
    kit.clock.advance(20 * 86_400)
    assert kit.expiry.expire_due() == 1
    assert kit.points()["available"] == 250
    assert [e for e in kit.ledger() if e["kind"] == "expired"] == []
    # And when the second lot's are: what is left of it, 250, expires
    kit.clock.advance(17 * 86_400)
    assert kit.expiry.expire_due() == 1
    assert kit.points()["available"] == 0
    [expired] = [e for e in kit.ledger() if e["kind"] == "expired"]
    assert (expired["order_id"], expired["available"]) == ("o-2", -250)
    assert kit.expiry.expire_due() == 0  # each lot expires once


def test_a_refund_after_expiry_does_not_take_back_the_expired_points_again(kit: Kit):
    kit.deliver(kit.completed("o-1", 10_000))
    kit.after_window()
    kit.deliver(kit.completed("o-2", 5_000))
    kit.after_window()
    kit.clock.advance(31 * 86_400)
    assert kit.expiry.expire_due() == 2 and kit.points()["available"] == 0
    kit.deliver(kit.refunded("o-1", 10_000, 10_000))
    assert kit.points() == {"available": 0, "frozen": 0, "reserved": 0, "debt": 0}
    assert kit.me()["growth_fen"] == 5_000


def test_holds_reserve_commit_and_release_and_never_spend_what_is_not_available(kit: Kit):
    kit.deliver(kit.completed("o-1", 30_000))
    kit.after_window()
    now = kit.clock.now_ms()
    # A spend over the balance holds nothing
    with pytest.raises(InsufficientPoints):
        kit.store.reserve("c-1", "o-a", 301, now)
    with pytest.raises(RuleViolation):
        kit.store.reserve("c-1", "o-a", 0, now)
    # Reserved points leave available; asking again for the same order is a no-op
    kit.store.reserve("c-1", "o-a", 100, now)
    kit.store.reserve("c-1", "o-a", 100, now)
    with pytest.raises(PointsAlreadyHeld):
        kit.store.reserve("c-1", "o-a", 90, now)
    kit.store.reserve("c-1", "o-b", 200, now)
    assert kit.points() == {"available": 0, "frozen": 0, "reserved": 300, "debt": 0}
    # One order paid, the other cancelled: spent once, returned once
    kit.store.commit("c-1", "o-a", 100, now)
    kit.store.commit("c-1", "o-a", 100, now)
    kit.store.release("c-1", "o-b", 200, now)
    kit.store.release("c-1", "o-b", 200, now)
    with pytest.raises(PointsNotHeld):
        kit.store.commit("c-1", "o-b", 200, now)
    assert kit.points() == {"available": 200, "frozen": 0, "reserved": 0, "debt": 0}
    kinds = [e["kind"] for e in kit.ledger() if e["order_id"] in ("o-a", "o-b")]
    assert sorted(kinds) == ["held", "held", "hold_returned", "spent"]


def test_the_ledger_reads_newest_first_page_by_page(kit: Kit):
    for n in range(5):
        kit.deliver(kit.completed(f"o-{n}", 1_000 * (n + 1)))
        kit.clock.advance(1)
    first, cursor = kit.accounts.points_ledger("c-1", 2, None)
    second, cursor2 = kit.accounts.points_ledger("c-1", 2, cursor)
    third, end = kit.accounts.points_ledger("c-1", 2, cursor2)
    assert [e["order_id"] for e in first + second + third] == ["o-4", "o-3", "o-2", "o-1", "o-0"]
    assert end is None


def test_rules_are_validated_and_saved_as_versions():
    rules = MemoryMembershipRules()
    admin = MembershipRulesAdmin(rules)
    assert admin.show()["version"] == 0 and admin.show()["levels"][0]["min_growth_fen"] == 0
    assert admin.save(LEVELS)["version"] == 1
    assert admin.save(LEVELS)["version"] == 2
    with pytest.raises(RuleViolation):
        MembershipRules((Level(0, "a", 0), Level(1, "b", 0)))
    with pytest.raises(RuleViolation):
        MembershipRules((Level(0, "a", 100),))
    with pytest.raises(RuleViolation):
        MembershipRules((Level(0, "a", 0), Level(2, "b", 10)))
    # Two admins who read version 2 and both save: the second is refused
    with pytest.raises(ConcurrentUpdate):
        rules.save(MembershipRules(LEVELS.levels, version=3))
        rules.save(MembershipRules(LEVELS.levels, version=3))


def test_a_worker_whose_claim_was_taken_over_writes_nothing(kit: Kit):
    from shared.membership.ports import MembershipClaimLost
    from shared.messaging.ports import HeldClaim

    done = kit.completed("o-1", 10_000)
    kit.marks.claim("membership", done.event_id, "theirs", kit.clock.now_ms(), 60_000)
    with pytest.raises(MembershipClaimLost):
        kit.consumer.handle_claimed(done, HeldClaim("membership", done.event_id, "mine", kit.clock.now_ms()))
    assert kit.ledger() == [] and kit.store.member("c-1") is None


# -- the property ----------------------------------------------------------------------------------
@dataclass
class Model:
    """What the member did, as the test sees it: orders paid (lines), refunded so far, spends."""

    kit: Kit
    paid: dict[str, int] = field(default_factory=dict)
    refunded: dict[str, int] = field(default_factory=dict)
    holds: dict[str, tuple[int, str]] = field(default_factory=dict)
    delivered: list[DomainEvent] = field(default_factory=list)

    def order(self, paid_fen: int) -> None:
        order_id = f"o-{len(self.paid)}"
        self.paid[order_id] = paid_fen
        self._deliver(self.kit.completed(order_id, paid_fen))

    def refund(self, pick: int, amount_fen: int) -> None:
        if not self.paid:
            return
        order_id = sorted(self.paid)[pick % len(self.paid)]
        amount = min(self.paid[order_id] - self.refunded.get(order_id, 0), amount_fen)
        if amount > 0:
            self.refunded[order_id] = self.refunded.get(order_id, 0) + amount
            self._deliver(self.kit.refunded(order_id, self.paid[order_id], amount))

    def days(self, days: int) -> None:
        self.kit.clock.advance(days * 86_400)
        self.kit.release.release_due()
        self.kit.expiry.expire_due()

    def spend(self, points: int) -> None:
        order_id = f"spend-{len(self.holds)}"
        try:
            self.kit.store.reserve("c-1", order_id, points, self.kit.clock.now_ms())
            self.holds[order_id] = (points, "HELD")
        except InsufficientPoints:
            pass

    def settle(self, pick: int, paid: bool) -> None:
        held = sorted(o for o, (_, status) in self.holds.items() if status == "HELD")
        if not held:
            return
        order_id = held[pick % len(held)]
        points, _ = self.holds[order_id]
        settle = self.kit.store.commit if paid else self.kit.store.release
        settle("c-1", order_id, points, self.kit.clock.now_ms())
        self.holds[order_id] = (points, "SPENT" if paid else "RETURNED")

    def redeliver(self, pick: int) -> None:
        if self.delivered:
            self.kit.deliver(self.delivered[pick % len(self.delivered)])  # at least once: heard again

    def _deliver(self, event: DomainEvent) -> None:
        self.delivered.append(event)
        self.kit.deliver(event)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(1, 60_000)),
        st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 30_000)),
        st.tuples(st.just("days"), st.integers(1, 20)),
        st.tuples(st.just("spend"), st.integers(1, 400)),
        st.tuples(st.just("settle"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("redeliver"), st.integers(0, 40)),
    ),
    max_size=40,
)


@settings(max_examples=150)
@given(operations)
def test_the_ledger_sums_to_the_balance_and_no_point_is_spent_twice(ops):
    kit = Kit(MembershipRules(LEVELS.levels, points_per_yuan=3, points_expire_after_days=15))
    seen = Model(kit)
    for name, *args in ops:
        getattr(seen, name)(*args)
        check(kit, seen)


def check(kit: Kit, seen: Model) -> None:
    balance = kit.store.balances.get("c-1")
    entries = [e for (sub, _), e in kit.store.entries.items() if sub == "c-1"]
    sums = {name: sum(getattr(e, name) for e in entries) for name in ("available", "frozen", "reserved", "debt")}
    if balance is None:
        assert entries == [] or all(v == 0 for v in sums.values())
        return
    # The ledger explains the balance exactly, and the balance never goes below 0
    assert sums == {
        "available": balance.available,
        "frozen": balance.frozen,
        "reserved": balance.reserved,
        "debt": balance.debt,
    }
    assert min(sums.values()) >= 0
    assert balance.debt == 0 or balance.available == 0  # a debt is paid before points are available
    # No point is spent twice: each order spent once at most, exactly what it held
    spent = [e for e in entries if e.kind is EntryKind.SPENT]
    assert len({e.order_id for e in spent}) == len(spent)
    assert -sum(e.reserved for e in spent) == sum(p for p, s in seen.holds.values() if s == "SPENT")
    assert balance.reserved == sum(p for p, s in seen.holds.values() if s == "HELD")
    # Every point earned is somewhere: the member's own (less its debt), spent, expired, or taken
    # back by a refund (from frozen, from available, or as debt); a release or a hold moves points
    # between the member's own and makes none
    earned = sum(e.frozen for e in entries if e.kind is EntryKind.EARNED)
    expired = -sum(e.available for e in entries if e.kind is EntryKind.EXPIRED)
    returned = sum(-e.frozen - e.available + e.debt for e in entries if e.kind is EntryKind.REFUND_RETURNED)
    spent_total = -sum(e.reserved for e in spent)
    own = balance.available + balance.frozen + balance.reserved - balance.debt
    assert earned == own + spent_total + expired + returned
    # Growth is the completed orders' lines, net of refunds
    assert kit.store.member("c-1").growth_fen == sum(seen.paid.values()) - sum(seen.refunded.values())
