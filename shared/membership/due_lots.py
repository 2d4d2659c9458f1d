"""The scheduled steps of a lot: release when the after-sale window closes, expiry when its time is
up (docs/membership.md, "Release and expiry").

Lots are found through the index keyed by state, shard and due time (never a Scan), and each is
moved in one write conditional on the versions read (the lot and the balance), so two runs at once,
or a run racing a refund or a spend, move each lot once; a lot whose write was refused stays in
the index and the next run takes it again. The index is the checkpoint: a run that stops halfway
leaves the rest due, and nothing is done twice.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.kernel.clock import Clock
from shared.kernel.errors import ConcurrentUpdate
from shared.membership.earning import change_of
from shared.membership.model import POINTS_SHARDS, LotState, OrderPoints, PointsBalance, Step
from shared.membership.ports import MemberChange, MemberStore

Advance = Callable[[OrderPoints, PointsBalance, int], Step | None]


def sweep(store: MemberStore, state: LotState, clock: Clock, per_shard: int, advance: Advance) -> int:
    """Move every lot in `state` due now by `advance`; returns how many moved."""
    now = clock.now_ms()
    moved = 0
    for shard in range(POINTS_SHARDS):
        for due in store.due(state, shard, now, per_shard):
            current = store.state(due.customer_sub, due.order_id)
            book, balance = current.book, current.balance or PointsBalance(due.customer_sub)
            if book is None or book.state is not state:
                continue  # moved meanwhile (the index is read eventually consistent)
            step = advance(book, balance, now)
            if step is None:
                continue
            change = change_of(current, step, balance, book)
            if state is LotState.RELEASED and change.balance_after is None:
                # Nothing was left to expire, by the balance as read: the write checks it is still so.
                change = MemberChange(balance, step.balance, book, step.book)
            try:
                store.write(change)
                moved += 1
            except ConcurrentUpdate:
                continue  # changed since read: due again next run
    return moved
