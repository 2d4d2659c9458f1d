"""What the promotion use cases need from the outside (docs/pricing.md, "Promotions")."""

from __future__ import annotations

from typing import Protocol

from shared.promotions.model import Promotion


class PromotionStore(Protocol):
    def get(self, promotion_id: str) -> Promotion | None:
        """The promotion as last written (a consistent read), or None."""
        ...

    def put(self, promotion: Promotion, expected_version: int | None) -> None:
        """Write `promotion` only if the stored one is at `expected_version` (None: only if there is
        none): ConcurrentUpdate (409) otherwise, and nothing written."""
        ...

    def current(self, now_ms: int) -> list[Promotion]:
        """Every promotion that has not ended at `now_ms` (running or scheduled), by id: one Query of
        one index partition, kept per process for a few seconds (docs/pricing.md says how long)."""
        ...
