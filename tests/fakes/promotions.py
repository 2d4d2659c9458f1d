"""In-memory promotion store (shared.promotions.ports.PromotionStore) with the rules of
`shared.data.stores.promotions`: a put is conditional on the version read (ConcurrentUpdate
otherwise, nothing written), and `current` lists the promotions not ended, by id.

`full_300_off_30()` is the 满300减30 that was a setting before it became a promotion: the seed
and the tests' table fixture create it, so amounts asserted before still hold."""

from __future__ import annotations

import threading
from dataclasses import replace

from infra.local.seed import STANDING_PROMOTION
from shared.kernel.errors import ConcurrentUpdate
from shared.promotions.model import Promotion

FULL_300_OFF_30 = STANDING_PROMOTION.promotion_id


def full_300_off_30(version: int = 1) -> Promotion:
    """The seed's standing promotion, one definition for `make dev` and the tests."""
    return replace(STANDING_PROMOTION, version=version)


class InMemoryPromotions:
    def __init__(self, *promotions: Promotion) -> None:
        self._lock = threading.Lock()
        self.stored: dict[str, Promotion] = {p.promotion_id: p for p in promotions}
        self.puts = 0

    def get(self, promotion_id: str) -> Promotion | None:
        return self.stored.get(promotion_id)

    def put(self, promotion: Promotion, expected_version: int | None) -> None:
        with self._lock:
            current = self.stored.get(promotion.promotion_id)
            if (None if current is None else current.version) != expected_version:
                raise ConcurrentUpdate("the promotion changed while saving", promotion_id=promotion.promotion_id)
            self.stored[promotion.promotion_id] = promotion
            self.puts += 1

    def current(self, now_ms: int) -> list[Promotion]:
        return sorted((p for p in self.stored.values() if p.ends_ms > now_ms), key=lambda p: p.promotion_id)
