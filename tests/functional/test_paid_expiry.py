"""The paid-membership expiry and the reminder before it, on moto: memberships bought through the
paid terms' store (shared/data/stores/paid_membership.py), the jobs walking the real gsi2
`PAIDMEMBER#END` from their checkpoints, under faults, with a renewal racing the expiry, and the
events derived from the real stream (MembershipExpired and MembershipExpiring relayed to the
notifications consumer: one message per channel per member and end, nothing twice on redelivery, none
for a renewal that won the race; ends set inside the window the reminder passed reminded by its next run)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from infra.local.faults import FaultInjector, Kind
from infra.local.runner import EventRunner
from shared.data.items import PaidExpiryCheckpointItem, PaidMemberItem
from shared.data.stores.paid_expiry import DynamoEndingMembers, DynamoJobCheckpoints
from shared.data.stores.paid_membership import DynamoPaidTerms
from shared.kernel.clock import FakeClock, iso, now_ms
from shared.kernel.errors import TemporarilyUnavailable
from shared.kernel.events import DomainEvent, EventType
from shared.membership.paid import DAY_MS, Term, TermKind
from shared.membership.paid_activation import PaidMembershipEvents
from shared.membership.paid_expiry import PaidExpiry
from shared.membership.paid_terms import StoredTerm, purchased, refunded
from shared.platform import bootstrap
from tests.functional.coupons_support import customer_token
from tests.functional.events_support import Queue, announced, fast_runtime
from tests.functional.notifications_support import RecordingProvider, consent, everyone, notifier, register


def buy(
    customer: str,
    order_id: str,
    at_ms: int,
    days: int = 30,
    guide: str | None = "g-1",
    tier: str = "金卡",
    rank: int = 1,
) -> None:
    store = DynamoPaidTerms()
    read = store.read(customer)
    term = Term(order_id, f"{rank}-30", tier, rank, days, at_ms, TermKind.NEW, (), store_id="S001", guide_id=guide)
    store.write(read, purchased(read, StoredTerm(customer, term, paid_fen=9_900), at_ms))


def events_of(kind: str) -> list[dict]:
    return [e for e in announced() if e["type"] == kind]


def run_until_done(job, run) -> None:
    """A run stopped by a busy database (or raising it) is run again, as the schedule would."""
    for _ in range(30):
        try:
            if run(job).stopped is None:
                return
        except TemporarilyUnavailable:
            continue
    raise AssertionError("the job never got through")


def test_due_memberships_expire_once_under_faults_and_a_racing_renewal_wins(table):
    now = now_ms()
    # Given 8 memberships that ended (at different times), 2 still running, and one about to end
    for n in range(8):
        buy(f"px-{n}", f"o-px-{n}", now - (40 + n) * DAY_MS)
    for n in range(2):
        buy(f"run-{n}", f"o-run-{n}", now - 5 * DAY_MS)
    buy("racer", "o-racer-1", now - 31 * DAY_MS)
    # And the racer renews between the job's index read and its write
    members = DynamoEndingMembers()
    real_expire = members.expire

    def expire_after_a_renewal(ending):
        if ending.customer_id == "racer":
            buy("racer", "o-racer-2", now)  # the renewal's transaction, conditional on its own read
        real_expire(ending)

    members.expire = expire_after_a_renewal  # type: ignore[method-assign]
    job = PaidExpiry(members, DynamoJobCheckpoints(), FakeClock(now), 3)

    # When the job runs a page of 3 at a time under throttling, conflicts and lost answers
    faults = FaultInjector(
        rate=0.25,
        seed=11,
        kinds=[Kind.THROTTLING, Kind.CONFLICT, Kind.TIMEOUT_APPLIED],
        operations=["UpdateItem", "Query", "GetItem"],
        partitions=lambda pk: pk.startswith(("MEMBER#px-", "PAIDMEMBER", "PAIDMEMBER_JOB#")),
    )
    with faults.attached():
        run_until_done(job, lambda j: j.expire_due(page_size=3))
    assert faults.total > 0, faults.report()
    assert job.expire_due(page_size=3).done == 0  # a rerun: nothing more

    # Then exactly the 8 ended memberships are EXPIRED, the racer's renewal stands
    status = {m.customer_sub: m.status for m in PaidMemberItem.scan() if isinstance(m, PaidMemberItem)}
    assert status == {
        **{f"px-{n}": "EXPIRED" for n in range(8)},
        "run-0": "ACTIVE",
        "run-1": "ACTIVE",
        "racer": "ACTIVE",
    }
    racer = PaidMemberItem.get(*PaidMemberItem.key("racer"))
    assert int(racer.until_ms) == now + 30 * DAY_MS  # bought again after its end: 30 days from now
    # And each is announced once, derived from its ACTIVE -> EXPIRED change on the stream
    expired = events_of("MembershipExpired")
    assert sorted(e["aggregate_id"] for e in expired) == sorted(f"px-{n}" for n in range(8))
    first = next(e for e in expired if e["aggregate_id"] == "px-0")
    assert first["payload"] == {
        "customer_id": "px-0",
        "tier": "金卡",
        "until": iso(now - 10 * DAY_MS),
        "store_id": "S001",
        "guide_id": "g-1",
    }
    checkpoint = PaidExpiryCheckpointItem.get(*PaidExpiryCheckpointItem.key("expiry"))
    assert checkpoint.through.startswith(iso(now - 60_000))


def test_the_reminder_is_sent_once_per_member_and_end_and_again_after_a_renewal(client, table):
    now = now_ms()
    customers = [f"pr-{n}" for n in range(4)]
    # Given 4 members reachable on every channel whose memberships end in 2 days, one in 20 days
    for n, customer in enumerate(customers):
        register(client, customer_token(customer), **everyone(phone=f"1390000{n:04d}"))
        consent(client, customer_token(customer), "MembershipExpiring")
        buy(customer, f"o-{customer}", now - 28 * DAY_MS)
    buy("pr-later", "o-pr-later", now - 10 * DAY_MS)

    # When the reminder runs, then again (a rerun, a second schedule), and the events are delivered
    job = bootstrap.paid_expiry(FakeClock(now))
    assert job.remind_expiring(page_size=2).done == 4
    assert job.remind_expiring(page_size=2).done == 0
    EventRunner(quiet=True).drain(sources=["stream"])
    provider = RecordingProvider()
    queue = Queue.of(table, "NotificationsQueue")
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then each member got one message per channel, naming the tier and the end in China time
    per_member = Counter(recipient for _, _, recipient, _ in provider.sent)
    assert per_member == dict.fromkeys(customers, 3)
    sms = [text for _, channel, _, text in provider.sent if channel == "sms"]
    assert all(text.startswith("【云店】您的金卡会员将于") for text in sms), sms

    # When pr-0 renews (the end moves 30 days) and time comes within 3 days of the new end
    buy("pr-0", "o-pr-0-renewal", now)
    consent(client, customer_token("pr-0"), "MembershipExpiring")  # WeChat: one message per consent
    later = bootstrap.paid_expiry(FakeClock(now + 29 * DAY_MS + 3_600_000))
    later.remind_expiring()
    EventRunner(quiet=True).drain(sources=["stream"])
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then pr-0 is reminded of its new end, once
    reminders = events_of("MembershipExpiring")
    assert Counter(e["aggregate_id"] for e in reminders)["pr-0"] == 2
    assert len({e["event_id"] for e in reminders}) == len(reminders)
    assert Counter(recipient for _, _, recipient, _ in provider.sent)["pr-0"] == 6


def test_an_ended_membership_is_told_once_and_a_renewal_before_the_expiry_is_told_nothing(client, table):
    now = now_ms()
    # Given 3 members reachable on every channel whose memberships ended, and a fourth that renews
    # between the job's index read and its write
    customers = [f"pe-{n}" for n in range(3)]
    for n, customer in enumerate([*customers, "pe-racer"]):
        register(client, customer_token(customer), **everyone(phone=f"1391000{n:04d}"))
        consent(client, customer_token(customer), "MembershipExpired")
    for customer in customers:
        buy(customer, f"o-{customer}", now - 31 * DAY_MS)
    buy("pe-racer", "o-pe-racer", now - 31 * DAY_MS)
    members = DynamoEndingMembers()
    real_expire = members.expire

    def expire_after_a_renewal(ending):
        if ending.customer_id == "pe-racer":
            buy("pe-racer", "o-pe-racer-2", now)
        real_expire(ending)

    members.expire = expire_after_a_renewal  # type: ignore[method-assign]

    # When the expiry runs and its events are relayed to the notifications consumer
    assert PaidExpiry(members, DynamoJobCheckpoints(), FakeClock(now), 3).expire_due().done == 3
    EventRunner(quiet=True).drain(sources=["stream"])
    queue = Queue.of(table, "NotificationsQueue")
    bodies = [m["Body"] for m in queue.peek()]
    assert sorted(json.loads(b)["aggregate_id"] for b in bodies) == customers
    provider = RecordingProvider()
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then each ended member is told once per channel that it ended, naming the tier and the end
    assert Counter(recipient for _, _, recipient, _ in provider.sent) == dict.fromkeys(customers, 3)
    ended = _china(now - 31 * DAY_MS + 30 * DAY_MS)
    sms = [text for _, channel, _, text in provider.sent if channel == "sms"]
    assert sms == [f"【云店】您的金卡会员已于{ended}到期，续费即可恢复会员价和会员折扣。"] * 3, sms

    # When every event is delivered again (SQS at least once, a replayed stream record)
    for body in bodies:
        queue.send(body)
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then nothing is sent twice
    assert len(provider.sent) == 9


def test_an_end_set_inside_the_window_the_reminder_passed_is_reminded_once_by_its_next_run(client, table):
    now = now_ms()
    # Given a member whose membership ends in a day with a 30-day renewal queued after it
    for n, customer in enumerate(["pw-refund", "pw-short"]):
        register(client, customer_token(customer), **everyone(phone=f"1392000{n:04d}"))
        consent(client, customer_token(customer), "MembershipExpiring")
    buy("pw-refund", "o-pw-first", now - 29 * DAY_MS)
    buy("pw-refund", "o-pw-renewal", now - DAY_MS)
    job = bootstrap.paid_expiry(FakeClock(now))
    assert job.remind_expiring().done == 0  # it ends in 31 days; the reminder has passed now + 3 days
    # When the renewal is refunded (the end moves back to a day from now) and a 2-day plan is bought
    store = DynamoPaidTerms()
    read = store.read("pw-refund")
    store.write(read, refunded(read, "o-pw-renewal", now + 60_000))
    assert int(PaidMemberItem.get(*PaidMemberItem.key("pw-refund")).until_ms) == now + DAY_MS
    buy("pw-short", "o-pw-short", now + 60_000, days=2)

    # Then the reminder's next run reminds both, once, of the end they have now
    later = bootstrap.paid_expiry(FakeClock(now + 3_600_000))
    assert later.remind_expiring().done == 2
    assert bootstrap.paid_expiry(FakeClock(now + 7_200_000)).remind_expiring().done == 0
    EventRunner(quiet=True).drain(sources=["stream"])
    reminders = {e["aggregate_id"]: e["payload"]["until"] for e in events_of("MembershipExpiring")}
    assert reminders == {"pw-refund": iso(now + DAY_MS), "pw-short": iso(now + 60_000 + 2 * DAY_MS)}
    provider = RecordingProvider()
    Queue.of(table, "NotificationsQueue").deliver_all(notifier(provider), fast_runtime())
    assert Counter(recipient for _, _, recipient, _ in provider.sent) == {"pw-refund": 3, "pw-short": 3}


def _china(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, timezone(timedelta(hours=8))).strftime("%m-%d %H:%M")


@pytest.fixture(autouse=True)
def _settings_fresh(monkeypatch):
    monkeypatch.setenv("PAID_MEMBERSHIP_REMIND_DAYS", "3")
    from shared.platform.settings import reset_settings

    reset_settings()
    yield
    reset_settings()


def test_a_refund_handled_late_expires_a_membership_it_leaves_ended_and_it_is_announced_once(table):
    now = now_ms()
    # Given a membership that ended 60 days ago (expired by the job: its mark stays on the item),
    # then two 30-day terms bought back to back 50 days ago: the membership runs to now + 10 days
    start = now - 50 * DAY_MS
    buy("late", "o-late-0", start - 90 * DAY_MS)
    job = PaidExpiry(DynamoEndingMembers(), DynamoJobCheckpoints(), FakeClock(start), 3)
    run_until_done(job, lambda j: j.expire_due())
    buy("late", "o-late-1", start)
    buy("late", "o-late-2", start + DAY_MS)
    job = PaidExpiry(DynamoEndingMembers(), DynamoJobCheckpoints(), FakeClock(now), 3)
    run_until_done(job, lambda j: j.expire_due())  # the checkpoint is now past every end below now
    # When the first term's refund, issued on day 1, is handled only now (retries, a DLQ redrive)
    refund = {
        "customer_id": "late",
        "order_id": "o-late-1",
        "refund_lines": [{"sku": "MEMBERSHIP-1-30", "qty": 1, "amount_fen": 9_000}],
    }
    event = DomainEvent(EventType.REFUND_ISSUED, "o-late-1", refund, "late-refund", iso(start + DAY_MS))
    PaidMembershipEvents(DynamoPaidTerms(), bootstrap.coupons, clock=FakeClock(now)).on_refund(event)
    # Then the second term moved forward ends on day 31, already passed: EXPIRED by that write
    member = PaidMemberItem.get(*PaidMemberItem.key("late"))
    ended = start + 31 * DAY_MS
    assert (member.status, int(member.until_ms)) == ("EXPIRED", ended)
    # and MembershipExpired is derived once from its ACTIVE -> EXPIRED change, for that end
    run_until_done(job, lambda j: j.expire_due())
    expired = [e for e in events_of("MembershipExpired") if e["aggregate_id"] == "late"]
    assert [e["payload"]["until"] for e in expired] == [iso(start - 60 * DAY_MS), iso(ended)], expired
    assert expired[1]["payload"]["tier"] == "金卡"


def test_the_expiry_names_the_tier_that_ran_last(table):
    now = now_ms()
    # Given gold (rank 2) and then silver bought as a renewal behind it, both ended 10 days ago
    buy("tiers", "o-tiers-1", now - 70 * DAY_MS, tier="金卡", rank=2)
    buy("tiers", "o-tiers-2", now - 69 * DAY_MS, tier="银卡", rank=1)
    assert PaidMemberItem.get(*PaidMemberItem.key("tiers")).tier == "金卡"  # the tier at the last write
    # When the job expires it, the end it announces is silver's
    run_until_done(
        PaidExpiry(DynamoEndingMembers(), DynamoJobCheckpoints(), FakeClock(now), 3), lambda j: j.expire_due()
    )
    (expired,) = [e for e in events_of("MembershipExpired") if e["aggregate_id"] == "tiers"]
    assert expired["payload"]["tier"] == "银卡" and expired["payload"]["until"] == iso(now - 10 * DAY_MS)
