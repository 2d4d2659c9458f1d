"""Issuing a coupon template to a segment (the members with a tag) as a background job
(docs/membership.md, "Issuing to a segment").

The job is created once by its id (`PUT /admin/segment-issues/{id}`; the same body again is the
same job) with the tag's range fixed at that moment. The `segment_issues` schedule takes a
RUNNING job's lease (a conditional write on its version), walks the range through the index a page
at a time (never a Scan) and, after each page, saves the cursor and the counts conditional on the
version it holds: the saved cursor is the checkpoint. Each member's coupon goes through the
coupons' claim path (`CouponIssue`) with the key `segment:<job>:<member>`, so the template's
total and per-user limit hold as for any claim, and a page done again after a crash (the lease
ran out) gets the first answers back instead of new coupons: one coupon per member per job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from shared.kernel.clock import Clock, iso
from shared.kernel.errors import ConcurrentUpdate, Conflict
from shared.membership.directory import page
from shared.membership.ports import Cursor, MemberStore, RulesStore
from shared.membership.tags import Tag, TagRange


class Outcome(StrEnum):
    ISSUED = "issued"  # the member holds the job's coupon (now, or from a first try)
    SKIPPED = "skipped"  # refused for this member (per-user limit, level): the job goes on
    STOP = "stop"  # refused for everyone (used up, window ended): the job stops
    RETRY = "retry"  # the database was busy: the page is done again later


@dataclass(frozen=True)
class Issued:
    outcome: Outcome
    reason: str = ""  # why it was not issued
    name: str = ""  # the coupon's name, when issued


class CouponIssue(Protocol):
    def check(self, template_id: str) -> None:
        """NotFound or RuleViolation when the template cannot be issued to a segment."""
        ...

    def issue(self, template_id: str, member_id: str, key: str) -> Issued:
        """One coupon of the template to the member through the claim path, idempotent by `key`."""
        ...


class JobStatus(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    STOPPED = "STOPPED"


class SegmentJobChanged(Conflict):
    code = "SEGMENT_ISSUE_EXISTS"


@dataclass(frozen=True)
class SegmentIssue:
    job_id: str
    template_id: str
    tag: Tag
    range: TagRange
    created_at_ms: int
    created_by: str
    status: JobStatus = JobStatus.RUNNING
    cursor: Cursor = None  # the checkpoint: where the next page starts (None: the start)
    pages: int = 0
    issued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    lease_until_ms: int = 0
    updated_at_ms: int = 0
    version: int = 0  # 0: not stored yet

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "template_id": self.template_id,
            "tag": str(self.tag),
            "status": str(self.status),
            "pages_done": self.pages,
            "issued": self.issued,
            "skipped": dict(self.skipped),
            "members_done": self.issued + sum(self.skipped.values()),
            "stop_reason": self.stop_reason,
            "created_at": iso(self.created_at_ms),
            "updated_at": iso(self.updated_at_ms or self.created_at_ms),
        }


class SegmentJobs(Protocol):
    def get(self, job_id: str) -> SegmentIssue | None: ...

    def save(self, before: SegmentIssue | None, after: SegmentIssue) -> SegmentIssue:
        """Store `after` (version + 1) only if the stored job is `before` (None: none stored);
        ConcurrentUpdate otherwise. A RUNNING job is in the schedule's index, a finished one not."""
        ...

    def running(self, limit: int) -> list[SegmentIssue]:
        """RUNNING jobs, oldest first, through the index (no Scan)."""
        ...


class SegmentIssues:
    def __init__(
        self,
        store: MemberStore,
        jobs: SegmentJobs,
        rules: RulesStore,
        coupons: CouponIssue,
        clock: Clock,
        page_size: int = 100,
        lease_ms: int = 120_000,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._rules = rules
        self._coupons = coupons
        self._clock = clock
        self._page_size = page_size
        self._lease_ms = lease_ms

    def start(self, job_id: str, template_id: str, tag: Tag, by: str) -> tuple[bool, dict[str, Any]]:
        """(created, the job). The same id and body again is the job as it is now (a retry);
        the same id with another template or tag is SegmentJobChanged (409)."""
        found = self._jobs.get(job_id)
        if found is None:
            self._coupons.check(template_id)
            now = self._clock.now_ms()
            job = SegmentIssue(job_id, template_id, tag, TagRange.of(tag, now, self._rules.current().tags), now, by)
            try:
                return True, self._jobs.save(None, job).view()
            except ConcurrentUpdate:
                found = self._jobs.get(job_id)
        assert found is not None
        if (found.template_id, found.tag) != (template_id, tag):
            raise SegmentJobChanged("this job id issues another template or tag", job_id=job_id)
        return False, found.view()

    def progress(self, job_id: str) -> SegmentIssue | None:
        return self._jobs.get(job_id)

    def run_due(self, max_pages: int = 50, stop: Callable[[], bool] = lambda: False) -> int:
        """Work on the RUNNING jobs whose lease is free, up to `max_pages` pages in all (a Lambda
        run's budget; `stop` ends it earlier). Returns the pages done."""
        done = 0
        for job in self._jobs.running(limit=10):
            if job.lease_until_ms > self._clock.now_ms():
                continue  # another run holds it
            done += self._run(job, max_pages - done, stop)
            if done >= max_pages or stop():
                break
        return done

    def _run(self, job: SegmentIssue, budget: int, stop: Callable[[], bool]) -> int:
        try:
            held = self._jobs.save(job, replace(job, lease_until_ms=self._clock.now_ms() + self._lease_ms))
        except ConcurrentUpdate:
            return 0  # another run took it first
        pages = 0
        while held.status is JobStatus.RUNNING and pages < budget and not stop():
            after = self._page(held)
            if after is None:
                break  # busy: the page is done again by a later run
            try:
                held = self._jobs.save(held, after)
            except ConcurrentUpdate:
                return pages  # the lease was lost (this run was too slow): the holder goes on
            pages += 1
        if held.status is JobStatus.RUNNING:
            # The next run need not wait for the lease; taken over meanwhile: the holder goes on.
            with contextlib.suppress(ConcurrentUpdate):
                self._jobs.save(held, replace(held, lease_until_ms=0))
        return pages

    def _page(self, job: SegmentIssue) -> SegmentIssue | None:
        """The job after one more page, or None when the page must be done again later."""
        members, next_cursor = page(self._store, job.range, self._page_size, job.cursor)
        issued, skipped = job.issued, dict(job.skipped)
        for member in members:
            result = self._coupons.issue(
                job.template_id, member.customer_sub, f"segment:{job.job_id}:{member.customer_sub}"
            )
            if result.outcome is Outcome.RETRY:
                return None
            if result.outcome is Outcome.STOP:
                return self._moved(job, issued, skipped, job.cursor, JobStatus.STOPPED, result.reason)
            if result.outcome is Outcome.ISSUED:
                issued += 1
            else:
                skipped[result.reason] = skipped.get(result.reason, 0) + 1
        status = JobStatus.RUNNING if next_cursor is not None else JobStatus.DONE
        return self._moved(job, issued, skipped, next_cursor, status, None)

    def _moved(
        self,
        job: SegmentIssue,
        issued: int,
        skipped: dict[str, int],
        cursor: Cursor,
        status: JobStatus,
        reason: str | None,
    ) -> SegmentIssue:
        return replace(
            job,
            issued=issued,
            skipped=skipped,
            cursor=cursor,
            status=status,
            stop_reason=reason,
            pages=job.pages + 1,
            updated_at_ms=self._clock.now_ms(),
        )
