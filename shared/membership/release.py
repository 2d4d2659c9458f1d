"""The after-sale window closes: FROZEN points become available (docs/membership.md, "Release and
expiry"). The window is the commission ledger's (`COMMISSION_AFTER_SALE_WINDOW_S`): an order's
points and its commissions are released by the same after-sale window."""

from __future__ import annotations

from shared.kernel.clock import Clock
from shared.membership import model
from shared.membership.due_lots import sweep
from shared.membership.model import LotState
from shared.membership.ports import MemberStore, RulesStore
from shared.platform.observability import count


class PointsRelease:
    def __init__(self, store: MemberStore, rules: RulesStore, clock: Clock) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock

    def release_due(self, per_shard: int = 200) -> int:
        """Release every lot whose window has closed (expiry counted from now); returns how many."""
        rules = self._rules.current()
        moved = sweep(
            self._store,
            LotState.FROZEN,
            self._clock,
            per_shard,
            lambda lot, bal, now: model.release(lot, bal, rules, now),
        )
        if moved:
            count("PointsLotsReleased", moved)
        return moved
