"""Promotions for merchant admins and for everyone (API.md, "Promotions"; docs/pricing.md).

A PUT creates or replaces a promotion by a conditional write on the version it read, so two
concurrent PUTs cannot lose one: a PUT that names the `version` it read is refused (409
CONCURRENT_UPDATE) when another PUT got there first; one that does not is applied after it (read
again, written on the new version). Orders already quoted are untouched: a quote holds nothing and
an order is priced when it is placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.kernel.clock import SYSTEM, Clock
from shared.kernel.errors import ConcurrentUpdate, ValidationFailed
from shared.promotions.model import Promotion, promotion_problems
from shared.promotions.ports import PromotionStore

PUT_ATTEMPTS = 3  # a PUT without a version is read and written again when another PUT won the race


@dataclass(frozen=True)
class Promotions:
    store: PromotionStore
    clock: Clock = SYSTEM

    def put(self, draft: Promotion, expected_version: int | None = None) -> tuple[dict[str, Any], bool]:
        """Create or replace the promotion `draft.promotion_id`; returns its view and whether it was
        created. `expected_version`: the version the admin read (0: it must not exist yet).
        ValidationFailed (422) names every broken rule before anything is read."""
        problems = promotion_problems(draft)
        if problems:
            raise ValidationFailed("the promotion is not valid", errors=problems)
        for attempt in range(PUT_ATTEMPTS):
            current = self.store.get(draft.promotion_id)
            stored = 0 if current is None else current.version
            if expected_version is not None and expected_version != stored:
                raise ConcurrentUpdate(
                    "the promotion was changed since you read it",
                    promotion_id=draft.promotion_id,
                    version=stored,
                    expected_version=expected_version,
                )
            now = self.clock.now_ms()
            promotion = Promotion.plan(draft, stored + 1, now)
            try:
                self.store.put(promotion, None if current is None else current.version)
            except ConcurrentUpdate:
                if expected_version is not None or attempt == PUT_ATTEMPTS - 1:
                    raise
                continue
            return promotion.view(now), current is None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def running(self, limit: int, after_id: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The promotions running now, by id, `limit` at a time after `after_id`."""
        now = self.clock.now_ms()
        running = [p for p in self.store.current(now) if p.is_running(now)]
        page = [p for p in running if after_id is None or p.promotion_id > after_id][: limit + 1]
        more = len(page) > limit
        page = page[:limit]
        return [p.view(now) for p in page], (page[-1].promotion_id if more else None)

    def show(self, promotion_id: str) -> dict[str, Any] | None:
        found = self.store.get(promotion_id)
        return None if found is None else found.view(self.clock.now_ms())
