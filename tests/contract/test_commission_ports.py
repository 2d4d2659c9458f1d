"""The commission ports (shared.commission.ports): one class of tests against the in-memory fakes
(tests/fakes/commission.py) and against the DynamoDB stores on a moto table from infra/template.yaml."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.commission.ledger_model import Book, BookLine, Entry, EntryStatus, entry_shard
from shared.commission.model import CommissionRules, PayeeRole, Share
from shared.commission.ports import AlreadyRecorded, ClaimLost, LedgerChange
from shared.kernel.credited import Credited
from shared.kernel.errors import ConcurrentUpdate
from shared.messaging.ports import HeldClaim
from tests.fakes.commission import MemoryLedger, MemoryRules
from tests.fakes.messaging import MemoryMarks

NOW = 1_795_392_000_000
LEASE = 60_000


@pytest.fixture(params=["memory", "dynamodb"])
def ports(request: pytest.FixtureRequest):
    if request.param == "memory":
        marks = MemoryMarks()
        return MemoryRules(), MemoryLedger(marks), marks
    request.getfixturevalue("table")
    from shared.data.stores.commission import DynamoLedger, DynamoRules
    from shared.data.stores.consumer_marks import DynamoMarks

    return DynamoRules(), DynamoLedger(), DynamoMarks()


def rules(version: int, guide_bp: int = 300) -> CommissionRules:
    return CommissionRules(version=version, shares={PayeeRole.GUIDE: Share(rate_bp=guide_bp)})


def entry(order: str, n: int, amount: int = 100, status: EntryStatus = EntryStatus.PENDING, **kw) -> Entry:
    return Entry(
        entry_id=f"P#SKU-{n}#guide",
        order_id=order,
        role=PayeeRole.GUIDE,
        payee_id="G1",
        sku=f"SKU-{n}",
        amount_fen=amount,
        status=status,
        created_at_ms=NOW + n,
        **kw,
    )


def book(order: str, version: int = 1) -> Book:
    line = BookLine("SKU-0", 1, 10_000, None, {"guide": 300}, {"guide": "G1"})
    return Book(order, Credited(guide_id="G1"), 1, (line,), NOW, version=version)


def claim_of(marks, event_id: str, token: str = "t-1") -> HeldClaim:
    marks.claim("commission", event_id, token, NOW, LEASE)
    return HeldClaim("commission", event_id, token, NOW + 1)


class TestRules:
    def test_versions_count_up_and_the_one_in_force_at_a_time_is_the_last_before_it(self, ports):
        store, _, _ = ports
        assert store.latest() is None and store.in_force_at(NOW) is None
        store.save(rules(1, 300), NOW)
        store.save(rules(2, 500), NOW + 1000)
        with pytest.raises(ConcurrentUpdate):
            store.save(rules(2, 700), NOW + 2000)
        assert store.latest() == (rules(2, 500), NOW + 1000)
        assert store.in_force_at(NOW - 1) is None
        assert store.in_force_at(NOW + 999) == rules(1, 300)
        assert store.in_force_at(NOW + 1000) == rules(2, 500)


class TestLedger:
    def test_a_claimed_write_applies_everything_and_marks_the_event_done(self, ports):
        _, ledger, marks = ports
        claim = claim_of(marks, "e-1")
        entries = [entry("o-1", n) for n in range(3)]
        ledger.write(LedgerChange(book_after=book("o-1"), new_entries=entries), claim)
        assert ledger.book("o-1") == book("o-1")
        assert sorted(e.entry_id for e in ledger.entries("o-1")) == sorted(e.entry_id for e in entries)
        assert ledger.totals("guide:G1")[EntryStatus.PENDING] == 300
        assert marks.claim("commission", "e-1", "t-2", NOW + 2, LEASE).value == "done"

    def test_a_write_on_a_claim_that_is_not_ours_writes_nothing(self, ports):
        _, ledger, marks = ports
        marks.claim("commission", "e-1", "old", NOW, LEASE)
        marks.claim("commission", "e-1", "new", NOW + LEASE + 1, LEASE)  # the old lease ran out
        with pytest.raises(ClaimLost):
            ledger.write(
                LedgerChange(book_after=book("o-1"), new_entries=[entry("o-1", 0)]),
                HeldClaim("commission", "e-1", "old", NOW),
            )
        assert ledger.book("o-1") is None and ledger.entries("o-1") == []
        assert ledger.totals("guide:G1")[EntryStatus.PENDING] == 0 if ledger.totals("guide:G1") else True

    def test_a_second_write_of_the_same_entries_is_refused_and_changes_no_total(self, ports):
        _, ledger, _ = ports
        ledger.write(LedgerChange(book_after=book("o-1"), new_entries=[entry("o-1", 0)]))
        with pytest.raises(AlreadyRecorded):
            ledger.write(LedgerChange(book_after=book("o-1"), new_entries=[entry("o-1", 0)]))
        with pytest.raises(AlreadyRecorded):
            ledger.write(LedgerChange(new_entries=[entry("o-1", 0)]))
        assert ledger.totals("guide:G1")[EntryStatus.PENDING] == 100

    def test_the_book_is_replaced_only_over_the_version_read(self, ports):
        _, ledger, _ = ports
        ledger.write(LedgerChange(book_after=book("o-1")))
        ledger.write(LedgerChange(book_before=book("o-1"), book_after=book("o-1", 2)))
        with pytest.raises(ConcurrentUpdate):
            ledger.write(LedgerChange(book_before=book("o-1"), book_after=book("o-1", 2)))
        assert ledger.book("o-1").version == 2

    def test_entries_move_only_from_the_state_read_and_the_totals_move_with_them(self, ports):
        _, ledger, _ = ports
        pending = entry("o-1", 0, 250)
        ledger.write(LedgerChange(new_entries=[pending]))
        frozen = pending.moved(EntryStatus.FROZEN, due_at_ms=NOW + 10)
        ledger.write(LedgerChange(moved=[(pending, frozen)]))
        with pytest.raises(ConcurrentUpdate):
            ledger.write(LedgerChange(moved=[(pending, frozen)]))
        totals = ledger.totals("guide:G1")
        assert (totals[EntryStatus.PENDING], totals[EntryStatus.FROZEN]) == (0, 250)
        assert ledger.entries("o-1") == [frozen]

    def test_due_entries_are_found_by_status_shard_and_due_time_oldest_first(self, ports):
        _, ledger, _ = ports
        orders = [f"o-{n}" for n in range(400)]
        shard = entry_shard(orders[0])
        same = [o for o in orders if entry_shard(o) == shard][:3]
        for n, order in enumerate(same):
            ledger.write(
                LedgerChange(new_entries=[entry(order, 0, status=EntryStatus.FROZEN, due_at_ms=NOW + 100 - n)])
            )
        other = next(o for o in orders if entry_shard(o) != shard)
        ledger.write(LedgerChange(new_entries=[entry(other, 0, status=EntryStatus.FROZEN, due_at_ms=NOW)]))
        found = ledger.due(EntryStatus.FROZEN, shard, NOW + 99, 10)
        assert [e.order_id for e in found] == [same[2], same[1]]
        assert ledger.due(EntryStatus.SETTLEABLE, shard, NOW + 1000, 10) == []

    def test_a_settled_entry_leaves_the_queues(self, ports):
        _, ledger, _ = ports
        settleable = entry("o-1", 0, status=EntryStatus.SETTLEABLE, due_at_ms=NOW)
        ledger.write(LedgerChange(new_entries=[settleable]))
        assert ledger.due(EntryStatus.SETTLEABLE, settleable.shard, NOW, 10) == [settleable]
        settled = settleable.moved(EntryStatus.SETTLED, run_id="run-1")
        ledger.write(LedgerChange(moved=[(settleable, settled)]))
        assert ledger.due(EntryStatus.SETTLEABLE, settleable.shard, NOW, 10) == []
        assert ledger.entries("o-1")[0].settlement_run_id == "run-1"

    def test_a_payees_entries_page_newest_first(self, ports):
        _, ledger, _ = ports
        ledger.write(LedgerChange(new_entries=[entry("o-1", n) for n in range(5)]))
        first, cursor = ledger.payee_entries("guide:G1", 3, None)
        rest, _ = ledger.payee_entries("guide:G1", 3, cursor)
        assert [e.sku for e in first + rest] == [f"SKU-{n}" for n in reversed(range(5))]


class TestLedgerOnDynamoDB:
    """What only the DynamoDB store does: a write larger than one transaction, in parts."""

    def test_a_write_of_more_than_a_transaction_holds_completes_once_after_a_crash_between_parts(self, table):
        from shared.data.stores.commission import DynamoLedger
        from shared.data.stores.consumer_marks import DynamoMarks

        ledger, marks = DynamoLedger(), DynamoMarks()
        entries = [replace(entry("o-big", n), payee_id=f"G{n % 5}") for n in range(200)]
        claim = claim_of(marks, "e-big")
        # Given the first part written by a worker that then crashed
        ledger.write(LedgerChange(new_entries=entries[:80]))  # the first part, as the write makes it
        # When the redelivery writes the whole change
        ledger.write(LedgerChange(book_after=book("o-big"), new_entries=entries), claim)
        # Then every entry is there once, the totals count each once, and the event is done
        assert len(ledger.entries("o-big")) == 200
        assert sum(ledger.totals(f"guide:G{n}")[EntryStatus.PENDING] for n in range(5)) == 200 * 100
        assert marks.claim("commission", "e-big", "t-9", NOW + 5, LEASE).value == "done"
