"""The one clock. Everything that needs the time takes a `Clock` (or a time read from one) as a
parameter; only this module reads the wall clock, so tests and the local stage can move time."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch, UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for lifetimes inside one process."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, now_ms: int = 1_767_225_600_000, monotonic: float = 1_000.0) -> None:
        self._now_ms = now_ms
        self._monotonic = monotonic

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now_ms += round(seconds * 1000)
        self._monotonic += seconds


SYSTEM = SystemClock()


def now_ms() -> int:
    """The system clock, for the edges (routes, handlers, the local runtime) that start a use case."""
    return SYSTEM.now_ms()


def now_s() -> float:
    return SYSTEM.now_ms() / 1000


def iso(epoch_ms: int) -> str:
    """An epoch-ms time as API.md writes times: UTC, milliseconds, `Z`."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(now_ms())


def today(epoch_ms: int | None = None) -> date:
    return datetime.fromtimestamp((now_ms() if epoch_ms is None else epoch_ms) / 1000, tz=UTC).date()
