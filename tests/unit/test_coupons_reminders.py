"""The expiry reminder on in-memory ports (tests/fakes/coupons.py) and a FakeClock: a CouponExpiring
event once per coupon when its use window ends within a day, none for a coupon no longer AVAILABLE
or claimed within its last day; once even when the job runs twice, runs beside itself, or is
interrupted mid-page and run again (it resumes from its checkpoints)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.coupons import claims, reminders
from shared.coupons.model import DAY_MS, Status
from shared.kernel.clock import FakeClock
from shared.kernel.events import EventType
from shared.kernel.idempotency import IdempotentRequest
from tests.fakes.coupons import coupons_on_fakes, fixed_coupon_template

HOUR_MS = 3600 * 1000
DAY_S = DAY_MS // 1000


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def world(clock):
    return coupons_on_fakes(clock)


def given_coupons(ports, n: int, valid_for_ms: int = 3 * DAY_MS, valid_days: int | None = None) -> list[str]:
    """`n` customers each claim one coupon of a new template whose use window ends `valid_for_ms` from now."""
    template_id = fixed_coupon_template(ports, valid_for_ms, total=n, valid_days=valid_days)
    ids = []
    for i in range(n):
        request = IdempotentRequest.of(f"coupon-claims:{template_id}:c-{i}", None, {"template_id": template_id})
        ids.append(claims.claim(template_id, f"c-{i}", request, ports).body["coupon_id"])
    return ids


def reminded(tables) -> list[str]:
    return [e.aggregate_id for e in tables.events if e.type is EventType.COUPON_EXPIRING]


def test_a_coupon_is_reminded_once_a_day_before_its_window_ends(world, clock):
    ports, tables = world
    [coupon_id] = given_coupons(ports, 1, valid_for_ms=3 * DAY_MS)
    # Two days before the end: nothing
    clock.advance(DAY_S)
    assert reminders.remind_expiring(ports) == 0
    # A day before (the run every 10 minutes comes a few minutes inside the day): the reminder
    clock.advance(DAY_S + 5 * 60)
    assert reminders.remind_expiring(ports) == 1
    [event] = [e for e in tables.events if e.type is EventType.COUPON_EXPIRING]
    coupon = tables.coupons[coupon_id]
    assert event.event_id == f"coupon-expiring-{coupon_id}"
    assert event.payload == {
        "coupon_id": coupon_id,
        "template_id": coupon.template_id,
        "customer_id": "c-0",
        "coupon_name": "立减10元",
        "valid_to": event.payload["valid_to"],
    }
    # Later runs, that day and after, send nothing more
    for _ in range(3):
        clock.advance(10 * 60)
        assert reminders.remind_expiring(ports) == 0
    assert reminded(tables) == [coupon_id]


def test_no_reminder_for_a_coupon_used_meanwhile_or_claimed_within_its_last_day(world, clock):
    ports, tables = world
    used, kept = given_coupons(ports, 2, valid_for_ms=3 * DAY_MS)
    tables.coupons[used] = replace(tables.coupons[used], status=Status.USED)
    clock.advance(2 * DAY_S + 5 * 60)
    assert reminders.remind_expiring(ports) == 1
    assert reminded(tables) == [kept]
    # A coupon usable for a day from its claim is inside its last day from the start: no reminder
    [short] = given_coupons(ports, 1, valid_for_ms=3 * DAY_MS, valid_days=1)
    clock.advance(10 * 60)
    assert reminders.remind_expiring(ports) == 0
    assert short not in tables.reminded and reminded(tables) == [kept]


def test_a_run_interrupted_mid_page_resumes_and_reminds_each_coupon_once(world, clock):
    ports, tables = world
    coupon_ids = given_coupons(ports, 30)
    clock.advance(2 * DAY_S + 5 * 60)

    class Interrupted(Exception):
        pass

    commits = {"n": 0}

    def dying_after(n: int):
        def unit_of_work(retry_conflicts: bool = True):
            uow = ports.unit_of_work(retry_conflicts=retry_conflicts)
            real_commit = uow.commit

            def commit() -> None:
                if commits["n"] >= n:
                    raise Interrupted()  # the Lambda is stopped here: the page is half done
                real_commit()
                commits["n"] += 1

            uow.commit = commit
            return uow

        return unit_of_work

    # When the job dies after 7 reminders (pages of 2: inside a page, before its checkpoint moved)
    with pytest.raises(Interrupted):
        reminders.remind_expiring(replace(ports, unit_of_work=dying_after(7)), page_size=2)
    assert len(reminded(tables)) == 7
    done_before = dict(tables.reminder_checkpoints)
    assert done_before  # some partitions' pages were checkpointed before it died
    # And runs again, twice
    assert reminders.remind_expiring(ports, page_size=2) == 23
    assert reminders.remind_expiring(ports, page_size=2) == 0
    # Then every coupon was reminded exactly once, and no checkpoint went back
    assert sorted(reminded(tables)) == sorted(coupon_ids)
    assert all(tables.reminder_checkpoints[p] >= position for p, position in done_before.items())


def test_two_runs_at_once_remind_each_coupon_once(world, clock):
    ports, tables = world
    coupon_ids = given_coupons(ports, 40)
    clock.advance(2 * DAY_S + 5 * 60)
    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(pool.map(lambda _: reminders.remind_expiring(ports, page_size=3), range(4)))
    assert sum(counts) == 40
    assert sorted(reminded(tables)) == sorted(coupon_ids)


def test_a_coupon_past_its_end_is_not_reminded(world, clock):
    ports, tables = world
    given_coupons(ports, 1, valid_for_ms=2 * DAY_MS)
    # The job was down for days: the coupon has expired, nothing is sent
    clock.advance(3 * DAY_S)
    assert reminders.remind_expiring(ports) == 0
    assert reminded(tables) == []


# -- the message the customer gets (shared/notifications) ---------------------------------------
def test_the_reminder_reaches_the_customer_with_the_coupon_and_its_end_in_china_time():
    from shared.kernel.events import DomainEvent
    from shared.notifications.model import Channel, Locale
    from shared.notifications.recipients import Addressee, Audience, plan
    from shared.notifications.templates import params_of, render

    event = DomainEvent(
        EventType.COUPON_EXPIRING,
        "cp-1",
        {"coupon_id": "cp-1", "customer_id": "c-1", "coupon_name": "满100减20", "valid_to": "2027-01-01T16:00:00.000Z"},
    )
    assert plan(event) == [Addressee(Audience.CUSTOMER, "c-1", "CouponExpiring")]
    zh = render("CouponExpiring", Channel.SMS, Locale.ZH, params_of(event.payload, Locale.ZH)).text
    assert zh == "【云店】您的优惠券满100减20将于01-02 00:00到期，请尽快使用。"
    wechat = render("CouponExpiring", Channel.WECHAT, Locale.EN, params_of(event.payload, Locale.EN))
    assert wechat.data == {"thing1": {"value": "满100减20"}, "time2": {"value": "01-02 00:00"}}


@given(name=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=100))
def test_a_reminder_sms_fits_70_characters_whatever_the_coupons_name(name):
    from shared.notifications.model import Channel, Locale
    from shared.notifications.templates import SMS_LIMIT, params_of, render

    payload = {"customer_id": "c-1", "coupon_name": name, "valid_to": "2027-01-01T16:00:00.000Z"}
    for locale in Locale:
        sms = render("CouponExpiring", Channel.SMS, locale, params_of(payload, locale)).text
        assert len(sms) <= SMS_LIMIT and "01-02 00:00" in sms  # the name may be cut, never the time
