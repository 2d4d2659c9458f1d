"""The expiry reminder on moto: the job walks the real expiry index (gsi2 `CPNDUE#`) from its
checkpoints, writes CouponExpiring through the outbox with the coupon's reminder item, and the
notifications consumer (relayed from the real stream to the real queue) tells each customer once
per channel, although the job was interrupted mid-page, ran again twice, and ran under faults."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.local.faults import FaultInjector, Kind
from infra.local.runner import EventRunner
from shared.coupons import reminders
from shared.data.items import CouponReminderCheckpointItem, CouponReminderItem, EventItem
from shared.kernel.clock import FakeClock, now_ms
from shared.platform import bootstrap
from tests.functional.coupons_support import claim, create_template, customer_token, given_stores, iso_in
from tests.functional.events_support import Queue, fast_runtime
from tests.functional.notifications_support import RecordingProvider, consent, everyone, notifier, register

DAY_S = 86_400
CUSTOMERS = 12


class Interrupted(Exception):
    """The Lambda stopped (timeout, deployment) in the middle of a run."""


def dying_after(ports, commits: int):
    """The ports' unit of work, but the run dies when it would commit the (commits + 1)th reminder."""
    done = {"n": 0}

    def unit_of_work(retry_conflicts: bool = True):
        uow = ports.unit_of_work(retry_conflicts=retry_conflicts)
        real_commit = uow.commit

        def commit() -> None:
            if done["n"] >= commits:
                raise Interrupted()
            real_commit()
            done["n"] += 1

        uow.commit = commit  # type: ignore[method-assign]
        return uow

    return unit_of_work


def test_each_customer_is_reminded_once_though_the_job_was_interrupted_and_ran_again(client, tokens, table):
    # Given 12 customers reachable on every channel, each holding a coupon whose window ends in 3 days
    given_stores()
    template_id = create_template(client, tokens, total=CUSTOMERS, valid_to=iso_in(3 * DAY_S))
    customers = [f"rc-{n}" for n in range(CUSTOMERS)]
    for n, customer in enumerate(customers):
        register(client, customer_token(customer), **everyone(phone=f"1380000{n:04d}"))
        consent(client, customer_token(customer), "CouponExpiring")
        claim(template_id, customer)
    ports = bootstrap.coupons()
    # When the job runs two days on (the window ends within a day), dies after 5 reminders in the
    # middle of a page, runs again, once under faults on its reads and writes, and once more
    later = replace(ports, clock=FakeClock(now_ms() + (2 * DAY_S + 300) * 1000))
    with pytest.raises(Interrupted):
        reminders.remind_expiring(replace(later, unit_of_work=dying_after(later, 5)), page_size=2)
    faults = FaultInjector(
        rate=0.2,
        seed=5,
        kinds=[Kind.THROTTLING, Kind.CONFLICT, Kind.TIMEOUT_APPLIED],
        partitions=lambda pk: pk.startswith(("COUPON#", "CPNREMIND#", "EVENT#")),
    )
    with faults.attached():
        _run_until_done(later)
    assert faults.total > 0, faults.report()
    assert reminders.remind_expiring(later, page_size=2) == 0
    # Then every coupon has its reminder item and exactly one CouponExpiring event (a reminder
    # whose answer was lost counts as already sent in that run, but its event is there)
    expiring = [e for e in EventItem.scan() if isinstance(e, EventItem) and e.event_type == "CouponExpiring"]
    assert sorted(e.aggregate_id for e in expiring) == sorted(
        r.pk.removeprefix("COUPON#") for r in CouponReminderItem.scan() if isinstance(r, CouponReminderItem)
    )
    assert len(expiring) == CUSTOMERS
    assert any(isinstance(c, CouponReminderCheckpointItem) for c in CouponReminderCheckpointItem.scan())

    # When the events are relayed and the notifications consumer delivers them
    EventRunner(quiet=True).drain(sources=["stream"])
    provider = RecordingProvider()
    Queue.of(table, "NotificationsQueue").deliver_all(notifier(provider), fast_runtime())
    # Then each customer got the reminder once per channel
    sent = provider.per_key()
    assert set(sent.values()) == {1}
    assert sorted(recipient for _, channel, recipient in sent if channel == "sms") == sorted(customers)
    assert {channel for _, channel, _ in sent} == {"sms", "email", "wechat"}
    assert all(
        text.startswith("【云店】您的优惠券满100减20将于") for _, channel, _, text in provider.sent if channel == "sms"
    )


def _run_until_done(ports) -> None:
    """A faulty run may stop with a 503 (TemporarilyUnavailable), as a Lambda would; the schedule
    runs it again."""
    from shared.kernel.errors import TemporarilyUnavailable

    for _ in range(20):
        try:
            reminders.remind_expiring(ports, page_size=2)
            return
        except TemporarilyUnavailable:
            continue
    raise AssertionError("the reminder job never got through")


def test_the_schedule_runs_the_job_at_most_once_a_minute_in_a_process(table, monkeypatch):
    # The local runner calls every schedule every few seconds; the job's index queries are not free
    from functions.coupons import reminders as schedule
    from infra.local.runner import FakeContext, _scheduled_event

    monkeypatch.setitem(schedule._last_run, "at", float("-inf"))
    event = _scheduled_event("remind_expiring_coupons")
    assert schedule.remind_expiring_coupons(event, FakeContext()) == {"reminded": 0}
    assert "skipped" in schedule.remind_expiring_coupons(event, FakeContext())
