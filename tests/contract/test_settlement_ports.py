"""The settlement store (shared.settlement.ports.SettlementStore): one class of tests against the
in-memory fake (tests/fakes/settlement.py) and against DynamoDB on a moto table, where each shard's
statement rows are in the shard's own partition and the statement is their k-way merge, read in
pages of two rows here so that every shard's Query takes several pages."""

from __future__ import annotations

from collections import defaultdict

import pytest

from shared.commission.ledger_model import ENTRY_SHARDS, Entry, EntryStatus, entry_shard
from shared.commission.ports import LedgerChange
from shared.kernel.credited import PayeeRole
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
