"""In-memory settlement store (shared.settlement.ports.SettlementStore) over a MemoryLedger, with
the DynamoDB store's conditions and all-or-nothing batches; `crash_after` makes the n-th batch
write nothing and raise, as a worker killed mid-run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from shared.commission.ledger_model import Entry, EntryStatus
from shared.commission.ports import LedgerChange
from shared.kernel.errors import ConcurrentUpdate
from shared.kernel.events import DomainEvent
from shared.settlement.model import Run, RunStatus, ShardProgress, StatementRow, summed_by_payee
from tests.fakes.commission import MemoryLedger


class WorkerKilled(Exception):
    pass


class MemorySettlements:
    def __init__(self, ledger: MemoryLedger) -> None:
        self.ledger = ledger
        self.runs: dict[str, Run] = {}
        self.progress: dict[tuple[str, int], ShardProgress] = {}
        self.rows: dict[tuple[str, str, int], list[int]] = {}
        self.messages: list[DomainEvent] = []
        self.batches = 0
        self.crash_after: int | None = None

    def start(self, run: Run, messages: Sequence[DomainEvent]) -> bool:
        if run.run_id in self.runs:
            return False
        self.runs[run.run_id] = run
        for shard in range(run.shards):
            self.progress[(run.run_id, shard)] = ShardProgress(shard, False, 0, 0, 0)
        self.messages.extend(messages)
        return True

    def resume(self, run: Run, messages: Sequence[DomainEvent]) -> bool:
        held = self.runs.get(run.run_id)
        if held is None or held.status is not RunStatus.FAILED:
            return False
        self.runs[run.run_id] = replace(held, status=RunStatus.RUNNING)
        self.messages.extend(messages)
        return True

    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def shards(self, run: Run) -> list[ShardProgress]:
        return [p for (r, _), p in sorted(self.progress.items()) if r == run.run_id]

    def count_due(self, shard: int, until_ms: int) -> int:
        return len(self.ledger.due(EntryStatus.SETTLEABLE, shard, until_ms, 10**9))

    def count(self, run: Run, shard: int, counted: int) -> None:
        key = (run.run_id, shard)
        self.progress[key] = replace(self.progress[key], counted=counted)

    def settle(self, run: Run, shard: int, entries: Sequence[Entry], then: DomainEvent | None) -> None:
        if self.crash_after is not None and self.batches >= self.crash_after:
            raise WorkerKilled(f"killed before batch {self.batches + 1}")
        progress = self.progress[(run.run_id, shard)]
        if progress.done:
            raise ConcurrentUpdate("the shard is done")
        for entry in entries:  # the store's conditions: the claim it was read with is still the claim
            held = self.ledger.stored.get((entry.order_id, entry.entry_id))
            if held is not None and held.payout != entry.payout:
                raise ConcurrentUpdate("an entry was claimed meanwhile", entry_id=entry.entry_id)
        moved = [(e, e.moved(EntryStatus.SETTLED, run_id=run.run_id)) for e in entries]
        self.ledger.write(LedgerChange(moved=moved))  # all or nothing, conditional on each state
        for entry in entries:
            row = self.rows.setdefault((run.run_id, entry.payee, shard), [0, 0, 0, 0, 0])
            if entry.paid_elsewhere:
                row[3] += 1
                row[4] += entry.amount_fen
                continue
            row[0 if entry.amount_fen >= 0 else 1] += abs(entry.amount_fen)
            row[2] += 1
        shared = [e for e in entries if e.paid_elsewhere]
        self.progress[(run.run_id, shard)] = replace(
            progress,
            processed=progress.processed + len(entries),
            net_fen=progress.net_fen + sum(e.amount_fen for e in entries if not e.paid_elsewhere),
            shared_entries=progress.shared_entries + len(shared),
            shared_fen=progress.shared_fen + sum(e.amount_fen for e in shared),
        )
        if then is not None:
            self.messages.append(then)
        self.batches += 1

    def finish_shard(self, run: Run, shard: int) -> bool:
        progress = self.progress[(run.run_id, shard)]
        held = self.runs[run.run_id]
        if progress.done or held.status is not RunStatus.RUNNING:
            return False
        self.progress[(run.run_id, shard)] = replace(progress, done=True)
        done = held.shards_done + 1
        status = RunStatus.DONE if done >= held.shards else held.status
        self.runs[run.run_id] = replace(held, shards_done=done, status=status)
        return True

    def fail(self, run_id: str, reason: str) -> None:
        if run_id in self.runs and self.runs[run_id].status is RunStatus.RUNNING:
            self.runs[run_id] = replace(self.runs[run_id], status=RunStatus.FAILED)

    def statement(self, run: Run) -> Iterator[StatementRow]:
        """As the DynamoDB store reads it: each shard's rows in payee order, merged."""
        return summed_by_payee(
            [
                StatementRow(payee, *self.rows[(run.run_id, payee, shard)])
                for (r, payee, s) in sorted(self.rows)
                if r == run.run_id and s == shard
            ]
            for shard in range(run.shards)
        )

    def payee_entries(self, run_id: str, payee: str) -> Iterator[Entry]:
        for entry in self.ledger.stored.values():
            if entry.settlement_run_id == run_id and entry.payee == payee:
                yield entry
