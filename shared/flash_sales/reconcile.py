"""The reconciler: units the contended path took that no claim covers (a purchase that died
between its decrement and its order, a decrement applied twice after a lost response) go back
to their shard (docs/flash-sales.md, "Every unit is claimed exactly once")."""

from __future__ import annotations

from shared.flash_sales.model import (
    MAX_PAYMENT_WINDOW_S,
    FlashSale,
    ReconcileMarks,
    ShardMark,
    Take,
    UnitsClaimed,
    unclaimed,
)
from shared.flash_sales.ports import SaleStore, ShardStore
from shared.kernel.clock import Clock
from shared.kernel.errors import TemporarilyUnavailable
from shared.platform.observability import count, logger

# Keep checking a sale this long after it ends: longer than the longest payment window, so the units
# of an order placed just before the end that then expires come back to the location too.
RECONCILE_GRACE_MS = 2 * (MAX_PAYMENT_WINDOW_S * 1000)
VOIDS_PER_WRITE = 90  # VOID claims and their shard's increment: one transaction of at most 100 items


class Reconciler:
    def __init__(self, sales: SaleStore, shards: ShardStore, clock: Clock, settle_s: float) -> None:
        self._sales = sales
        self._shards = shards
        self._clock = clock
        self._settle_ms = int(settle_s * 1000)

    def run(self) -> int:
        """Give back units that nobody claimed, on every live or recently ended sale; returns how
        many. A unit is judged only once the settle time has passed since it was seen taken, so a
        purchase in flight normally claims its units first; if one is slower, the VOID claim wins
        and that purchase answers 503 having sold nothing: never both."""
        now = self._clock.now_ms()
        returned = 0
        for sale in self._sales.ending_after(now - RECONCILE_GRACE_MS):
            if now >= sale.starts_at_ms:
                returned += self.reconcile_sale(sale, now)
            if now >= sale.closes_at_ms:  # ended, or cancelled
                self.settle_sale(sale)
        if returned:
            count("FlashUnitsReconciled", returned)
            logger.warning("reconciled unclaimed flash units", extra={"units": returned})
        return returned

    def settle_sale(self, sale: FlashSale) -> int:
        """After the end (or the cancellation): what is on the sale's shards (unsold, given back, or an unpaid order's
        units released since) goes back to the sale's location, each shard in one conditional
        write, so every unit exactly once; run again, it moves only what came back since. Returns
        how many units went back (docs/flash-sales.md, "Stock")."""
        if self._clock.now_ms() < sale.closes_at_ms or not sale.holds_stock:
            return 0
        settled = 0
        for level in self._shards.levels(sale):
            if level.remaining <= 0:
                continue
            try:
                if self._shards.settle(sale, level.shard, level.remaining):
                    settled += level.remaining
            except TemporarilyUnavailable:
                continue  # tried again on the next run
        if settled:
            count("FlashUnitsSettled", settled)
            logger.info("unsold flash units back to stock", extra={"flash_sale_id": sale.sale_id, "units": settled})
        return settled

    def reconcile_sale(self, sale: FlashSale, now_ms: int) -> int:
        marks = self._shards.marks(sale.sale_id)
        moved = dict(marks.shards)
        returned = 0
        for level in self._shards.levels(sale):
            mark = marks.shards.get(level.shard, ShardMark())
            checked, pending, seen_at = mark.checked, mark.pending, mark.seen_at_ms
            if pending > checked and now_ms - seen_at >= self._settle_ms:
                settled = self._return_unclaimed(sale.sale_id, level.shard, checked, pending)
                if settled is not None:
                    returned += settled
                    checked = pending
            if pending == checked and level.taken > checked:
                pending, seen_at = level.taken, now_ms
            moved[level.shard] = ShardMark(checked, pending, seen_at)
        if moved != marks.shards:
            # If another reconciler moved the marks first, its VOID claims and ours never overlap.
            self._shards.save_marks(sale.sale_id, ReconcileMarks(moved, marks.version))
        return returned

    def _return_unclaimed(self, sale_id: str, shard: int, checked: int, through: int) -> int | None:
        """Units checked+1 .. through of a shard that no claim covers go back, each with a VOID claim
        of its own (any late claim starts at one of them and so fails). None if that could not be
        settled now (it is tried again on the next run)."""
        missing = unclaimed(self._shards.claims_between(sale_id, shard, checked, through), checked, through)
        returned = 0
        for start in range(0, len(missing), VOIDS_PER_WRITE):
            chunk = [Take(shard, unit, 1) for unit in missing[start : start + VOIDS_PER_WRITE]]
            try:
                self._shards.give_back(sale_id, chunk, self._clock.now_ms())
            except (UnitsClaimed, TemporarilyUnavailable):
                return None  # a claim appeared meanwhile, or the database is busy: look again next run
            returned += len(chunk)
        return returned
