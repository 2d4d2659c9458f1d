"""`GET /admin/members?tag=`: the members with a tag, a page at a time (docs/membership.md,
"Tags and segments"). A tag is a range of one index ordering, read shard after shard: the cursor
holds the shard and the position in it, so a page reads at most `limit` positions per shard it
reaches (shards are few: `POINTS_SHARDS`)."""

from __future__ import annotations

from typing import Any

from shared.kernel.clock import Clock
from shared.membership.model import POINTS_SHARDS
from shared.membership.ports import Cursor, MemberStore, RulesStore
from shared.membership.tags import Activity, Tag, TagRange


def page(store: MemberStore, tag: TagRange, limit: int, cursor: Cursor) -> tuple[list[Activity], Cursor]:
    """One index page of the range's members from `cursor` (None: the start), and the cursor that
    resumes after it (None after the last): shard 0 to the last, in the ordering within a shard."""
    shard, position = (0, None) if cursor is None else (int(cursor["shard"]), cursor.get("position"))
    found, after = store.tagged(tag, shard, limit, position)
    if after is None:
        shard, after = shard + 1, None
    return found, (None if shard >= POINTS_SHARDS else {"shard": shard, "position": after})


class MemberDirectory:
    def __init__(self, store: MemberStore, rules: RulesStore, clock: Clock) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock

    def with_tag(self, tag: Tag, limit: int, cursor: Cursor) -> tuple[list[dict[str, Any]], Cursor]:
        """Up to `limit` members with `tag` now (fewer when a shard's range ends: the cursor goes on)."""
        now, rules = self._clock.now_ms(), self._rules.current().tags
        tag_range, next_cursor = TagRange.of(tag, now, rules), cursor
        found: list[Activity] = []
        for _ in range(2 * POINTS_SHARDS):  # bounded: a filter (min_orders) may leave pages short
            more, next_cursor = page(self._store, tag_range, limit - len(found), next_cursor)
            found += more
            if len(found) >= limit or next_cursor is None:
                break
        return [a.view(now, rules) for a in found], next_cursor
