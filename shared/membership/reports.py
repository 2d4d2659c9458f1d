"""`GET /admin/reports/membership`: the members by store and tag, counted now (docs/membership.md,
"Reports"). Each tag is walked through its index ranges (never a Scan), every shard, in pages;
a member counts under the store of its last paid order. The paid-membership ratios the issue asks
for (penetration, conversion, renewal, churn) need paid membership, which is not built."""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared.kernel.clock import Clock, iso
from shared.membership.directory import page
from shared.membership.ports import Cursor, MemberStore, RulesStore
from shared.membership.tags import Tag, TagRange

NO_STORE = "-"


class MembershipReport:
    def __init__(
        self, store: MemberStore, rules: RulesStore, clock: Clock, page_size: int = 500, max_pages: int = 400
    ) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock
        self._page_size = page_size
        self._max_pages = max_pages  # per tag: 200,000 members at 500 a page

    def by_store(self) -> dict[str, Any]:
        """Members per store and tag now; `complete` False when a tag had more pages than the budget
        (its counts are then lower bounds)."""
        now, rules = self._clock.now_ms(), self._rules.current().tags
        counts: dict[str, Counter[Tag]] = {}
        complete = True
        for tag in Tag:
            complete = self._count(TagRange.of(tag, now, rules), tag, counts) and complete
        rows = [
            {"store_id": None if store == NO_STORE else store, **{str(t): counted[t] for t in Tag}}
            for store, counted in sorted(counts.items())
        ]
        totals = {str(t): sum(c[t] for c in counts.values()) for t in Tag}
        return {"at": iso(now), "tags": rules.view(), "stores": rows, "totals": totals, "complete": complete}

    def _count(self, tag_range: TagRange, tag: Tag, counts: dict[str, Counter[Tag]]) -> bool:
        cursor: Cursor = None
        for _ in range(self._max_pages):
            found, cursor = page(self._store, tag_range, self._page_size, cursor)
            for activity in found:
                counts.setdefault(activity.store_id or NO_STORE, Counter())[tag] += 1
            if cursor is None:
                return True
        return False
