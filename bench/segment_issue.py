"""Segment issue: a coupon to N members (10,000) as a job, killed halfway and resumed: one coupon each.

The issue's done-means (issue 14): "Segment issue of a coupon to 10,000 members on the emulator
runs as a job with progress and issues exactly one coupon per member even when restarted
halfway". Against the serialised moto server in its own process (as `make dev` runs it), one run:

1. seed: N members' activity items (`MEMBER#<sub>` / `ACTIVITY` with its gsi1 `MTAG#LAST#<shard>`
   key, and the `FIRST_ORDER` item), built by the membership store's own item mapping
   (`shared.data.stores.membership`) and written 25 at a time by BatchWriteItem. Not through the
   membership consumer: it is correct but slow for seeding (each OrderPaid is a claim of the
   consumer's mark, a read of the member's items and one TransactWriteItems of the profile,
   balance, activity, index item, outbox event and the mark: about 6 ms of emulator CPU a
   member, 161 s for 1,000 measured before, docs/membership.md), and what it writes besides the
   activity has no part in a segment issue;
2. a coupon template (total N + 100, per-user limit 2, so only the job's idempotency key keeps a
   member to one coupon) and the job `PUT` through the use case (`SegmentIssues.start`, tag active);
3. the first run (`SegmentIssues.run_due`, the schedule's use case, pages of 100) dies in the
   middle of a page after KILL_AT coupons (an exception out of the run, as a Lambda timeout ends
   it; the page's checkpoint is not saved);
4. after the lease (the clock moved 121 s) the schedule's runs resume: each run stops after
   RUN_BUDGET_S as the handler's 40 s budget does, and the next run takes the job again;
5. read back: every member's wallet (`DynamoCoupons.of_customer`, gsi1 `CUSTCOUPONS#<sub>`, the
   query `GET /me/coupons` makes) holds exactly one coupon of the template, and the template's
   claims total N.

Progress is printed every PROGRESS coupons (the job as `GET /admin/segment-issues/{id}` shows it).
`BENCH_SEGMENT_MEMBERS` sets N (default 10,000).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bench.coupons import create_template
from bench.flash_sales import own_emulator

MEMBERS = int(os.environ.get("BENCH_SEGMENT_MEMBERS", "10000"))
PAGE = 100
PROGRESS = 1000
RUN_BUDGET_S = 40.0  # the schedule handler's budget per run
LEASE_S = 121  # past the 120 s lease


class Killed(RuntimeError):
    """The run ended mid-page, as a Lambda timeout ends it."""


@dataclass
class OffsetClock:
    """The system clock, moved forward by `offset_ms` (to get past a dead run's lease)."""

    offset_ms: int = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class Watched:
    """The claim path (a CouponIssue), counting, printing the job's progress, and dying after
    `kill_at` coupons of this run (None: never)."""

    inner: Any
    job_id: str
    jobs: Any
    kill_at: int | None = None
    calls: int = 0
    started: float = field(default_factory=time.perf_counter)

    def check(self, template_id: str) -> None:
        self.inner.check(template_id)

    def issue(self, template_id: str, member_id: str, key: str) -> Any:
        if self.kill_at is not None and self.calls >= self.kill_at:
            raise Killed("the run timed out mid-page")
        self.calls += 1
        if self.calls % PROGRESS == 0:
            job = _view(self.jobs, self.job_id)
            rate = self.calls / (time.perf_counter() - self.started)
            print(
                f"  progress: {self.calls:,} claims this run ({rate:.1f}/s); job checkpoint: "
                f"pages_done {job['pages_done']}, issued {job['issued']:,}, members_done {job['members_done']:,}",
                flush=True,
            )
        return self.inner.issue(template_id, member_id, key)


def _past(deadline: float) -> bool:
    return time.monotonic() > deadline


def _view(jobs: Any, job_id: str) -> dict[str, Any]:
    job = jobs.get(job_id)
    assert job is not None
    return dict(job.view())


def seed(members: list[str], now_ms: int) -> float:
    """The members' activity items (active: last order an hour ago), through the store's mapping."""
    from shared.data.items.membership import MemberActivityItem, MemberFirstOrderItem
    from shared.data.stores.membership import _activity_item, _first_order_item
    from shared.membership.tags import Activity

    started = time.perf_counter()

    def write(chunk: list[str]) -> None:
        with MemberActivityItem.batch_write() as batch:  # 25 items per BatchWriteItem, unprocessed retried
            for n, sub in enumerate(chunk):
                at = now_ms - 3_600_000 - n
                activity = Activity(sub, at, at, orders=1, monetary_fen=5_000 + n, store_id="S001")
                batch.save(_activity_item(activity, 1))
        with MemberFirstOrderItem.batch_write() as batch:
            for n, sub in enumerate(chunk):
                at = now_ms - 3_600_000 - n
                batch.save(_first_order_item(Activity(sub, at, at, orders=1)))

    chunks = [members[i : i + 500] for i in range(0, len(members), 500)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, chunks))
    return time.perf_counter() - started


def read_back(members: list[str], template_id: str, now_ms: int) -> tuple[Counter[int], float]:
    """How many of the template's coupons each member's wallet holds: {coupons: members}."""
    from shared.data.stores.coupons import DynamoCoupons

    store = DynamoCoupons()
    started = time.perf_counter()

    def held(sub: str) -> int:
        found, cursor, count = None, None, 0
        while found is None or cursor is not None:
            found, cursor = store.of_customer(sub, None, now_ms, 100, cursor)
            count += sum(1 for c in found if c.template_id == template_id)
        return count

    with ThreadPoolExecutor(4) as pool:
        counts = Counter(pool.map(held, members))
    return counts, time.perf_counter() - started


def run() -> dict[str, object]:
    with own_emulator("bench-segment"):
        return _run()


def _run() -> dict[str, object]:
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules, DynamoSegmentJobs
    from shared.membership.coupon_gifts import ClaimedGifts
    from shared.membership.segments import SegmentIssues
    from shared.membership.tags import Tag
    from shared.platform import bootstrap

    clock = OffsetClock()
    tag = uuid.uuid4().hex[:6]
    members = [f"seg-{tag}-{n:05d}" for n in range(MEMBERS)]
    seeded_s = seed(members, clock.now_ms())
    print(f"  seeded {MEMBERS:,} members' activity in {seeded_s:.1f} s", flush=True)
    template = create_template(MEMBERS + 100, 2, 100)
    jobs = DynamoSegmentJobs()
    job_id = f"bench-{tag}"

    def issues(coupons: Any) -> SegmentIssues:
        return SegmentIssues(DynamoMembers(), jobs, DynamoMembershipRules(), coupons, clock, page_size=PAGE)

    created, _ = issues(ClaimedGifts(bootstrap.coupons())).start(job_id, template, Tag.ACTIVE, "bench")
    assert created
    kill_at = MEMBERS // 2 + PAGE // 2 - 13  # in the middle of a page
    dying = Watched(ClaimedGifts(bootstrap.coupons()), job_id, jobs, kill_at=kill_at)
    started = time.perf_counter()
    killed = False
    try:
        while issues(dying).run_due(max_pages=10**6):
            pass
    except Killed:
        killed = True
    killed_s = time.perf_counter() - started
    halfway = _view(jobs, job_id)
    print(f"  killed after {dying.calls:,} claims, {killed_s:.1f} s; job: {halfway}", flush=True)

    clock.offset_ms += LEASE_S * 1000
    resuming = Watched(ClaimedGifts(bootstrap.coupons()), job_id, jobs)
    runs = 0
    started = time.perf_counter()
    while True:
        deadline = time.monotonic() + RUN_BUDGET_S
        pages = issues(resuming).run_due(max_pages=10**6, stop=partial(_past, deadline))
        if not pages:
            break
        runs += 1
    resumed_s = time.perf_counter() - started
    done = _view(jobs, job_id)
    print(f"  resumed in {runs} runs, {resuming.calls:,} claims, {resumed_s:.1f} s; job: {done}", flush=True)

    counts, read_s = read_back(members, template, clock.now_ms())
    print(f"  read back {MEMBERS:,} wallets in {read_s:.1f} s: coupons per member {dict(counts)}", flush=True)
    claims = dying.calls + resuming.calls
    exactly_one = counts == Counter({1: MEMBERS})
    if not (killed and done["status"] == "DONE" and done["issued"] == MEMBERS and exactly_one):
        raise AssertionError(f"segment issue wrong: killed {killed}, job {done}, coupons per member {dict(counts)}")
    return {
        "members": MEMBERS,
        "seed s": round(seeded_s, 1),
        "killed run claims": dying.calls,
        "killed run s": round(killed_s, 1),
        "checkpoint issued at kill": halfway["issued"],
        "resume runs": runs,
        "resume claims": resuming.calls,
        "resume s": round(resumed_s, 1),
        "claims done again": claims - MEMBERS,
        "claims/s": round(claims / (killed_s + resumed_s), 1),
        "job issued": done["issued"],
        "members with exactly 1 coupon": counts[1],
        "members with 0 or 2+": MEMBERS - counts[1],
        "read back s": round(read_s, 1),
    }
