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
