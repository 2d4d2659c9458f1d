"""The paid-membership jobs' ports (shared/membership/paid_expiry.py): one class of tests against the
in-memory fake (tests/fakes/paid_expiry.py) and against the DynamoDB store on a moto table
(memberships bought through the paid terms' store), so the fake keeps the store's conditions, its
index range and the events the stream derives."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.kernel.errors import ConcurrentUpdate
from shared.membership.paid import DAY_MS, Term, TermKind
from shared.membership.paid_end import ACTIVE, EXPIRED, AlreadyReminded, Ending, edge, position
from shared.membership.paid_terms import StoredTerm, purchased
from tests.fakes.paid_expiry import MemoryCheckpoints, MemoryEndingMembers

NOW = 1_793_700_000_000  # 2026-11-03T10:00:00Z


class Ports:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "memory":
            self.members, self.checkpoints = MemoryEndingMembers(), MemoryCheckpoints()
        else:
            from shared.data.stores.paid_expiry import DynamoEndingMembers, DynamoJobCheckpoints

            self.members, self.checkpoints = DynamoEndingMembers(), DynamoJobCheckpoints()

    def buy(self, customer: str, order_id: str, bought_ms: int, days: int = 30) -> None:
        """A purchase, as p1's store writes it (the fake: the membership it would leave)."""
        if self.kind == "memory":
            read = self.members.get(customer)
            start = bought_ms if read is None or read.until_ms <= bought_ms else read.until_ms
            ending = Ending(customer, "金卡", start + days * DAY_MS, ACTIVE, 0, "S001", "g-1")
            self.members.put(ending if read is None else replace(ending, version=read.version))
            return
        from shared.data.stores.paid_membership import DynamoPaidTerms

        store = DynamoPaidTerms()
        read_state = store.read(customer)
        term = Term(order_id, "gold", "金卡", 1, days, bought_ms, TermKind.NEW, (), store_id="S001", guide_id="g-1")
        store.write(read_state, purchased(read_state, StoredTerm(customer, term, paid_fen=9_900), bought_ms))

    def events(self) -> list[tuple[str, str, str]]:
        if self.kind == "memory":
            found = [e.to_message() for e in self.members.events]
        else:
            from tests.functional.events_support import announced

            found = [e for e in announced() if e["type"].startswith("Membership")]
        return sorted((e["type"], e["aggregate_id"], e["event_id"]) for e in found)


@pytest.fixture(params=["memory", "dynamodb"])
def ports(request: pytest.FixtureRequest) -> Ports:
    if request.param == "dynamodb":
        request.getfixturevalue("table")
    return Ports(request.param)


def test_a_page_is_the_range_after_low_up_to_high_in_order(ports: Ports):
    for n, days in enumerate([30, 10, 20, 40]):
        ports.buy(f"c-{n}", f"o-{n}", NOW, days)
    ends = {f"c-{n}": NOW + days * DAY_MS for n, days in enumerate([30, 10, 20, 40])}
    # Walked 1 and 2 at a time from the start: in order, and a page that says "more" holds some
    for size in (1, 2):
        walked, low, more = [], "0", True
        while more:
            found, more = ports.members.page(low, edge(NOW + 35 * DAY_MS), size)
            assert len(found) <= size and (found or not more)
            walked += [m.customer_id for m in found]
            low = found[-1].position if found else low
        assert walked == ["c-1", "c-2", "c-0"]  # by end; c-3 ends after the range
    # low is exclusive, high inclusive
    found, _ = ports.members.page(position(ends["c-1"], "c-1"), position(ends["c-0"], "c-0"), 10)
    assert [m.customer_id for m in found] == ["c-2", "c-0"]
    assert (found[0].tier, found[0].store_id, found[0].guide_id, found[0].status) == ("金卡", "S001", "g-1", ACTIVE)


def test_expire_is_conditional_on_the_version_read_and_active(ports: Ports):
    ports.buy("c-1", "o-1", NOW - 40 * DAY_MS)
    read = ports.members.get("c-1")
    assert read is not None and ports.members.get("nobody") is None
    with pytest.raises(ConcurrentUpdate):
        ports.members.expire(replace(read, version=read.version + 1))
    ports.members.expire(read)
    after = ports.members.get("c-1")
    assert after is not None
    assert (after.status, after.expired_for_ms, after.version) == (EXPIRED, read.until_ms, read.version + 1)
    with pytest.raises(ConcurrentUpdate):
        ports.members.expire(read)  # the same read again: refused
    with pytest.raises(ConcurrentUpdate):
        ports.members.expire(after)  # not ACTIVE any more
    assert [t for t, _, _ in ports.events()] == ["MembershipExpired"]


def test_remind_is_once_per_end_keeps_the_version_and_follows_a_renewal(ports: Ports):
    ports.buy("c-1", "o-1", NOW - 28 * DAY_MS)
    read = ports.members.get("c-1")
    assert read is not None
    ports.members.remind(read)
    after = ports.members.get("c-1")
    assert after is not None and (after.reminded_for_ms, after.version) == (read.until_ms, read.version)
    with pytest.raises(AlreadyReminded):
        ports.members.remind(read)
    ports.buy("c-1", "o-2", NOW - DAY_MS)  # a renewal: the end moves 30 days
    with pytest.raises(AlreadyReminded):
        ports.members.remind(read)  # the old end: not any more
    renewed = ports.members.get("c-1")
    assert renewed is not None and renewed.until_ms == read.until_ms + 30 * DAY_MS
    assert renewed.reminded_for_ms == read.until_ms  # the purchase kept the job's mark
    ports.members.remind(renewed)
    events = ports.events()
    assert [t for t, _, _ in events] == ["MembershipExpiring", "MembershipExpiring"]
    assert len({i for _, _, i in events}) == 2


def test_a_checkpoint_only_moves_forward(ports: Ports):
    assert ports.checkpoints.through("expiry") is None
    ports.checkpoints.advance("expiry", edge(NOW))
    ports.checkpoints.advance("expiry", edge(NOW - DAY_MS))
    assert ports.checkpoints.through("expiry") == edge(NOW)
    ports.checkpoints.advance("expiry", edge(NOW + 1))
    assert ports.checkpoints.through("expiry") == edge(NOW + 1)
    assert ports.checkpoints.through("reminder") is None
