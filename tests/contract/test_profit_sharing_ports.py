"""The profit-share store (shared.payments.profit_sharing.ProfitShareStore): one class of tests against
the in-memory fake (tests/fakes/profit_sharing.py) and against DynamoDB on a moto table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.payments import profit_sharing_model as ps
from tests.fakes.profit_sharing import ACCOUNTS, earnings

NOW = 1_795_392_000_000


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest):
    if request.param == "memory":
        from tests.fakes.profit_sharing import FakeProfitShares

        return FakeProfitShares()
    request.getfixturevalue("table")
    from shared.data.stores.profit_sharing import DynamoProfitShares

    return DynamoProfitShares()


def share(order_id: str = "o1", check_at: int = NOW, **changes) -> ps.ProfitShare:
    receivers = ps.receivers_of(earnings(dealer=300, guide=200), ACCOUNTS, 10_000)
    made = ps.ProfitShare(
        ps.out_order_no_of(order_id),
        order_id,
        "42000001",
        10_000,
        receivers,
        created_at_ms=NOW - 1,
        updated_at_ms=NOW - 1,
        next_check_at_ms=check_at,
    )
    return replace(made, **changes)


def test_the_first_share_stands_and_reads_back_whole(store):
    first = share()
    assert store.open(first) == first
    assert store.open(replace(first, total_fen=1)) == first
    assert store.get("o1", first.out_order_no) == first
    assert store.get("o1", "PSother-1") is None


def test_a_change_is_conditional_on_the_version(store):
    first = store.open(share())
    returned = first.with_return(ps.ShareReturn("PR1", "r1", "1900000201", 300, "SUCCESS"))
    assert store.change(first, returned) == returned
    assert store.change(first, replace(first, version=first.version + 1)) is None  # stale
    assert store.get("o1", first.out_order_no) == returned


def test_due_holds_the_open_shares_whose_check_is_due_earliest_first(store):
    late, early, later = share("o1", NOW - 10), share("o2", NOW - 20), share("o3", NOW + 60_000)
    for s in (late, early, later):
        store.open(s)
    assert [s.order_id for s in store.due(NOW, 10)] == ["o2", "o1"]
    finished = early.answered(ps.ShareState(early.out_order_no, ps.FINISHED, "30x", ()), NOW, 60_000)
    store.change(early, finished)
    assert [s.order_id for s in store.due(NOW, 10)] == ["o1"]  # a finished share leaves the index


def test_needing_attention_lists_refused_shares_newest_first(store):
    a, b = store.open(share("o1")), store.open(share("o2"))
    store.change(a, a.refused("INVALID_REQUEST", NOW))
    store.change(b, b.refused("PROFIT_SHARING_OVER_RATIO", NOW + 5))
    assert [s.order_id for s in store.needing_attention(10)] == ["o2", "o1"]
    assert store.due(NOW + 10**9, 10) == []


# -- the payout claims a share writes on the ledger's entries -------------------------------------------
class Ledger:
    """The order's ledger entries in each world: FakeOwed's for the fake, LedgerEntryItems on moto."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        from tests.fakes.profit_sharing import FakeOwed

        self.owed = FakeOwed()

    def seed(self, order_id: str, statuses: dict[str, str]) -> None:
        if self.kind == "memory":
            self.owed.by_order[order_id] = [
                ps.OwedEntry("guide", "G001", 100, status, entry_id=entry_id) for entry_id, status in statuses.items()
            ]
            return
        from shared.commission.ledger_model import Entry, EntryStatus
        from shared.commission.ports import LedgerChange
        from shared.data.stores.commission import DynamoLedger
        from shared.kernel.credited import PayeeRole

        entries = [
            Entry(entry_id, order_id, PayeeRole.GUIDE, "G001", "SKU-1", 100, EntryStatus(status), NOW, NOW)
            for entry_id, status in statuses.items()
        ]
        DynamoLedger().write(LedgerChange(new_entries=entries))

    def payouts(self, order_id: str) -> dict[str, str | None]:
        if self.kind == "memory":
            return {e.entry_id: e.payout for e in self.owed.entries(order_id)}
        from shared.data.stores.commission import DynamoLedger

        return {e.entry_id: e.payout for e in DynamoLedger().entries(order_id)}


@pytest.fixture(params=["memory", "dynamodb"])
def claiming(request: pytest.FixtureRequest):
    ledger = Ledger(request.param)
    if request.param == "memory":
        from tests.fakes.profit_sharing import FakeProfitShares

        return FakeProfitShares(ledger.owed), ledger
    request.getfixturevalue("table")
    from shared.data.stores.profit_sharing import DynamoProfitShares

    return DynamoProfitShares(), ledger


def test_a_share_claims_its_entries_in_the_write_that_makes_it_pending_and_releases_them_when_refused(claiming):
    store, ledger = claiming
    ledger.seed("o1", {"P#A#guide": "SETTLEABLE", "P#B#guide": "SETTLEABLE"})
    waiting = store.open(share(status=ps.WAITING, receivers=()))
    pending = waiting.with_receivers(waiting.receivers, NOW, 60_000, claimed=("P#A#guide", "P#B#guide"))
    assert store.change(waiting, pending) == pending
    assert ledger.payouts("o1") == {"P#A#guide": pending.claim, "P#B#guide": pending.claim}
    refused = pending.refused("INVALID_REQUEST", NOW)
    assert store.change(pending, refused) == refused
    assert ledger.payouts("o1") == {"P#A#guide": None, "P#B#guide": None}


def test_a_claim_on_an_entry_settled_or_claimed_first_writes_nothing(claiming):
    store, ledger = claiming
    ledger.seed("o1", {"P#A#guide": "SETTLEABLE", "P#B#guide": "SETTLED"})
    waiting = store.open(share(status=ps.WAITING, receivers=()))
    pending = waiting.with_receivers(waiting.receivers, NOW, 60_000, claimed=("P#A#guide", "P#B#guide"))
    with pytest.raises(ps.EntryTaken):
        store.change(waiting, pending)
    assert store.get("o1", waiting.out_order_no) == waiting  # the share not written either
    assert ledger.payouts("o1") == {"P#A#guide": None, "P#B#guide": None}
    # a stale version is still None (not EntryTaken): the share changed, read it again
    only_a = waiting.with_receivers(waiting.receivers, NOW, 60_000, claimed=("P#A#guide",))
    assert store.change(replace(waiting, version=9), only_a) is None
    assert store.change(waiting, only_a) == only_a


def test_a_return_claims_its_clawbacks_and_gives_them_back_when_it_fails(claiming):
    store, ledger = claiming
    ledger.seed("o1", {"R#r1#A#dealer": "SETTLEABLE"})
    first = store.open(share())
    asked = first.with_return(ps.ShareReturn("PR1", "r1", "1900000201", 30, entries=("R#r1#A#dealer",)))
    assert store.change(first, asked) == asked
    assert ledger.payouts("o1") == {"R#r1#A#dealer": first.claim}
    failed = asked.with_return(ps.ShareReturn("PR1", "r1", "1900000201", 30, "FAILED", entries=("R#r1#A#dealer",)))
    assert store.change(asked, failed) == failed
    assert ledger.payouts("o1") == {"R#r1#A#dealer": None}
    assert store.get("o1", first.out_order_no) == failed
