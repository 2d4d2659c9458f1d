"""Available points expire `points_expire_after_days` after they became available (docs/membership.md,
"Release and expiry"): first in, first out, so what a lot loses is what is left of it."""

from __future__ import annotations

from shared.kernel.clock import Clock
from shared.membership import model
from shared.membership.due_lots import sweep
from shared.membership.model import LotState
from shared.membership.ports import MemberStore
from shared.platform.observability import count


class PointsExpiry:
    def __init__(self, store: MemberStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def expire_due(self, per_shard: int = 200) -> int:
        """Expire every released lot whose time is up; returns how many lots closed."""
        moved = sweep(self._store, LotState.RELEASED, self._clock, per_shard, model.expire)
        if moved:
            count("PointsLotsExpired", moved)
        return moved
