"""The settlement store (shared.settlement.ports.SettlementStore): one class of tests against the
in-memory fake (tests/fakes/settlement.py) and against DynamoDB on a moto table, where each shard's
statement rows are in the shard's own partition and the statement is their k-way merge, read in
pages of two rows here so that every shard's Query takes several pages."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import pytest

from shared.commission.ledger_model import ENTRY_SHARDS, Entry, EntryStatus, entry_shard
from shared.commission.ports import LedgerChange
from shared.kernel.credited import PayeeRole
from shared.kernel.errors import ConcurrentUpdate
from shared.settlement.model import Run, RunStatus, StatementRow

NOW = 1_795_392_000_000
DUE = NOW - 86_400_000


@pytest.fixture(params=["memory", "dynamodb"])
def ports(request: pytest.FixtureRequest):
    if request.param == "memory":
        from tests.fakes.commission import MemoryLedger
        from tests.fakes.settlement import MemorySettlements

        ledger = MemoryLedger()
        return ledger, MemorySettlements(ledger)
    request.getfixturevalue("table")
    from shared.data.stores.commission import DynamoLedger
    from shared.data.stores.settlement import DynamoSettlements

    return DynamoLedger(), DynamoSettlements(statement_page=2)


def orders_in_distinct_shards(count: int) -> list[str]:
    found: dict[int, str] = {}
    for n in range(1000):
        found.setdefault(entry_shard(f"o-{n}"), f"o-{n}")
        if len(found) == count:
            break
    return list(found.values())


def earning(order: str, role: PayeeRole, payee_id: str, amount: int) -> Entry:
    return Entry(
        f"P#SKU#{role.value}#{payee_id}", order, role, payee_id, "SKU", amount, EntryStatus.SETTLEABLE, NOW, DUE
    )


def clawback(order: str, role: PayeeRole, payee_id: str, amount: int) -> Entry:
    return Entry(
        f"R#r-1#SKU#{role.value}#{payee_id}",
        order,
        role,
        payee_id,
        "SKU",
        -amount,
        EntryStatus.SETTLEABLE,
        NOW,
        DUE,
        refund_id="r-1",
    )


def ledger_over_three_shards() -> list[Entry]:
    """G1 paid from three shards (with a clawback), D1 from two, the others from one; the first
    shard pays five payees (three pages of two rows)."""
    a, b, c = orders_in_distinct_shards(3)
    return [
        earning(a, PayeeRole.GUIDE, "G1", 300),
        clawback(a, PayeeRole.GUIDE, "G1", 40),
        earning(a, PayeeRole.GUIDE, "G2", 120),
        earning(a, PayeeRole.GUIDE, "G3", 90),
        earning(a, PayeeRole.STORE, "S1", 800),
        earning(a, PayeeRole.DEALER, "D2", 55),
        earning(b, PayeeRole.GUIDE, "G1", 210),
        earning(b, PayeeRole.DEALER, "D1", 500),
        earning(c, PayeeRole.GUIDE, "G1", 15),
        earning(c, PayeeRole.DEALER, "D1", 77),
    ]


def expected_statement(entries: list[Entry]) -> list[StatementRow]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in entries:
        sums[e.payee][0 if e.amount_fen >= 0 else 1] += abs(e.amount_fen)
        sums[e.payee][2] += 1
    return [StatementRow(payee, *sums[payee]) for payee in sorted(sums)]


def settled_run(ledger, store, entries: list[Entry], keyed_per_shard: bool = True) -> Run:
    """A run started and every shard settled in batches of two (so a row is ADDed to), then
    finished."""
    ledger.write(LedgerChange(new_entries=entries))
    run = Run("run-20261123T000000Z", NOW, RunStatus.RUNNING, ENTRY_SHARDS, 0, NOW, keyed_per_shard=keyed_per_shard)
    assert store.start(run, [])
    settle_every_shard(ledger, store, run)
    return run


def settle_every_shard(ledger, store, run: Run) -> None:
    for shard in range(ENTRY_SHARDS):
        due = ledger.due(EntryStatus.SETTLEABLE, shard, NOW, 100)
        for at in range(0, len(due), 2):
            store.settle(run, shard, due[at : at + 2], None)
        assert store.finish_shard(run, shard)


class TestStatement:
    def test_a_payee_paid_from_several_shards_is_one_row_summed_in_payee_order(self, ports):
        ledger, store = ports
        entries = ledger_over_three_shards()
        run = settled_run(ledger, store, entries)
        assert list(store.statement(run)) == expected_statement(entries)
        assert store.get(run.run_id).status is RunStatus.DONE
        progress = store.shards(run)
        assert [p.shard for p in progress] == list(range(ENTRY_SHARDS)) and all(p.done for p in progress)
        assert sum(p.processed for p in progress) == len(entries)
        assert sum(p.net_fen for p in progress) == sum(e.amount_fen for e in entries)

    def test_a_run_with_nothing_to_settle_has_an_empty_statement(self, ports):
        ledger, store = ports
        run = settled_run(ledger, store, [])
        assert list(store.statement(run)) == []


class TestPayoutClaims:
    """One payout channel per entry (docs/commission.md, "Two payout channels")."""

    def test_entries_profit_sharing_claimed_are_left_out_of_gross_and_net_and_shown_apart(self, ports):
        ledger, store = ports
        entries = ledger_over_three_shards()
        shared = {0, 1, 7}  # G1's earning and clawback in order a, D1's in order b
        claimed = [replace(e, payout="profit_sharing#PS-1") if n in shared else e for n, e in enumerate(entries)]
        run = settled_run(ledger, store, claimed)
        paid = [e for n, e in enumerate(entries) if n not in shared]
        rows = {row.payee: row for row in store.statement(run)}
        expected = {row.payee: row for row in expected_statement(paid)}
        g1, d1 = rows["guide:G1"], rows["dealer:D1"]
        assert (g1.gross_fen, g1.clawbacks_fen, g1.entries, g1.shared_entries, g1.shared_fen) == (225, 0, 2, 2, 260)
        assert (d1.gross_fen, d1.entries, d1.shared_entries, d1.shared_fen) == (77, 1, 1, 500)
        assert {p: replace(r, shared_entries=0, shared_fen=0) for p, r in rows.items()} == expected
        progress = store.shards(run)
        assert sum(p.processed for p in progress) == len(entries)  # the run's total reached
        assert sum(p.net_fen for p in progress) == sum(e.amount_fen for e in paid)
        assert sum(p.shared_fen for p in progress) == 760 and sum(p.shared_entries for p in progress) == 3
        after = {(e.order_id, e.entry_id): e for e in claimed for e in ledger.entries(e.order_id)}
        assert all(e.status is EntryStatus.SETTLED for e in after.values())
        assert {e.payout for e in after.values() if e.payout.startswith("profit_sharing")} == {"profit_sharing#PS-1"}
        assert sum(1 for e in after.values() if e.payout == f"settlement#{run.run_id}") == len(paid)

    def test_an_entry_claimed_after_the_run_read_it_is_not_paid_and_nothing_of_the_batch_is_written(self, ports):
        ledger, store = ports
        a = orders_in_distinct_shards(1)[0]
        entries = [earning(a, PayeeRole.GUIDE, "G1", 300), earning(a, PayeeRole.DEALER, "D1", 500)]
        ledger.write(LedgerChange(new_entries=entries))
        run = Run("run-20261123T000000Z", NOW, RunStatus.RUNNING, ENTRY_SHARDS, 0, NOW)
        assert store.start(run, [])
        read = ledger.due(EntryStatus.SETTLEABLE, entry_shard(a), NOW, 100)
        claim_behind_the_runs_back(ledger, entries[1], "profit_sharing#PS-1")
        with pytest.raises(ConcurrentUpdate):
            store.settle(run, entry_shard(a), read, None)
        assert list(store.statement(run)) == []
        assert {e.status for e in ledger.entries(a)} == {EntryStatus.SETTLEABLE}
        again = ledger.due(EntryStatus.SETTLEABLE, entry_shard(a), NOW, 100)
        store.settle(run, entry_shard(a), again, None)
        rows = {row.payee: row for row in store.statement(run)}
        assert rows["dealer:D1"].entries == 0 and rows["dealer:D1"].shared_fen == 500
        assert rows["guide:G1"].gross_fen == 300


def claim_behind_the_runs_back(ledger, entry: Entry, claim: str) -> None:
    """What profit sharing's claim does to one stored entry (its store's conditional update)."""
    from tests.fakes.commission import MemoryLedger

    if isinstance(ledger, MemoryLedger):
        key = (entry.order_id, entry.entry_id)
        ledger.stored[key] = replace(ledger.stored[key], payout=claim)
        return
    from shared.data.items.commission import LedgerEntryItem

    LedgerEntryItem(*LedgerEntryItem.key(entry.order_id, entry.entry_id)).update(
        actions=[LedgerEntryItem.payout.set(claim)], condition=LedgerEntryItem.payout.does_not_exist()
    )


@pytest.fixture
def dynamo(table):
    from shared.data.stores.commission import DynamoLedger
    from shared.data.stores.settlement import DynamoSettlements

    return DynamoLedger(), DynamoSettlements(statement_page=2)


class TestDynamoLayout:
    def test_a_run_partition_holds_only_the_run_and_each_shard_writes_its_own(self, dynamo):
        from shared.data.items.settlement import SettlementRunItem, StatementRowItem, shard_partition
        from shared.data.table import BaseItem

        ledger, store = dynamo
        entries = ledger_over_three_shards()
        run = settled_run(ledger, store, entries)
        assert [i.sk for i in BaseItem.query(SettlementRunItem.key(run.run_id)[0])] == ["RUN"]
        g1 = [
            shard
            for shard in range(ENTRY_SHARDS)
            for i in BaseItem.query(shard_partition(run.run_id, shard))
            if isinstance(i, StatementRowItem) and i.payee == "guide:G1"
        ]
        assert len(g1) == 3  # one row in each shard that paid it

    def test_a_run_started_before_the_per_shard_keys_reads_and_finishes_in_its_own_layout(self, dynamo):
        from shared.data.items.settlement import SettlementRunItem
        from shared.data.table import BaseItem

        ledger, store = dynamo
        entries = ledger_over_three_shards()
        ledger.write(LedgerChange(new_entries=entries))
        old = Run("run-20261123T000000Z", NOW, RunStatus.RUNNING, ENTRY_SHARDS, 0, NOW, keyed_per_shard=False)
        assert store.start(old, [])
        # as the run items written before the change are: no keyed_per_shard at all
        SettlementRunItem(*SettlementRunItem.key(old.run_id)).update(
            actions=[SettlementRunItem.keyed_per_shard.remove()]
        )
        run = store.get(old.run_id)
        assert run is not None and not run.keyed_per_shard
        settle_every_shard(ledger, store, run)
        assert list(store.statement(run)) == expected_statement(entries)
        assert sum(p.processed for p in store.shards(run)) == len(entries)
        held = {i.sk.split("#")[0] for i in BaseItem.query(SettlementRunItem.key(run.run_id)[0])}
        assert held == {"RUN", "SHARD", "PAYEE"}  # all of it in the run's partition, as before
