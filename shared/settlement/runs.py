"""Settlement runs for finance (API.md, "Commission and settlement"; docs/commission.md).

`start` is idempotent per period (the run id is the period end) and answers at once: the work is
one message per entry shard, written in the run's own transaction and settled by the worker. The
same request for a FAILED run (a shard gave up) resumes it: RUNNING again, with one message per
shard not yet done.
`settle_shard` is that worker: it settles a batch per transaction and, after `per_message`
entries, hands the rest of its shard to a new message (so no invocation runs long); a redelivered
or duplicated message finds only what is still SETTLEABLE, so nothing is skipped or paid twice.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import replace

from shared.commission.ledger_model import ENTRY_SHARDS, EntryStatus
from shared.commission.ports import Ledger
from shared.kernel.clock import Clock
from shared.kernel.errors import ConcurrentUpdate, NotFound, ValidationFailed
from shared.kernel.events import DomainEvent, EventType
from shared.platform.observability import count, logger
from shared.settlement.model import Run, RunStatus, run_id_for, run_view, yuan
from shared.settlement.ports import PayeeDirectory, SettlementStore

BOM = "\ufeff"  # so that Excel reads the UTF-8 (Chinese names) as UTF-8
STATEMENT_COLUMNS = [
    "payee_kind",
    "payee_id",
    "name",
    "gross_fen",
    "clawbacks_fen",
    "net_fen",
    "net_yuan",
    "entries",
    "account",
    "profit_shared_entries",
    "profit_shared_fen",
]
ENTRY_COLUMNS = ["order_id", "entry_id", "sku", "role", "kind", "amount_fen", "amount_yuan", "refund_id", "paid_by"]


class SettlementRuns:
    def __init__(
        self,
        store: SettlementStore,
        ledger: Ledger,
        payees: PayeeDirectory,
        clock: Clock,
        batch: int = 20,
        per_message: int = 400,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._payees = payees
        self._clock = clock
        self._batch = batch
        self._per_message = per_message

    # -- the API ------------------------------------------------------------------------------
    def start(self, period_end_ms: int) -> Run:
        """The run of this period: created with one message per shard, or the one that exists
        (two requests at once: one creates it, the other reads it)."""
        now = self._clock.now_ms()
        if period_end_ms > now:
            raise ValidationFailed("period_end must not be in the future", period_end_ms=period_end_ms)
        run_id = run_id_for(period_end_ms)
        existing = self._store.get(run_id)
        if existing is not None and existing.status is RunStatus.FAILED:
            return self._resume(existing)
        if existing is not None:
            return existing
        run = Run(run_id, period_end_ms, RunStatus.RUNNING, ENTRY_SHARDS, 0, now)
        messages = [_shard_due(run, shard, first=True) for shard in range(ENTRY_SHARDS)]
        if self._store.start(run, messages):
            count("SettlementRunsStarted")
            return run
        found = self._store.get(run_id)
        assert found is not None  # it existed: the conditional put said so
        return found

    def _resume(self, failed: Run) -> Run:
        """Once the cause is fixed, a FAILED run goes on where it stopped: what it settled stays
        in it, and each shard not DONE gets a message again (counting its entries first if it
        never began), finding only what is still SETTLEABLE."""
        resumed = replace(failed, status=RunStatus.RUNNING)
        messages = [
            _shard_due(resumed, p.shard, first=not (p.counted or p.processed))
            for p in self._store.shards(failed)
            if not p.done
        ]
        if self._store.resume(resumed, messages):
            count("SettlementRunsResumed")
            logger.warning("settlement run resumed", extra={"run_id": failed.run_id, "shards": len(messages)})
            return resumed
        found = self._store.get(failed.run_id)  # another request resumed it first
        assert found is not None
        return found

    def view(self, run_id: str) -> dict[str, object]:
        run = self._run(run_id)
        payees = sum(1 for _ in self._store.statement(run))
        return run_view(run, self._store.shards(run), payees)

    def statement_csv(self, run_id: str) -> Iterator[str]:
        """One row per payee: what it earned, what refunds took back, the net, the entries behind
        it and where it is paid. Streamed: the store merges the shards' rows as it goes (a page of
        each shard's rows in memory, never the whole statement)."""
        run = self._run(run_id)
        yield BOM + _line(STATEMENT_COLUMNS)
        for row in self._store.statement(run):
            name, account = self._payees(row.payee)
            yield _line(
                [
                    row.kind,
                    row.payee_id,
                    name or "",
                    row.gross_fen,
                    row.clawbacks_fen,
                    row.net_fen,
                    yuan(row.net_fen),
                    row.entries,
                    account or "",
                    row.shared_entries,
                    row.shared_fen,
                ]
            )

    def payee_csv(self, run_id: str, payee: str) -> Iterator[str]:
        self._run(run_id)
        yield BOM + _line(ENTRY_COLUMNS)
        for e in self._store.payee_entries(run_id, payee):
            kind = "clawback" if e.is_clawback else "earning"
            paid_by = "profit_sharing" if e.paid_elsewhere else "statement"
            yield _line(
                [
                    e.order_id,
                    e.entry_id,
                    e.sku,
                    e.role.value,
                    kind,
                    e.amount_fen,
                    yuan(e.amount_fen),
                    e.refund_id or "",
                    paid_by,
                ]
            )

    def _run(self, run_id: str) -> Run:
        run = self._store.get(run_id)
        if run is None:
            raise NotFound("no such settlement run", run_id=run_id)
        return run

    # -- the worker ---------------------------------------------------------------------------
    def settle_shard(self, run_id: str, shard: int, first: bool) -> int:
        """Settle what is SETTLEABLE in one shard up to the run's period end: at most
        `per_message` entries here, the rest in the message the last batch writes. Returns the
        entries settled by this call."""
        run = self._store.get(run_id)
        if run is None or run.status is not RunStatus.RUNNING:
            return 0
        if first:
            counted = self._store.count_due(shard, run.period_end_ms)
            if counted:
                self._store.count(run, shard, counted)
        settled = 0
        while True:
            # One read for what is left of this message's share (one Query of up to `per_message`
            # entries), settled in transactions of `batch`: not one read per transaction.
            page = self._ledger.due(EntryStatus.SETTLEABLE, shard, run.period_end_ms, self._per_message - settled)
            if not page:
                if self._store.finish_shard(run, shard):
                    logger.info("settlement shard done", extra={"run_id": run_id, "shard": shard})
                return settled
            for at in range(0, len(page), self._batch):
                entries = page[at : at + self._batch]
                last = settled + len(entries) >= self._per_message
                then = _shard_due(run, shard, first=False) if last else None
                try:
                    self._store.settle(run, shard, entries, then)
                except ConcurrentUpdate:
                    break  # another delivery of this shard settled some of them: read again
                settled += len(entries)
                count("SettlementEntriesSettled", len(entries))
                if last:
                    return settled

    def fail(self, run_id: str, reason: str) -> None:
        self._store.fail(run_id, reason)


def _shard_due(run: Run, shard: int, first: bool) -> DomainEvent:
    payload = {"run_id": run.run_id, "shard": shard, "period_end_ms": run.period_end_ms, "first": first}
    return DomainEvent(EventType.SETTLEMENT_SHARD_DUE, f"{run.run_id}#{shard}", payload)


def _line(values: Iterable[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


class SettlementWorker:
    """The consumer of SettlementShardDue (its queue: SettlementQueue in infra/template.yaml)."""

    name = "settlement"

    def __init__(self, runs: SettlementRuns) -> None:
        self._runs = runs

    def handle(self, event: DomainEvent) -> None:
        if event.type is not EventType.SETTLEMENT_SHARD_DUE:
            return
        payload = event.payload
        self._runs.settle_shard(str(payload["run_id"]), int(payload["shard"]), bool(payload.get("first")))

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        self._runs.fail(str(event.payload.get("run_id")), reason)
