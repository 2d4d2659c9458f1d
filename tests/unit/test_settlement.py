"""Settlement runs (shared/settlement) on in-memory ports: one run per period, fanned out per entry
shard, checkpointed by the entries' own state, so a run killed halfway and restarted (or a message
delivered twice) produces the same statements as an uninterrupted one."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from shared.commission.ledger_model import ENTRY_SHARDS, Entry, EntryStatus
from shared.commission.ports import LedgerChange
from shared.kernel.clock import FakeClock
from shared.kernel.credited import PayeeRole
from shared.kernel.errors import ValidationFailed
from shared.settlement.model import Run, RunStatus, StatementRow, summed_by_payee
from shared.settlement.runs import SettlementRuns, SettlementWorker
from tests.fakes.commission import MemoryLedger
from tests.fakes.settlement import MemorySettlements, WorkerKilled

DAY_MS = 86_400_000
NAMES = {"dealer:D001": ("华东经销商", "wxpay:1900000109"), "guide:G001": ("导购 王芳", "wxpay:G001")}


def ledger_with_entries(seed: int = 7, orders: int = 60) -> tuple[MemoryLedger, int]:
    rng = random.Random(seed)
    ledger = MemoryLedger()
    clock = FakeClock()
    now = clock.now_ms()
    entries = []
    for n in range(orders):
        for role, payee in ((PayeeRole.DEALER, "D001"), (PayeeRole.GUIDE, f"G00{n % 3 + 1}")):
            entries.append(
                Entry(
                    entry_id=f"P#SKU#{role.value}",
                    order_id=f"o-{n:03d}",
                    role=role,
                    payee_id=payee,
                    sku="SKU",
                    amount_fen=rng.randint(1, 5_000),
                    status=EntryStatus.SETTLEABLE,
                    created_at_ms=now - 30 * DAY_MS,
                    due_at_ms=now - rng.randint(1, 20) * DAY_MS,
                )
            )
    # a clawback carried into this statement, and an entry due after the period
    entries.append(
        Entry(
            "R#r-1#SKU#guide",
            "o-000",
            PayeeRole.GUIDE,
            "G001",
            "SKU",
            -700,
            EntryStatus.SETTLEABLE,
            now,
            now - DAY_MS,
            refund_id="r-1",
        )
    )
    entries.append(
        Entry("P#LATE#guide", "o-999", PayeeRole.GUIDE, "G001", "LATE", 999, EntryStatus.SETTLEABLE, now, now + DAY_MS)
    )
    ledger.write(LedgerChange(new_entries=entries))
    return ledger, now


def runs_on(ledger: MemoryLedger, now: int) -> tuple[SettlementRuns, MemorySettlements]:
    store = MemorySettlements(ledger)
    runs = SettlementRuns(
        store, ledger, lambda p: NAMES.get(p, (None, None)), FakeClock(now + 1000), batch=3, per_message=7
    )
    return runs, store


def work_off(store: MemorySettlements, worker: SettlementWorker, twice: bool = False) -> int:
    """Deliver every message (and the messages they write) until none is left; a killed delivery
    leaves its message for the next one, as SQS does."""
    delivered = 0
    while store.messages:
        message = store.messages[0]
        try:
            worker.handle(message)
            if twice:
                worker.handle(message)
        except WorkerKilled:
            return delivered
        store.messages.pop(0)
        delivered += 1
    return delivered


def uninterrupted_run() -> tuple[SettlementRuns, Run, int]:
    """The run of the standard ledger worked off in one go: what every interrupted run must equal."""
    ledger, now = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    run = runs.start(now)
    work_off(store, SettlementWorker(runs))
    return runs, run, now


def statement_of(runs: SettlementRuns, run_id: str) -> list[str]:
    return list(runs.statement_csv(run_id))


def test_a_run_settles_every_settleable_entry_due_by_its_period_end_once_per_payee(tmp_path):
    ledger, now = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    run = runs.start(now)
    assert len(store.messages) == ENTRY_SHARDS
    work_off(store, SettlementWorker(runs))
    view = runs.view(run.run_id)
    assert view["status"] == "DONE" and view["processed"] == view["total"] == 121
    settled = [e for e in ledger.stored.values() if e.status is EntryStatus.SETTLED]
    assert len(settled) == 121 and all(e.settlement_run_id == run.run_id for e in settled)
    assert ledger.stored[("o-999", "P#LATE#guide")].status is EntryStatus.SETTLEABLE  # due after the period
    # the statement's totals are the entries taken, per payee
    rows = {r.payee: r for r in store.statement(run)}
    for payee, row in rows.items():
        taken = [e.amount_fen for e in settled if e.payee == payee]
        assert row.net_fen == sum(taken) and row.entries == len(taken)
        assert ledger.totals(payee)[EntryStatus.SETTLED] == row.net_fen
    assert rows["guide:G001"].clawbacks_fen == 700
    assert view["total_fen"] == sum(e.amount_fen for e in settled) and view["payees"] == 4


def test_a_second_request_for_the_period_is_the_same_run_and_starts_nothing():
    ledger, now = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    first = runs.start(now)
    again = runs.start(now)
    assert again.run_id == first.run_id and len(store.messages) == ENTRY_SHARDS


def test_a_run_killed_halfway_and_restarted_produces_the_same_statements_as_an_uninterrupted_one():
    calm, run, now = uninterrupted_run()

    ledger, _ = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    runs.start(now)
    store.crash_after = 9  # the worker dies before its 10th batch
    work_off(store, SettlementWorker(runs))
    assert runs.view(run.run_id)["status"] == "RUNNING"
    store.crash_after = None  # restarted: the same message comes back
    work_off(store, SettlementWorker(runs))

    assert runs.view(run.run_id)["status"] == "DONE"
    assert statement_of(runs, run.run_id) == statement_of(calm, run.run_id)
    assert runs.view(run.run_id)["processed"] == 121


def test_every_message_delivered_twice_settles_nothing_twice():
    ledger, now = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    run = runs.start(now)
    work_off(store, SettlementWorker(runs), twice=True)
    assert runs.view(run.run_id)["processed"] == 121
    assert sum(r.entries for r in store.statement(run)) == 121


def test_the_statement_is_utf8_csv_with_a_bom_one_row_per_payee_named_with_its_account():
    ledger, now = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    run = runs.start(now)
    work_off(store, SettlementWorker(runs))
    lines = statement_of(runs, run.run_id)
    assert lines[0].startswith(
        "\ufeffpayee_kind,payee_id,name,gross_fen,clawbacks_fen,net_fen,net_yuan,entries,account"
    )
    dealer = next(line for line in lines if line.startswith("dealer,D001"))
    assert "华东经销商" in dealer and dealer.rstrip("\r\n").endswith("wxpay:1900000109,0,0")
    payee = list(runs.payee_csv(run.run_id, "guide:G001"))
    assert payee[0].startswith("\ufefforder_id") and any(",clawback,-700,-7.00,r-1" in line for line in payee)


def test_a_period_that_has_not_ended_is_refused():
    ledger, now = ledger_with_entries()
    runs, _ = runs_on(ledger, now)
    with pytest.raises(ValidationFailed):
        runs.start(now + 3_600_000)


def test_a_shard_given_up_fails_its_run():
    ledger, now = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    run = runs.start(now)
    SettlementWorker(runs).gave_up(store.messages[0], "boom")
    assert store.get(run.run_id).status is RunStatus.FAILED  # type: ignore[union-attr]


def test_a_failed_run_posted_again_resumes_where_it_stopped_and_ends_with_the_uninterrupted_statements():
    calm, run, now = uninterrupted_run()

    # Given a run whose worker dies at its 5th batch until the queue gives that message up
    ledger, _ = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    runs.start(now)
    worker = SettlementWorker(runs)
    store.crash_after = 4
    work_off(store, worker)
    worker.gave_up(store.messages.pop(0), "boom")  # dead-lettered
    store.crash_after = None
    work_off(store, worker)  # the other shards' messages find the run FAILED and stop
    assert runs.view(run.run_id)["status"] == "FAILED"
    assert runs.view(run.run_id)["processed"] < 121
    # When finance posts the period again (the cause fixed)
    resumed = runs.start(now)
    assert (resumed.run_id, resumed.status) == (run.run_id, RunStatus.RUNNING)
    assert runs.start(now).status is RunStatus.RUNNING and len(store.messages) <= ENTRY_SHARDS  # resumed once
    work_off(store, worker)
    # Then the run is DONE with the statements of a run that never failed
    assert runs.view(run.run_id)["status"] == "DONE" and runs.view(run.run_id)["processed"] == 121
    assert statement_of(runs, run.run_id) == statement_of(calm, run.run_id)
    assert runs.start(now).status is RunStatus.DONE  # a DONE run is the same run, not a new one


def test_the_statement_merges_the_shards_rows_one_row_per_payee_summed_in_payee_order():
    def row(payee: str, gross: int, clawbacks: int = 0, entries: int = 1) -> StatementRow:
        return StatementRow(payee, gross, clawbacks, entries)

    shards = [
        [row("dealer:D1", 100), row("guide:G1", 30, 5, 2), row("store:S1", 80)],
        [],  # a shard that paid nobody
        [row("guide:G1", 12), row("guide:G2", 40, 0, 3)],  # G2 only here
        [row("dealer:D1", 7, 7, 2), row("store:S1", 1)],
    ]
    merged = list(summed_by_payee(shards))
    assert [r.payee for r in merged] == ["dealer:D1", "guide:G1", "guide:G2", "store:S1"]
    for got in merged:
        mine = [r for shard in shards for r in shard if r.payee == got.payee]
        assert (got.gross_fen, got.clawbacks_fen, got.entries) == (
            sum(r.gross_fen for r in mine),
            sum(r.clawbacks_fen for r in mine),
            sum(r.entries for r in mine),
        )
    assert merged[0].net_fen == 100 and merged[1].net_fen == 37


def test_the_merge_reads_each_shard_as_it_goes_never_the_whole_statement():
    read = [0, 0]

    def shard(n: int, payees: list[str]) -> Iterator[StatementRow]:
        for payee in payees:
            read[n] += 1
            yield StatementRow(payee, 1, 0, 1)

    many = [f"guide:G{n:04d}" for n in range(1000)]
    merged = summed_by_payee([shard(0, many), shard(1, many[::2])])
    first = next(merged)
    assert first == StatementRow("guide:G0000", 2, 0, 2)
    assert read[0] <= 2 and read[1] <= 2  # one row ahead per shard at most
    assert sum(1 for _ in merged) == 999 and read == [1000, 500]


def test_entries_profit_sharing_claimed_are_left_out_of_the_statement_and_counted_apart():
    ledger, now = ledger_with_entries()
    shared = [e for e in ledger.stored.values() if e.order_id in ("o-000", "o-003") and e.payee == "dealer:D001"]
    for e in shared:  # what profit sharing's claim writes (its store's conditional update)
        ledger.stored[(e.order_id, e.entry_id)] = Entry(**{**e.__dict__, "payout": "profit_sharing#PS-1"})
    full_ledger, _ = ledger_with_entries()
    runs, store = runs_on(ledger, now)
    full_runs, full_store = runs_on(full_ledger, now)
    run, full = runs.start(now), full_runs.start(now)
    work_off(store, SettlementWorker(runs))
    work_off(full_store, SettlementWorker(full_runs))
    rows = {r.payee: r for r in store.statement(run)}
    before = {r.payee: r for r in full_store.statement(full)}
    left_out = sum(e.amount_fen for e in shared)
    dealer = rows["dealer:D001"]
    assert dealer.gross_fen == before["dealer:D001"].gross_fen - left_out
    assert dealer.entries == before["dealer:D001"].entries - 2
    assert (dealer.shared_entries, dealer.shared_fen) == (2, left_out)
    assert rows["guide:G001"] == before["guide:G001"]  # nobody else's row moves
    view = runs.view(run.run_id)
    assert view["total_fen"] == full_runs.view(full.run_id)["total_fen"] - left_out
    assert view["profit_shared_fen"] == left_out and view["profit_shared_entries"] == 2
    assert view["processed"] == view["total"]  # the left-out entries are processed, not paid
    line = next(x for x in statement_of(runs, run.run_id) if x.startswith("dealer,D001"))
    assert line.rstrip("\r\n").endswith(f",2,{left_out}")
    paid_by = [x.rstrip("\r\n").rsplit(",", 1)[1] for x in runs.payee_csv(run.run_id, "dealer:D001")][1:]
    assert paid_by.count("profit_sharing") == 2 and paid_by.count("statement") == dealer.entries
    # every entry due left the queue once, so no later run sees it again
    assert all(ledger.due(EntryStatus.SETTLEABLE, shard, now, 10**6) == [] for shard in range(ENTRY_SHARDS))
