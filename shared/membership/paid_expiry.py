"""The end of a paid membership (issue 14, items 3 and 4; docs/membership.md, "Paid membership:
expiry and the reminder before it").

Two scheduled jobs walk the paid memberships by their end (`PAIDMEMBER#END`, gsi2, ordered by
`<until iso>#<sub>`; never a Scan):

- **expiry** (`expire_due`): every ACTIVE membership whose `until_ms` has passed becomes EXPIRED, by a
  write conditional on the version read and on ACTIVE, so a renewal racing it wins either way: if
  the renewal wrote first, the expiry's condition fails, the membership is read again and is not
  due any more; if the expiry wrote first, the renewal's own condition fails and it retries on the
  EXPIRED membership (p1's purchase reactivates it). `MembershipExpired` is derived from that
  ACTIVE -> EXPIRED change of the item on the stream (`announced`), not written beside it.
- **reminder** (`remind_expiring`): N days before `until_ms` (`PAID_MEMBERSHIP_REMIND_DAYS`, 3), the
  membership's `reminded_for_ms` is set to that `until_ms`, conditional on it not being so already
  and on `until_ms` still being it; `MembershipExpiring` is derived from that change. So once per
  (member, until): a rerun or a second run finds the mark; a renewal that moves `until_ms` makes the
  member due again for the new end.

Both keep a checkpoint (a position in the index, only ever moved forward) so a run reads only
what is new since the last one, less a safety margin, and never all history; a run that stops
(a crash, the database busy) leaves the checkpoint at the last position it finished, and the next
run resumes there. Why the checkpoint cannot pass a membership it has not seen: a write always
puts `until_ms` at or after its own time (a purchase in the future, a refund's shortened end at
the earliest the refund's time), and a run reads no closer than `INDEX_SETTLE_MS` to its own time,
so every position it reads was written at least that long ago and is in the index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.kernel.clock import Clock, iso
from shared.kernel.errors import ConcurrentUpdate, TemporarilyUnavailable
from shared.membership.paid_end import ACTIVE, AlreadyReminded, Ending, edge
from shared.platform.observability import count

DAY_MS = 86_400_000
# The index is filled a moment after the write (well under a second in practice); a run reads no
# position closer than this to its own time (so an expiry is announced up to a minute late:
# checkout stops the paid benefits at `until` on its own, by reading it).
INDEX_SETTLE_MS = 60_000
# Each run re-reads this much below its checkpoint: a margin for an index that lagged more than
# INDEX_SETTLE_MS. What it re-reads was handled and is skipped (EXPIRED, or reminded).
RE_READ_MS = 10 * 60_000
PAGE = 200
MAX_PAGES = 100  # a run's budget (20,000 memberships): the rest is the next run's, from the checkpoint
MARGIN_PAGES = 5  # of the re-read below the checkpoint, at most
# The reminder also re-reads the part of its window it has already passed (from now up to the margin),
# at most this many pages a run, in laps (a run goes on where the last stopped): an end set less than
# N days ahead (a plan shorter than that, an end a refund moved back) lands there, below the checkpoint.
WINDOW_PAGES = 25
EXPIRY_JOB, REMINDER_JOB, WINDOW_JOB = "expiry", "reminder", "reminder-window"
LAP_DONE = "~"  # the window's mark `<lap>|~`: that lap reached the margin (sorts after any position)
START = "0"  # a position before every membership (a key condition cannot name the empty string)


class EndingMembers(Protocol):
    def page(self, low: str, high: str, limit: int) -> tuple[list[Ending], bool]:
        """Memberships at positions in (`low`, `high`], in order, at most `limit`; and whether more
        follow in the range. A Query of gsi2 `PAIDMEMBER#END` (eventually consistent)."""
        ...

    def get(self, customer_id: str) -> Ending | None:
        """The membership now (a consistent read)."""
        ...

    def expire(self, ending: Ending) -> None:
        """status EXPIRED, `expired_for_ms` its until, version + 1; only if the stored one is still
        ACTIVE at `ending.version`: ConcurrentUpdate otherwise."""
        ...

    def remind(self, ending: Ending) -> None:
        """`reminded_for_ms` = `ending.until_ms`, only if the stored `until_ms` is still that, ACTIVE,
        and not reminded for it: AlreadyReminded otherwise. The version is left (the mark changes
        nothing a purchase or refund reads)."""
        ...


class Checkpoints(Protocol):
    def through(self, job: str) -> str | None:
        """How far `job` has gone (a position), None before its first run (a consistent read)."""
        ...

    def advance(self, job: str, through: str) -> None:
        """Move `job`'s checkpoint to `through` if that is ahead of it (never back)."""
        ...


@dataclass(frozen=True)
class RunResult:
    done: int  # memberships expired / reminded by this run
    read: int  # positions read
    stopped: str | None = None  # why the run stopped before its range's end (it resumes next run)


@dataclass
class _Mark:
    """Where a pass records how far it got: `job`'s checkpoint, `prefix` + the last position finished."""

    job: str
    at: str  # the last position recorded (or where the pass started)
    prefix: str = ""


Decide = Callable[[Ending, int], bool]
Act = Callable[[Ending], None]


@dataclass
class _Run:
    job: str
    due: Decide
    act: Act
    now: int
    page_size: int
    done: int = 0
    read: int = 0


class PaidExpiry:
    def __init__(self, members: EndingMembers, checkpoints: Checkpoints, clock: Clock, remind_days: int = 3) -> None:
        self._members = members
        self._checkpoints = checkpoints
        self._clock = clock
        self._remind_ms = remind_days * DAY_MS

    def expire_due(self, page_size: int = PAGE, max_pages: int = MAX_PAGES) -> RunResult:
        """EXPIRED for every ACTIVE membership whose until has passed (up to INDEX_SETTLE_MS ago)."""
        now = self._clock.now_ms()
        result = self._sweep(
            EXPIRY_JOB, now - INDEX_SETTLE_MS, _expired_due, self._members.expire, now, (page_size, max_pages)
        )
        if result.done:
            count("PaidMembershipsExpired", result.done)
        return result

    def remind_expiring(self, page_size: int = PAGE, max_pages: int = MAX_PAGES) -> RunResult:
        """The reminder for every ACTIVE membership ending within `remind_days` and not yet reminded
        for that end. An end set less than `remind_days` ahead (a plan shorter than that, an end a
        refund moved back) lands below the checkpoint: the run's first pass re-reads the window it has
        passed (now up to the checkpoint's margin, at most WINDOW_PAGES), so the next run reminds it."""
        if self._remind_ms <= 0:
            return RunResult(0, 0, "reminders off")
        now = self._clock.now_ms()
        high = now + self._remind_ms - INDEX_SETTLE_MS

        def due(ending: Ending, at_ms: int) -> bool:
            return _reminder_due(ending, at_ms, self._remind_ms)

        pages = (page_size, max_pages)
        result = self._sweep(REMINDER_JOB, high, due, self._members.remind, now, pages, edge(now), WINDOW_PAGES)
        if result.done:
            count("PaidMembershipRemindersSent", result.done)
        return result

    def _sweep(
        self,
        job: str,
        high_ms: int,
        due: Decide,
        act: Act,
        now: int,
        pages: tuple[int, int],
        floor: str = START,
        window_pages: int = 0,
    ) -> RunResult:
        """Walk up to `high_ms` from the checkpoint a page at a time, the checkpoint moved after each
        page to the last position finished; first the RE_READ_MS below the checkpoint, at most
        MARGIN_PAGES of it, the checkpoint left where it is (so a crowd of memberships ending in
        one instant cannot hold the job in its margin). `floor`: never read below it (the reminder
        has no use for memberships already ended). `window_pages`: before the margin, re-read
        (`floor`, margin] too, at most that many pages (the reminder: ends set inside its window
        after it passed them). A busy database (a read, a write, the checkpoint) stops the run
        where it is: the next run goes on from the checkpoint."""
        run = _Run(job, due, act, now, pages[0])
        try:
            checkpoint = self._checkpoints.through(job)
            if checkpoint:
                margin = max(floor, _less(checkpoint, RE_READ_MS))
                if window_pages:
                    self._window(run, floor, min(margin, edge(high_ms)), window_pages)
                self._pass(run, margin, min(checkpoint, edge(high_ms)), MARGIN_PAGES, None)
            mark = _Mark(job, checkpoint or "")
            finished = self._pass(run, max(floor, checkpoint or START), edge(high_ms), pages[1], mark)
        except TemporarilyUnavailable:
            return RunResult(run.done, run.read, "busy")
        return RunResult(run.done, run.read, None if finished else "budget")

    def _window(self, run: _Run, floor: str, high: str, max_pages: int) -> None:
        """The reminder's re-read of (`floor`, `high`], the window it has passed, in laps: a run goes on
        from where the last one stopped (WINDOW_JOB's mark `<lap>|<position>`), a lap that reaches
        `high` is marked `<lap>|~`, and the next run starts a new lap from `floor`. The lap (the time
        it started) leads the mark, so the mark only moves forward like any checkpoint; a window
        larger than `max_pages` is read over several runs, each end at least once a lap."""
        lap, _, at = (self._checkpoints.through(WINDOW_JOB) or "").partition("|")
        if not lap or at == LAP_DONE:
            lap, at = iso(run.now), floor
        low = max(floor, at)
        if self._pass(run, low, high, max_pages, _Mark(WINDOW_JOB, low, f"{lap}|")):
            self._checkpoints.advance(WINDOW_JOB, f"{lap}|{LAP_DONE}")

    def _pass(self, run: _Run, low: str, high: str, max_pages: int, mark: _Mark | None) -> bool:
        """Positions in (low, high], at most `max_pages`; True when `high` was reached. The progress
        is recorded in `mark` after each page; None: the margin pass, which records none."""
        for _ in range(max_pages):
            if low >= high:
                return True
            found, more = self._members.page(low, high, run.page_size)
            run.read += len(found)
            finished = low
            for ending in found:
                try:
                    run.done += self._handle(ending, run.now, run.due, run.act)
                except TemporarilyUnavailable:
                    self._advance(mark, finished)  # not past the one not done
                    raise
                finished = ending.position
            finished = finished if more else high
            self._advance(mark, finished)
            if not more:
                return True
            low = finished
        return low >= high

    def _handle(self, ending: Ending, now: int, due: Decide, act: Act) -> int:
        """1 if this run changed the membership; a refused write reads it again and decides again once
        (a renewal moved it meanwhile: not due any more)."""
        current: Ending | None = ending
        for _ in range(2):
            if current is None or not due(current, now):
                return 0
            try:
                act(current)
                return 1
            except AlreadyReminded:
                return 0
            except ConcurrentUpdate:
                current = self._members.get(ending.customer_id)
        if current is not None and due(current, now):
            raise TemporarilyUnavailable("the membership keeps changing", customer_id=ending.customer_id)
        return 0

    def _advance(self, mark: _Mark | None, through: str) -> None:
        if mark is not None and through > mark.at:
            self._checkpoints.advance(mark.job, mark.prefix + through)
            mark.at = through


def _expired_due(ending: Ending, now_ms: int) -> bool:
    return ending.status == ACTIVE and ending.until_ms <= now_ms


def _reminder_due(ending: Ending, now_ms: int, remind_ms: int) -> bool:
    return (
        ending.status == ACTIVE
        and now_ms < ending.until_ms <= now_ms + remind_ms
        and ending.reminded_for_ms != ending.until_ms
    )


def _less(at: str, by_ms: int) -> str:
    """The position `by_ms` before position `at` (its time part)."""
    when = datetime.fromisoformat(at.split("#", 1)[0].replace("Z", "+00:00"))
    return edge(int(when.timestamp() * 1000) - by_ms)
