"""A background job's high-water mark on the table: the coupon reminders' per-partition checkpoints and
the paid-membership jobs' (docs/data-model.md). Only ever moved forward, so two runs racing leave the
later mark and a stale run cannot move a job back over work already done."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import UpdateError

from shared.data.transactions import condition_failed, translated


def advance_checkpoint(item_class: Any, key: tuple[str, str], through: str) -> None:
    """Set `through` on the item at `key` unless it is already at or past it. `item_class` is a
    checkpoint item: a `BaseItem` with a `through` UnicodeAttribute."""
    item = item_class(*key)
    ahead = item_class.through.does_not_exist() | (item_class.through < through)
    try:
        with translated():
            item.update(actions=[item_class.through.set(through), item_class.entity.set(item_class)], condition=ahead)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise  # a failure that is not "another run is ahead" (translated() let it through)
