"""Settlement runs: finance closes a period (docs/commission.md, "Settlement runs"). Pure.

    POST (period_end) --> RUNNING: one SettlementShardDue message per entry shard, in the run's own
    transaction --> each shard settles its SETTLEABLE entries due by period_end, a batch per
    transaction (entry SETTLED + statement row + progress together), continuing itself in later
    messages --> a shard finding nothing left is DONE --> the last shard DONE makes the run DONE.

The run id comes from the period end, so a second request for the same period is the same run.
The checkpoint is the index itself: a settled entry leaves the SETTLEABLE queue in the transaction
that counts it, so a restart neither skips an entry nor counts one twice.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import groupby
from typing import Any

from shared.kernel.clock import iso
from shared.kernel.errors import ValidationFailed


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


def run_id_for(period_end_ms: int) -> str:
    """One run per period: the id is the period end (UTC, to the second)."""
    if period_end_ms % 1000:
        raise ValidationFailed("period_end is to the second", period_end=iso(period_end_ms))
    return "run-" + datetime.fromtimestamp(period_end_ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class Run:
    run_id: str
    period_end_ms: int
    status: RunStatus
    shards: int
    shards_done: int
    created_at_ms: int
    # Runs started before the statement rows and shard items got a partition per shard keep them
    # in the run's partition (docs/commission.md, "Runs started before the per-shard keys"); the
    # store reads and writes each run in the layout it was started with.
    keyed_per_shard: bool = True


@dataclass(frozen=True)
class ShardProgress:
    shard: int
    done: bool
    processed: int
    counted: int
    net_fen: int
    shared_fen: int = 0  # left out: paid by profit sharing
    shared_entries: int = 0


@dataclass(frozen=True)
class StatementRow:
    """One payee's line of a run's statement (summed over the shards that paid it)."""

    payee: str  # "<kind>:<id>"
    gross_fen: int  # what it earned
    clawbacks_fen: int  # what refunds took back (>= 0)
    entries: int
    # Entries due in the period that profit sharing paid (claimed before the run reached them):
    # left out of gross, clawbacks and net, shown so that finance sees why (docs/operations.md).
    shared_entries: int = 0
    shared_fen: int = 0  # their net (earnings less clawbacks)

    @property
    def kind(self) -> str:
        return self.payee.split(":", 1)[0]

    @property
    def payee_id(self) -> str:
        return self.payee.split(":", 1)[1]

    @property
    def net_fen(self) -> int:
        return self.gross_fen - self.clawbacks_fen


def summed_by_payee(shards: Iterable[Iterable[StatementRow]]) -> Iterator[StatementRow]:
    """The statement from what each shard paid: every source in payee order (a shard's rows, or
    a payee's rows one after another), merged k-way and summed per payee, in payee order. Holds
    one row per source at a time, never the whole statement."""
    merged = heapq.merge(*shards, key=lambda row: row.payee)
    for payee, rows in groupby(merged, key=lambda row: row.payee):
        gross = clawbacks = entries = shared_entries = shared = 0
        for row in rows:
            gross += row.gross_fen
            clawbacks += row.clawbacks_fen
            entries += row.entries
            shared_entries += row.shared_entries
            shared += row.shared_fen
        yield StatementRow(payee, gross, clawbacks, entries, shared_entries, shared)


def yuan(fen: int) -> str:
    """Integer fen as yuan with two decimals, by integer arithmetic (never a float)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def run_view(run: Run, shards: list[ShardProgress], payees: int) -> dict[str, Any]:
    processed = sum(s.processed for s in shards)
    return {
        "run_id": run.run_id,
        "period_end": iso(run.period_end_ms),
        "status": run.status.value,
        "processed": processed,
        "total": max(processed, sum(s.counted for s in shards)),
        "shards": run.shards,
        "shards_done": run.shards_done,
        "payees": payees,
        "total_fen": sum(s.net_fen for s in shards),
        "profit_shared_entries": sum(s.shared_entries for s in shards),
        "profit_shared_fen": sum(s.shared_fen for s in shards),
        "created_at": iso(run.created_at_ms),
    }
