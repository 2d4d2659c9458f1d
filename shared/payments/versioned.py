"""Writing a decision on the latest version of a stored record: refunds and shares both change by
"decide from what is stored, write if it is still what was read, else read again"."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shared.kernel.errors import TemporarilyUnavailable

T = TypeVar("T")
ATTEMPTS = 4


def write_decided(
    current: T,
    decide: Callable[[T], T],
    change: Callable[[T, T], T | None],
    reread: Callable[[T], T | None],
    what: str,
) -> T:
    """Apply `decide` to the latest record, conditionally on its version (`change` returns None when
    another writer changed it first: read again and decide again). A decision that changes nothing
    writes nothing. TemporarilyUnavailable when it disappeared or kept changing."""
    for _ in range(ATTEMPTS):
        after = decide(current)
        if after is current or after == current:
            return current
        written = change(current, after)
        if written is not None:
            return written
        latest = reread(current)
        if latest is None:
            raise TemporarilyUnavailable(f"the {what} disappeared while it was written")
        current = latest
    raise TemporarilyUnavailable(f"the {what} kept changing; retry")
