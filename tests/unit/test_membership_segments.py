"""Tags, segments and the birthday coupon (shared/membership/tags.py, directory.py, segments.py,
birthdays.py) on in-memory ports: activity kept from the order events, tags as ranges that move
with time, the members' pages, a coupon issued to a segment as a resumable job through the coupons'
claim path (one coupon per member even when a run dies halfway, never past the template's total),
and the birthday coupon given with the greeting once a year."""

from __future__ import annotations

import json

import pytest

from shared.coupons.model import Status
from shared.kernel.clock import FakeClock, iso
from shared.kernel.errors import NotFound, RuleViolation
from shared.kernel.events import DomainEvent, EventType
from shared.membership.birthdays import BirthdayCoupons
from shared.membership.coupon_gifts import ClaimedGifts
from shared.membership.directory import MemberDirectory
from shared.membership.earning import PointsEarning
from shared.membership.model import DAY_MS, DEFAULT_RULES, MembershipRules, TagRules
from shared.membership.reports import MembershipReport
from shared.membership.rules import MembershipRulesAdmin
from shared.membership.segments import JobStatus, Outcome, SegmentIssues, SegmentJobChanged
from shared.membership.tags import Tag
from shared.messaging.consumers import RetryPolicy, Runtime, consume
from shared.notifications.delivery import Notifier
from shared.notifications.model import Channel, Contact, Message
from shared.notifications.model import Status as MessageStatus
from shared.notifications.providers import SinkProvider
from tests.events import sqs_batch_of
from tests.fakes.coupons import coupons_on_fakes, fixed_coupon_template
from tests.fakes.membership import DiesAfter, MemoryMembers, MemoryMembershipRules, MemorySegmentJobs
from tests.fakes.messaging import MemoryMarks, MemoryQueue

TAGS = TagRules(new_days=30, active_days=90, dormant_days=180, high_value_fen=50_000, high_value_min_orders=2)


class Kit:
    def __init__(self, rules: MembershipRules | None = None) -> None:
        self.clock = FakeClock()
        self.marks = MemoryMarks()
        self.store = MemoryMembers(self.marks)
        self.rules = MemoryMembershipRules()
        MembershipRulesAdmin(self.rules).save(rules or MembershipRules(DEFAULT_RULES.levels, tags=TAGS))
        self.consumer = PointsEarning(self.store, self.rules, 7 * DAY_MS)
        self.runtime = Runtime(self.marks, MemoryQueue(), RetryPolicy(base_s=0, lease_s=60), self.clock.now_ms)
        self.directory = MemberDirectory(self.store, self.rules, self.clock)
        self.coupon_ports, self.coupon_tables = coupons_on_fakes(self.clock)
        self.jobs = MemorySegmentJobs()
        self.orders = 0

    def deliver(self, *events: DomainEvent) -> dict:
        batch = sqs_batch_of([json.dumps(event.to_message()) for event in events])
        return consume(batch, self.consumer, self.runtime)

    def paid(self, customer: str, paid_fen: int) -> DomainEvent:
        self.orders += 1
        lines = [{"sku": "TEA-1", "qty": 1, "payable_fen": paid_fen}]
        body = {"order_id": f"o-{self.orders}", "customer_id": customer, "lines": lines, "store_id": "S001"}
        return DomainEvent(EventType.ORDER_PAID, f"o-{self.orders}", body, occurred_at=iso(self.clock.now_ms()))

    def refunded(self, paid: DomainEvent, amount_fen: int) -> DomainEvent:
        body = {**paid.payload, "refund_id": f"r-{paid.payload['order_id']}", "amount_fen": amount_fen}
        return DomainEvent(EventType.REFUND_ISSUED, paid.aggregate_id, body, occurred_at=iso(self.clock.now_ms()))

    def tagged(self, tag: Tag, limit: int = 7) -> list[str]:
        found, cursor = self.directory.with_tag(tag, limit, None)
        while cursor is not None:
            more, cursor = self.directory.with_tag(tag, limit, cursor)
            found += more
        return [m["customer_id"] for m in found]

    def segments(self, coupons: object | None = None, page_size: int = 4) -> SegmentIssues:
        issue = coupons or ClaimedGifts(self.coupon_ports)
        return SegmentIssues(self.store, self.jobs, self.rules, issue, self.clock, page_size=page_size)  # type: ignore[arg-type]

    def coupons_of(self, template_id: str) -> dict[str, int]:
        held: dict[str, int] = {}
        for coupon in self.coupon_tables.coupons.values():
            if coupon.template_id == template_id:
                held[coupon.customer_id] = held.get(coupon.customer_id, 0) + 1
        return held


@pytest.fixture
def kit() -> Kit:
    return Kit()


def test_tags_follow_the_order_events_and_the_clock(kit: Kit):
    # Given c-1 with two orders of 300 yuan, c-2 with one of 800 yuan, c-3 with one refunded in full
    kit.deliver(kit.paid("c-1", 30_000), kit.paid("c-1", 30_000), kit.paid("c-2", 80_000))
    refunded = kit.paid("c-3", 60_000)
    kit.deliver(refunded, kit.refunded(refunded, 60_000))
    # Then all are new and active; high value needs 500 yuan net in at least two orders
    assert sorted(kit.tagged(Tag.NEW)) == ["c-1", "c-2", "c-3"]
    assert sorted(kit.tagged(Tag.ACTIVE)) == ["c-1", "c-2", "c-3"]
    assert kit.tagged(Tag.HIGH_VALUE) == ["c-1"]
    assert kit.tagged(Tag.DORMANT) == []
    # When 100 days pass and c-2 orders again
    kit.clock.advance(100 * DAY_MS / 1000)
    kit.deliver(kit.paid("c-2", 100))
    # Then nobody is new, only c-2 is active, and nobody is dormant yet (180 days)
    assert kit.tagged(Tag.NEW) == [] and kit.tagged(Tag.ACTIVE) == ["c-2"]
    assert sorted(kit.tagged(Tag.HIGH_VALUE)) == ["c-1", "c-2"]
    # When 81 more days pass: c-1 and c-3 are dormant (last order 181 days ago), c-2 is neither
    kit.clock.advance(81 * DAY_MS / 1000)
    assert sorted(kit.tagged(Tag.DORMANT)) == ["c-1", "c-3"]
    assert kit.tagged(Tag.ACTIVE) == ["c-2"]
    activity = kit.store.activities["c-1"]
    assert (activity.orders, activity.monetary_fen) == (2, 60_000)
    assert kit.store.activities["c-3"].monetary_fen == 0


def test_a_redelivered_order_event_counts_once(kit: Kit):
    paid = kit.paid("c-1", 30_000)
    kit.deliver(paid)
    kit.deliver(paid)  # SQS delivers again
    assert kit.store.activities["c-1"].orders == 1


def test_the_members_pages_cover_every_shard_once(kit: Kit):
    # Given 30 members spread over the index shards
    for n in range(30):
        kit.deliver(kit.paid(f"m-{n:02d}", 1_000 + n))
    # When paged 7 at a time, Then each is listed exactly once
    listed = kit.tagged(Tag.ACTIVE, limit=7)
    assert sorted(listed) == [f"m-{n:02d}" for n in range(30)]
    first, cursor = kit.directory.with_tag(Tag.ACTIVE, 7, None)
    assert len(first) == 7 and cursor is not None
    assert set(first[0]) >= {"customer_id", "tags", "orders", "monetary_fen", "last_order_at"}


def test_tag_rules_are_validated():
    with pytest.raises(RuleViolation):
        TagRules(active_days=90, dormant_days=30)
    saved = MembershipRules.of({"levels": [{"level": 0, "name": "会员", "min_growth_fen": 0}], "tags": TAGS.view()})
    assert saved.tags == TAGS


def test_a_segment_issue_restarted_halfway_gives_each_member_exactly_one_coupon(kit: Kit):
    # Given 25 active members and a template of 100 coupons, 2 per member
    members = [f"m-{n:02d}" for n in range(25)]
    kit.deliver(*(kit.paid(m, 5_000) for m in members))
    template = fixed_coupon_template(kit.coupon_ports, 30 * DAY_MS, total=100, per_user_limit=2)
    # When the job starts and its first run dies in the middle of its third page (pages of 4)
    crashing = DiesAfter(ClaimedGifts(kit.coupon_ports), after=10)
    made, job = kit.segments(crashing).start("spring", template, Tag.ACTIVE, "admin-1")
    assert made and job["status"] == "RUNNING"
    with pytest.raises(RuntimeError):
        kit.segments(crashing).run_due(max_pages=100)
    halfway = kit.jobs.get("spring")
    # The checkpoint is behind what was issued: a page was half done when the run died
    assert halfway is not None and halfway.pages >= 1 and 0 < halfway.issued < 10
    assert sum(kit.coupons_of(template).values()) == 10
    # Then a run while the dead run's lease holds does nothing; after it, the job resumes
    assert kit.segments().run_due() == 0
    kit.clock.advance(121)
    kit.segments().run_due(max_pages=3)
    assert kit.jobs.get("spring").status is JobStatus.RUNNING  # type: ignore[union-attr]
    kit.segments().run_due()
    done = kit.segments().progress("spring")
    assert done is not None and done.status is JobStatus.DONE
    # Every member holds exactly one coupon of the job (the limit would have allowed two)
    assert kit.coupons_of(template) == {m: 1 for m in members}
    assert done.view()["issued"] == 25 and done.view()["members_done"] == 25
    # And running again changes nothing: the job is out of the queue
    assert kit.segments().run_due() == 0 and sum(kit.coupons_of(template).values()) == 25


def test_a_segment_issue_never_issues_past_the_template_total_and_skips_members_at_their_limit(kit: Kit):
    members = [f"m-{n:02d}" for n in range(12)]
    kit.deliver(*(kit.paid(m, 5_000) for m in members))
    template = fixed_coupon_template(kit.coupon_ports, 30 * DAY_MS, total=8, per_user_limit=1)
    # m-00 claimed one itself before the job
    assert ClaimedGifts(kit.coupon_ports).issue(template, "m-00", "own").outcome is Outcome.ISSUED
    kit.segments().start("j", template, Tag.ACTIVE, "admin-1")
    kit.segments().run_due()
    job = kit.segments().progress("j")
    assert job is not None and job.status is JobStatus.STOPPED and job.stop_reason == "exhausted"
    assert sum(kit.coupons_of(template).values()) == 8  # the total, never more
    assert kit.coupons_of(template)["m-00"] == 1
    assert job.issued == 7 and job.skipped.get("limit_reached", 0) <= 1
    assert all(c.status is Status.AVAILABLE for c in kit.coupon_tables.coupons.values())


def test_a_job_id_is_one_job(kit: Kit):
    template = fixed_coupon_template(kit.coupon_ports, DAY_MS)
    other = fixed_coupon_template(kit.coupon_ports, DAY_MS)
    assert kit.segments().start("j", template, Tag.NEW, "a")[0] is True
    assert kit.segments().start("j", template, Tag.NEW, "a")[0] is False  # a retry: the same job
    with pytest.raises(SegmentJobChanged):
        kit.segments().start("j", other, Tag.NEW, "a")
    with pytest.raises(NotFound):
        kit.segments().start("k", "no-such-template", Tag.NEW, "a")
    assert len(kit.jobs.jobs) == 1


# -- birthdays ------------------------------------------------------------------------------------
class Messages:
    def __init__(self) -> None:
        self.stored: dict[tuple, Message] = {}

    def get(self, notice_id: str, channel: Channel, recipient: str) -> Message | None:
        return self.stored.get((notice_id, channel, recipient))

    def create(self, message: Message) -> bool:
        return self.stored.setdefault(message.key, message) is message

    def save(self, message: Message, expected: object) -> None:
        self.stored[message.key] = message

    def of_notice(self, notice_id: str) -> list[Message]:
        return [m for k, m in self.stored.items() if k[0] == notice_id]

    def hold_grant(self, message: Message, template_id: str, now_ms: int) -> bool:
        return True

    def return_grant(self, message: Message, template_id: str, now_ms: int) -> None:
        return None


class Contacts:
    def __init__(self, *people: Contact) -> None:
        self.people = people

    def get(self, user_id: str) -> Contact | None:
        return next((c for c in self.people if c.user_id == user_id), None)

    def audience(self, key: str) -> list[Contact]:
        return []

    def with_birthday(self, mmdd: str) -> list[Contact]:
        return [c for c in self.people if c.birthday and c.birthday.replace("-", "") == mmdd]


def test_the_birthday_greeting_gives_the_named_coupon_once_a_year(kit: Kit):
    # Given the rules name a birthday template (2 per member, so only the key keeps it to one a year)
    template = fixed_coupon_template(kit.coupon_ports, 800 * DAY_MS, total=10, per_user_limit=2)
    MembershipRulesAdmin(kit.rules).save(MembershipRules(DEFAULT_RULES.levels, birthday_coupon_template_id=template))
    kit.clock.advance((iso_ms("2026-12-02T04:00:00+00:00") - kit.clock.now_ms()) / 1000)  # 12:00 in China
    today = "12-02"
    people = Contacts(Contact("c-1", role="customer", phone="13800000000", birthday=today))
    messages = Messages()
    notifier = Notifier(
        messages=messages,
        contacts=people,
        providers={Channel.SMS: SinkProvider()},
        clock=kit.clock.now_ms,
        birthday_gift=BirthdayCoupons(kit.rules, ClaimedGifts(kit.coupon_ports)),
    )
    # When the hourly greeter runs three times that day
    for _ in range(3):
        notifier.greet_birthdays(kit.clock.now_ms())
        kit.clock.advance(3600)
    # Then one coupon, and one SMS that names it
    assert kit.coupons_of(template) == {"c-1": 1}
    sms = messages.get("birthday-2026-c-1", Channel.SMS, "c-1")
    assert len(messages.stored) == 3  # one per channel: e-mail and WeChat skipped, no address
    assert sms is not None and sms.status is MessageStatus.SENT and sms.template == "BirthdayCoupon"
    assert "立减10元" in sms.rendered.text
    # And next year, one more
    kit.clock.advance(365 * DAY_MS / 1000)
    notifier.greet_birthdays(kit.clock.now_ms())
    assert kit.coupons_of(template) == {"c-1": 2}


def test_without_a_named_template_the_greeting_goes_alone(kit: Kit):
    assert BirthdayCoupons(kit.rules, ClaimedGifts(kit.coupon_ports))("c-1", 2026) is None


def iso_ms(when: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(when).timestamp() * 1000)


def test_the_report_counts_members_by_store_and_tag(kit: Kit):
    # Given members at two stores; one pays again at the other store (it counts at its last store)
    for n in range(6):
        event = kit.paid(f"m-{n}", 60_000 if n < 2 else 1_000)
        event.payload["store_id"] = "S001" if n % 2 else "S002"
        kit.deliver(event)
    again = kit.paid("m-1", 1_000)
    again.payload["store_id"] = "S002"
    kit.deliver(again)
    report = MembershipReport(kit.store, kit.rules, kit.clock, page_size=2).by_store()
    rows = {row["store_id"]: row for row in report["stores"]}
    # Then (pages of 2, so every shard's pages are walked) each member is counted once per tag
    assert report["totals"] == {"new": 6, "active": 6, "dormant": 0, "high_value": 1} and report["complete"]
    assert rows["S001"]["active"] == 2 and rows["S002"]["active"] == 4
    assert rows["S002"]["high_value"] == 1  # m-1: two orders, 610 yuan (m-0 has one order: min_orders 2)
    # When 200 days pass: everyone is dormant
    kit.clock.advance(200 * DAY_MS / 1000)
    later = MembershipReport(kit.store, kit.rules, kit.clock).by_store()
    assert later["totals"]["dormant"] == 6 and later["totals"]["active"] == 0
    # And a budget too small says so
    assert MembershipReport(kit.store, kit.rules, kit.clock, page_size=1, max_pages=1).by_store()["complete"] is False
