"""The after-sale window closes: FROZEN entries become SETTLEABLE when due (docs/commission.md).

A schedule runs this. Entries are found through the index keyed by status, shard and due time
(never a Scan); each move is conditional on the entry still being FROZEN, so two runs at once, or
a run racing a refund, move each entry once."""

from __future__ import annotations

from shared.commission.ledger_model import ENTRY_SHARDS, EntryStatus
from shared.commission.ports import Ledger, LedgerChange
from shared.kernel.clock import Clock
from shared.kernel.errors import ConcurrentUpdate
from shared.platform.observability import count

# Entries per transaction: each move writes the entry and its payee's totals (at most 2 items).
GROUP = 25


class CommissionRelease:
    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self._ledger = ledger
        self._clock = clock

    def release_due(self, per_shard: int = 200) -> int:
        """Move every FROZEN entry whose window has closed; returns how many moved."""
        now = self._clock.now_ms()
        moved = 0
        for shard in range(ENTRY_SHARDS):
            due = self._ledger.due(EntryStatus.FROZEN, shard, now, per_shard)
            for start in range(0, len(due), GROUP):
                group = [(e, e.moved(EntryStatus.SETTLEABLE)) for e in due[start : start + GROUP]]
                moved += self._move(group)
        if moved:
            count("CommissionEntriesSettleable", moved)
        return moved

    def _move(self, group: list) -> int:
        try:
            self._ledger.write(LedgerChange(moved=group))
            return len(group)
        except ConcurrentUpdate:
            pass  # one of them moved meanwhile: the rest one by one
        done = 0
        for pair in group:
            try:
                self._ledger.write(LedgerChange(moved=[pair]))
                done += 1
            except ConcurrentUpdate:
                continue
        return done
