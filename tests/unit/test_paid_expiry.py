"""The paid-membership expiry job and the reminder before it (shared/membership/paid_expiry.py) on
in-memory ports with the store's conditions: once per membership and end, resumable from the
checkpoint, a renewal racing the expiry wins, the index read from the checkpoint and not from the
beginning of time, and the events the stream derives from the item's changes."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.kernel.clock import FakeClock, iso
from shared.kernel.events import EventType
from shared.membership.paid_end import ACTIVE, EXPIRED, Ending, announced
from shared.membership.paid_expiry import DAY_MS, EXPIRY_JOB, INDEX_SETTLE_MS, REMINDER_JOB, WINDOW_JOB, PaidExpiry
from tests.fakes.paid_expiry import MemoryCheckpoints, MemoryEndingMembers

HOUR_MS = 3_600_000


def setup(remind_days: int = 3) -> tuple[PaidExpiry, MemoryEndingMembers, MemoryCheckpoints, FakeClock]:
    members, checkpoints, clock = MemoryEndingMembers(), MemoryCheckpoints(), FakeClock()
    return PaidExpiry(members, checkpoints, clock, remind_days), members, checkpoints, clock


def member(sub: str, until_ms: int, **kw: object) -> Ending:
    return Ending(sub, str(kw.pop("tier", "gold")), until_ms, ACTIVE, 0, store_id="S001", guide_id="g-1", **kw)  # type: ignore[arg-type]


def expired_events(members: MemoryEndingMembers) -> list[tuple[str, str]]:
    return [(e.aggregate_id, e.payload["until"]) for e in members.events if e.type is EventType.MEMBERSHIP_EXPIRED]


def reminders(members: MemoryEndingMembers) -> list[tuple[str, str]]:
    return [(e.aggregate_id, e.payload["until"]) for e in members.events if e.type is EventType.MEMBERSHIP_EXPIRING]


def test_expiry_marks_each_due_membership_once_and_announces_it():
    job, members, _, clock = setup()
    now = clock.now_ms()
    for n in range(5):
        members.put(member(f"c-{n}", now - (n + 1) * HOUR_MS))
    members.put(member("c-future", now + DAY_MS))
    members.put(member("c-just-now", now - INDEX_SETTLE_MS // 2))  # inside the index's settling time

    first = job.expire_due(page_size=2)

    assert first.done == 5
    assert {m.customer_id for m in members.members.values() if m.status == EXPIRED} == {f"c-{n}" for n in range(5)}
    assert sorted(expired_events(members)) == sorted((f"c-{n}", iso(now - (n + 1) * HOUR_MS)) for n in range(5))
    event = next(e for e in members.events if e.aggregate_id == "c-0")
    assert event.payload == {
        "customer_id": "c-0",
        "tier": "gold",
        "until": iso(now - HOUR_MS),
        "store_id": "S001",
        "guide_id": "g-1",
    }
    # A rerun does nothing twice; a minute later the one that was settling expires too
    assert job.expire_due().done == 0
    clock.advance(61)
    assert job.expire_due().done == 1
    assert len(expired_events(members)) == 6


def test_a_run_reads_from_its_checkpoint_not_from_the_beginning_of_time():
    job, members, checkpoints, clock = setup()
    now = clock.now_ms()
    for n in range(50):  # long expired
        members.put(member(f"old-{n}", now - 400 * DAY_MS + n))
    job.expire_due(page_size=10)
    queries = members.queries
    assert checkpoints.through(EXPIRY_JOB) is not None
    clock.advance(300)
    job.expire_due(page_size=10)
    # Only the re-read margin below the checkpoint and what is new: a page each, not five again
    assert members.queries - queries == 2


def test_a_run_stopped_by_a_busy_database_resumes_where_it_stopped():
    job, members, checkpoints, clock = setup()
    now = clock.now_ms()
    for n in range(6):
        members.put(member(f"c-{n}", now - DAY_MS + n * HOUR_MS))
    members.busy_for.add("c-3")

    stopped = job.expire_due(page_size=2)

    assert (stopped.done, stopped.stopped) == (3, "busy")
    assert checkpoints.through(EXPIRY_JOB) == members.members["c-2"].position  # not past the one it could not do
    members.busy_for.clear()
    resumed = job.expire_due(page_size=2)
    assert (resumed.done, resumed.stopped) == (3, None)
    assert all(m.status == EXPIRED for m in members.members.values())
    assert len(expired_events(members)) == 6  # each once


def test_a_run_stops_at_its_page_budget_and_the_next_goes_on():
    job, members, _, clock = setup()
    now = clock.now_ms()
    for n in range(7):
        members.put(member(f"c-{n}", now - DAY_MS + n))
    first = job.expire_due(page_size=2, max_pages=2)
    assert (first.done, first.stopped) == (4, "budget")
    second = job.expire_due(page_size=2, max_pages=2)
    assert (second.done, second.stopped) == (3, None)
    assert len(expired_events(members)) == 7


def test_a_crowd_ending_at_once_does_not_hold_the_job_in_its_margin():
    job, members, _, clock = setup()
    now = clock.now_ms()
    for n in range(30):  # every one ending in the same instant: all within the re-read margin
        members.put(member(f"c-{n:02d}", now - HOUR_MS))
    assert job.expire_due(page_size=2, max_pages=3).done == 6
    for _ in range(5):
        job.expire_due(page_size=2, max_pages=3)
    assert len(expired_events(members)) == 30


def test_a_busy_index_read_stops_the_run_without_an_error_and_the_next_resumes():
    job, members, _, clock = setup()
    now = clock.now_ms()
    for n in range(4):
        members.put(member(f"c-{n}", now - DAY_MS + n * HOUR_MS))
    job.expire_due(page_size=2)  # nothing was due in its range but these: all 4 expire
    for n in range(4, 8):
        members.put(member(f"c-{n}", now + n * HOUR_MS))
    clock.advance(8 * 3_600)
    members.busy_queries = 1
    assert job.expire_due(page_size=2).stopped == "busy"
    assert job.expire_due(page_size=2).done == 4
    assert len(expired_events(members)) == 8


def test_two_reminder_runs_at_once_remind_once():
    job, members, _, clock = setup()
    other = PaidExpiry(members, MemoryCheckpoints(), clock, 3)
    members.put(member("c-1", clock.now_ms() + DAY_MS))
    # The other run reminds c-1 between this run's index read and its write
    members.before_write["c-1"] = lambda: other.remind_expiring()
    assert job.remind_expiring().done == 0
    assert len(reminders(members)) == 1


def test_a_renewal_racing_the_expiry_wins():
    job, members, _, clock = setup()
    now = clock.now_ms()
    read = members.put(member("c-1", now - HOUR_MS))
    # Between the job's index read and its write, the member renews: until moves 30 days on
    renewed = replace(read, until_ms=read.until_ms + 30 * DAY_MS)
    members.before_write["c-1"] = lambda: members.put(renewed)

    assert job.expire_due().done == 0
    stored = members.members["c-1"]
    assert (stored.status, stored.until_ms) == (ACTIVE, renewed.until_ms)
    assert expired_events(members) == []


def test_a_renewal_after_the_expiry_is_a_new_membership_end():
    job, members, _, clock = setup()
    now = clock.now_ms()
    members.put(member("c-1", now - HOUR_MS))
    assert job.expire_due().done == 1
    # The expiry won the race: the purchase reads EXPIRED and reactivates with a new end
    members.put(replace(members.members["c-1"], status=ACTIVE, until_ms=now + 30 * DAY_MS))
    clock.advance(31 * 86_400)
    assert job.expire_due().done == 1
    assert [until for _, until in expired_events(members)] == [iso(now - HOUR_MS), iso(now + 30 * DAY_MS)]


def test_an_end_moved_back_by_a_refund_expires_at_the_new_end():
    job, members, _, clock = setup()
    now = clock.now_ms()
    read = members.put(member("c-1", now + 60 * DAY_MS))  # a term and a queued renewal
    job.expire_due()
    clock.advance(5 * 86_400)
    job.expire_due()  # the checkpoint is now 5 days on
    # The renewal is refunded: the end moves back 40 days, still after the refund's time
    members.put(replace(read, until_ms=now + 20 * DAY_MS))
    clock.advance(10 * 86_400)
    assert job.expire_due().done == 0
    clock.advance(6 * 86_400)
    assert job.expire_due().done == 1
    assert expired_events(members) == [("c-1", iso(now + 20 * DAY_MS))]


def test_a_refund_that_ends_the_membership_announces_no_expiry():
    _, members, _, clock = setup()
    now = clock.now_ms()
    read = members.put(member("c-1", now + 20 * DAY_MS))
    # p1's refund: until moved to the refund's time and EXPIRED in one write
    members.put(replace(read, until_ms=now, status=EXPIRED, expired_for_ms=now))
    assert expired_events(members) == []


def test_a_late_write_that_leaves_the_membership_ended_announces_its_expiry_once():
    _, members, _, clock = setup()
    now = clock.now_ms()
    read = members.put(member("c-1", now + 20 * DAY_MS))
    expired = members.put(replace(read, until_ms=now, status=EXPIRED, expired_for_ms=now))  # a mark stays
    again = members.put(replace(expired, until_ms=now + 40 * DAY_MS, status=ACTIVE))  # bought again
    # a refund handled late: the rest ended 5 days ago, EXPIRED by that write, unmarked
    members.put(replace(again, until_ms=now - 5 * DAY_MS, status=EXPIRED, expired_for_ms=None))
    assert expired_events(members) == [("c-1", iso(now - 5 * DAY_MS))]


def test_reminder_once_per_member_and_end_and_again_after_a_renewal():
    job, members, checkpoints, clock = setup(remind_days=3)
    now = clock.now_ms()
    members.put(member("c-soon", now + 2 * DAY_MS))
    members.put(member("c-later", now + 10 * DAY_MS))
    members.put(member("c-ended", now - HOUR_MS))

    assert job.remind_expiring().done == 1
    assert reminders(members) == [("c-soon", iso(now + 2 * DAY_MS))]
    assert job.remind_expiring().done == 0  # a rerun sends nothing twice
    checkpoints.positions.clear()  # even with its checkpoint lost
    assert job.remind_expiring().done == 0

    # c-soon renews: a new end, a new reminder when it comes near
    members.put(replace(members.members["c-soon"], until_ms=now + 32 * DAY_MS))
    clock.advance(8 * 86_400)  # c-later is now 2 days from its end
    assert job.remind_expiring().done == 1
    clock.advance(22 * 86_400)
    assert job.remind_expiring().done == 1
    assert reminders(members) == [
        ("c-soon", iso(now + 2 * DAY_MS)),
        ("c-later", iso(now + 10 * DAY_MS)),
        ("c-soon", iso(now + 32 * DAY_MS)),
    ]
    ids = [e.event_id for e in members.events]
    assert len(set(ids)) == len(ids)


def test_an_end_set_inside_the_window_already_passed_is_reminded_by_the_next_run_once():
    job, members, checkpoints, clock = setup(remind_days=3)
    now = clock.now_ms()
    members.put(member("c-long", now + 10 * DAY_MS))
    assert job.remind_expiring().done == 0
    assert checkpoints.positions  # the reminder has passed now + 3 days
    clock.advance(3_600)
    now = clock.now_ms()
    # A 2-day plan bought now, and a refund moving c-long's end back to a day from now (a queued
    # renewal refunded): both ends are below the checkpoint
    members.put(member("c-short", now + 2 * DAY_MS))
    members.put(replace(members.members["c-long"], until_ms=now + DAY_MS))

    assert job.remind_expiring().done == 2
    assert sorted(reminders(members)) == [("c-long", iso(now + DAY_MS)), ("c-short", iso(now + 2 * DAY_MS))]
    clock.advance(3_600)
    assert job.remind_expiring().done == 0  # once per (member, end)
    assert len(reminders(members)) == 2


def test_the_window_re_read_is_bounded_goes_on_where_it_stopped_and_starts_again():
    job, members, checkpoints, clock = setup(remind_days=3)
    now = clock.now_ms()
    assert job.remind_expiring().done == 0
    through = checkpoints.positions[REMINDER_JOB]
    for n in range(30):  # ends set inside the passed window: more than its 25 pages of 1
        members.put(member(f"c-{n:02d}", now + HOUR_MS + n * 60_000))

    first = job.remind_expiring(page_size=1)
    assert first.done == 25 and checkpoints.positions[REMINDER_JOB] == through  # soonest first
    clock.advance(60)
    assert job.remind_expiring(page_size=1).done == 5  # the next run goes on: the rest, lap done
    assert checkpoints.positions[WINDOW_JOB].endswith("|~")
    # An end set now near the window's start: the next run starts a new lap from now, and finds it
    members.put(member("c-new", clock.now_ms() + HOUR_MS // 2))
    clock.advance(60)
    assert job.remind_expiring(page_size=1).done == 1
    assert reminders(members)[-1] == ("c-new", iso(now + 60_000 + HOUR_MS // 2))
    assert len(reminders(members)) == 31


def test_an_ended_membership_reaches_the_member_as_membership_expired():
    from shared.messaging.routing import queues_for
    from shared.notifications.model import Channel, Locale
    from shared.notifications.recipients import Addressee, Audience, plan
    from shared.notifications.templates import params_of, render

    ending = member("c-1", 1_796_227_200_000, tier="金卡")  # 2026-12-02T16:00Z, 12-03 00:00 in China
    event = announced(ending, replace(ending, status=EXPIRED, expired_for_ms=ending.until_ms, version=1))[0]
    assert plan(event) == [Addressee(Audience.CUSTOMER, "c-1", "MembershipExpired")]
    zh = render("MembershipExpired", Channel.SMS, Locale.ZH, params_of(event.payload, Locale.ZH)).text
    assert zh == "【云店】您的金卡会员已于12-03 00:00到期，续费即可恢复会员价和会员折扣。"
    wechat = render("MembershipExpired", Channel.WECHAT, Locale.EN, params_of(event.payload, Locale.EN))
    assert wechat.data == {"thing1": {"value": "金卡"}, "time2": {"value": "12-03 00:00"}}
    assert queues_for(str(event.type)) == ["NotificationsQueue"]  # the relay routes it there


@given(tier=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=60))
def test_the_ended_sms_fits_70_characters_whatever_the_tiers_name(tier):
    from shared.notifications.model import Channel, Locale
    from shared.notifications.templates import SMS_LIMIT, params_of, render

    payload = {"customer_id": "c-1", "tier": tier, "until": "2026-12-02T16:00:00.000Z"}
    for locale in Locale:
        sms = render("MembershipExpired", Channel.SMS, locale, params_of(payload, locale)).text
        assert len(sms) <= SMS_LIMIT and "12-03 00:00" in sms  # the tier may be cut, never the end


def test_the_reminder_setting_moves_the_window_and_zero_turns_it_off():
    job, members, _, clock = setup(remind_days=7)
    now = clock.now_ms()
    members.put(member("c-1", now + 6 * DAY_MS))
    assert job.remind_expiring().done == 1
    off, members_off, _, clock_off = setup(remind_days=0)
    members_off.put(member("c-1", clock_off.now_ms() + HOUR_MS))
    assert off.remind_expiring().done == 0


def test_derived_events_are_the_same_on_a_redelivered_record():
    before = member("c-1", 1_767_225_600_000)
    after = replace(before, status=EXPIRED, expired_for_ms=before.until_ms, version=2)
    first, again = announced(before, after), announced(before, after)
    assert [e.to_message() for e in first] == [e.to_message() for e in again]
    assert [e.type for e in first] == [EventType.MEMBERSHIP_EXPIRED]
    assert first[0].occurred_at == iso(before.until_ms)
    assert announced(None, before) == []  # an INSERT announces nothing
    assert announced(before, replace(before, version=2)) == []  # a change that is neither


# -- a property over random purchases, renewals, time and runs ---------------------------------------
REMIND_DAYS = 3
Buy = st.tuples(st.just("buy"), st.integers(0, 4), st.integers(1, 20))  # member, days (some shorter than N)
Step = st.one_of(
    Buy,
    st.tuples(st.just("wait"), st.integers(1, 10 * 24), st.just(0)),  # hours
    st.tuples(st.just("expire"), st.integers(1, 4), st.just(0)),  # page size
    st.tuples(st.just("remind"), st.integers(1, 4), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(first=st.lists(Buy, min_size=2, max_size=8), steps=st.lists(Step, max_size=40))
@example(first=[("buy", 0, 10), ("buy", 1, 10)], steps=[("remind", 1, 0), ("buy", 2, 1), ("remind", 1, 0)])
def test_random_purchases_time_and_runs_expire_and_remind_each_end_once(first, steps):
    job, members, _, clock = setup(REMIND_DAYS)
    remind_ms = REMIND_DAYS * DAY_MS
    for kind, a, b in first + steps:
        now = clock.now_ms()
        if kind == "buy":  # a purchase as p1's store leaves it: renewal from the end, else from now
            sub, read = f"c-{a}", members.members.get(f"c-{a}")
            running = read is not None and read.status == ACTIVE and read.until_ms > now
            until = (read.until_ms if running and read else now) + b * DAY_MS
            members.put(replace(read, status=ACTIVE, until_ms=until) if read else member(sub, until))
        elif kind == "wait":
            clock.advance(a * 3_600)
        elif kind == "expire":
            assert job.expire_due(page_size=a).stopped is None
            for m in members.members.values():  # every end passed (a minute ago) is expired
                assert m.status == EXPIRED or m.until_ms > now - INDEX_SETTLE_MS
        else:
            assert job.remind_expiring(page_size=a).stopped is None
            for m in members.members.values():  # every ACTIVE end within the window is reminded
                if m.status == ACTIVE and now < m.until_ms <= now + remind_ms - INDEX_SETTLE_MS:
                    assert m.reminded_for_ms == m.until_ms
    # Each (member, end) announced at most once of each kind, and only ends that were reached
    announced_ = [(e.type, e.aggregate_id, e.payload["until"]) for e in members.events]
    assert len(announced_) == len(set(announced_))
    for kind, _, until in announced_:
        if kind is EventType.MEMBERSHIP_EXPIRED:
            assert until <= iso(clock.now_ms())
