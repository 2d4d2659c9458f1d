"""Notifications on moto: events emitted through the outbox, relayed from the real stream to the
real queue, consumed by the notifications consumer with a recording provider; people register
and read through the HTTP API (chalice.test.Client)."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from infra.local.runner import EventRunner
from shared.data.stores.notifications import DynamoContacts, DynamoMessages
from shared.kernel.events import DomainEvent, EventType
from shared.notifications.model import Message, Status
from shared.notifications.templates import wechat_template_id
from tests.conftest import bearer
from tests.functional.events_support import Queue, emit, fast_runtime, order_event
from tests.functional.notifications_support import RecordingProvider, consent, everyone, notifier, register


@pytest.fixture
def queue(table: dict) -> Queue:
    return Queue.of(table, "NotificationsQueue")


@pytest.fixture
def dead_letters(table: dict) -> Queue:
    return Queue.of(table, "NotificationsDLQ")


def relay(*events: DomainEvent) -> list[DomainEvent]:
    for event in events:
        emit(event)
    EventRunner(quiet=True).drain(sources=["stream"])
    return list(events)


def messages_of(event: DomainEvent) -> dict[tuple[str, str], Message]:
    return {(m.channel, m.recipient): m for m in DynamoMessages().of_notice(event.event_id)}


def test_the_paid_message_reaches_the_buyer_once_per_channel_though_delivered_three_times(
    client: Client, tokens: dict, queue: Queue
):
    # Given a buyer reachable on every channel who accepted the paid-message template once
    register(client, tokens["customer"], **everyone())
    consent(client, tokens["customer"], "OrderPaid")
    # And an OrderPaid on the queue, delivered twice more (the relay and SQS deliver at least once)
    [paid] = relay(order_event(EventType.ORDER_PAID, store_id="WH", fulfilment={"type": "delivery"}))
    for _ in range(2):
        queue.send(json.dumps(paid.to_message()))
    provider = RecordingProvider()
    # When the consumer works through the queue
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then the buyer got exactly one paid message per channel
    assert sorted(channel for _, channel, _, _ in provider.to("c-1")) == ["email", "sms", "wechat"]
    assert set(provider.per_key().values()) == {1}
    # And the one consent grant was used once
    remaining = client.http.get("/me/wechat-consents", headers=bearer(tokens["customer"])).json_body["remaining"]
    assert remaining == {wechat_template_id("OrderPaid"): 0}
    # And the buyer reads them, sent, in their own feed
    items = client.http.get("/me/notifications", headers=bearer(tokens["customer"])).json_body["items"]
    assert sorted((i["channel"], i["status"], i["event"]) for i in items) == [
        ("email", "sent", "OrderPaid"),
        ("sms", "sent", "OrderPaid"),
        ("wechat", "sent", "OrderPaid"),
    ]
    sms = next(i for i in items if i["channel"] == "sms")
    assert sms["text"].startswith("【云店】订单") and "168.00" in sms["text"] and len(sms["text"]) <= 70


def test_a_store_fulfilled_order_tells_that_stores_staff_and_only_them(client: Client, tokens: dict, queue: Queue):
    # Given staff of S001 and of S002 registered, and a paid pickup order at S001
    register(client, tokens["store_staff"], phone="13900000001")
    from shared.web.auth import Role, issue_token

    other_store = issue_token("test-jwt-secret", "staff-2", Role.STORE_STAFF, "S002")
    register(client, other_store, phone="13900000002")
    provider = RecordingProvider()
    # When the event is consumed
    relay(order_event(EventType.ORDER_PAID))
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then S001's staff got the store message by SMS (their only address), S002's nothing
    assert [(c, t[:10]) for _, c, _, t in provider.to("staff-1")] == [("sms", "【云店】门店S001")]
    assert provider.to("staff-2") == []


def test_low_stock_goes_to_the_stores_staff_and_to_merchant_admins(client: Client, tokens: dict, queue: Queue):
    register(client, tokens["store_staff"], phone="13900000001")
    register(client, tokens["merchant_admin"], email="admin@example.com", locale="en")
    low = DomainEvent(
        EventType.LOW_STOCK, "TEA-001@S001", {"sku": "TEA-001", "location": "S001", "available": 4, "threshold": 5}
    )
    warehouse = DomainEvent(
        EventType.LOW_STOCK, "TEA-002@WH", {"sku": "TEA-002", "location": "WH", "available": 1, "threshold": 5}
    )
    provider = RecordingProvider()
    relay(low, warehouse)
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then the store's staff heard about their store only; the admin about both, in English
    assert [n for n, *_ in provider.to("staff-1")] == [low.event_id]
    assert sorted(n for n, *_ in provider.to("admin")) == sorted([low.event_id, warehouse.event_id])
    assert {t for *_, t in provider.to("admin")} == {"Low stock: TEA-001", "Low stock: TEA-002"}


def test_an_opted_out_channel_gets_nothing_and_says_why(client: Client, tokens: dict, queue: Queue):
    # Given a buyer who turned SMS off
    register(client, tokens["customer"], **everyone())
    response = client.http.put(
        "/me/notification-preferences",
        headers=bearer(tokens["customer"]),
        body=json.dumps({"channels": {"sms": False}}),
    )
    assert response.json_body == {"channels": {"wechat": True, "sms": False, "email": True}}
    provider = RecordingProvider()
    # When an order is cancelled
    [cancelled] = relay(order_event(EventType.ORDER_CANCELLED))
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then no SMS went out; the message is recorded as skipped, opted out
    assert "sms" not in {c for _, c, _, _ in provider.to("c-1")}
    sms = messages_of(cancelled)[("sms", "c-1")]
    assert (sms.status, sms.reason) == (Status.SKIPPED, "opted_out")
    # And turning it back on leaves the other channels as they were
    again = client.http.put(
        "/me/notification-preferences", headers=bearer(tokens["customer"]), body=json.dumps({"channels": {"sms": True}})
    )
    assert again.json_body == {"channels": {"wechat": True, "sms": True, "email": True}}


def test_a_wechat_message_without_consent_is_skipped_and_recorded(client: Client, tokens: dict, queue: Queue):
    # Given one grant for the cancellation template and two cancellations
    register(client, tokens["customer"], **everyone())
    consent(client, tokens["customer"], "OrderCancelled")
    first = order_event(EventType.ORDER_CANCELLED, order_id="o-1")
    provider = RecordingProvider()
    relay(first)
    queue.deliver_all(notifier(provider), fast_runtime())
    second = order_event(EventType.ORDER_CANCELLED, order_id="o-2")
    relay(second)
    queue.deliver_all(notifier(provider), fast_runtime())
    # Then the first used the grant; the second's WeChat message was skipped for lack of consent
    wechat = [(n, c) for n, c, _, _ in provider.sent if c == "wechat"]
    assert wechat == [(first.event_id, "wechat")]
    skipped = messages_of(second)[("wechat", "c-1")]
    assert (skipped.status, skipped.reason) == (Status.SKIPPED, "no_consent")
    # And SMS and email of the second still went out
    assert sorted(c for n, c, _, _ in provider.sent if n == second.event_id) == ["email", "sms"]


def test_consents_posted_twice_with_one_key_grant_once(client: Client, tokens: dict):
    for _ in range(2):
        assert consent(client, tokens["customer"], "OrderPaid", key="consent-1") == {
            "granted": [wechat_template_id("OrderPaid")]
        }
    remaining = client.http.get("/me/wechat-consents", headers=bearer(tokens["customer"])).json_body["remaining"]
    assert remaining == {wechat_template_id("OrderPaid"): 1}
    unknown = client.http.post(
        "/me/wechat-consents", headers=bearer(tokens["customer"]), body=json.dumps({"template_ids": ["nope"]})
    )
    assert unknown.status_code == 422


def test_someone_without_contact_details_is_skipped_on_every_channel(queue: Queue):
    provider = RecordingProvider()
    [placed] = relay(order_event(EventType.ORDER_PLACED, customer_id="c-unknown"))
    queue.deliver_all(notifier(provider), fast_runtime())
    assert provider.sent == []
    assert {(m.status, m.reason) for m in messages_of(placed).values()} == {(Status.SKIPPED, "no_address")}


def test_with_the_provider_failing_half_the_time_every_message_is_sent_or_dead_once(
    client: Client, tokens: dict, queue: Queue, dead_letters: Queue
):
    # Given a buyer on every channel with enough consents, and 12 events about their orders
    register(client, tokens["customer"], **everyone())
    for _ in range(12):
        consent(client, tokens["customer"], "OrderPaid")
    events = relay(*(order_event(EventType.ORDER_PAID, order_id=f"o-{n}", store_id="WH") for n in range(12)))
    # And a provider that fails half of its calls (one try per delivery, five deliveries at most)
    provider = RecordingProvider(failure_rate=0.5, seed=4)
    # When the queue is worked through until it settles
    queue.deliver_until_settled(notifier(provider, tries=1), fast_runtime())
    # Then every message ended sent or dead, nothing was sent twice
    every = [m for e in events for m in messages_of(e).values()]
    assert len(every) == 36
    assert {m.status for m in every} <= {Status.SENT, Status.DEAD}
    assert set(provider.per_key().values()) == {1}
    sent = {(m.notice_id, str(m.channel), m.recipient) for m in every if m.status is Status.SENT}
    assert sent == set(provider.per_key())
    # And the events with dead messages are in the dead-letter queue with the reason; the others not
    dead_events = {m.notice_id for m in every if m.status is Status.DEAD}
    assert dead_events, "with a 50% failure rate some events should exhaust their five receives"
    letters = dead_letters.receive()
    assert {json.loads(d["Body"])["event_id"] for d in letters} == dead_events
    assert all("provider said 503" in d["MessageAttributes"]["failure_reason"]["StringValue"] for d in letters)
    assert all(m.reason == "provider said 503" for m in every if m.status is Status.DEAD)
    # And consent grants held by dead WeChat messages were given back
    remaining = DynamoContacts().grants("c-1")[wechat_template_id("OrderPaid")]
    assert remaining == 12 - sum(1 for m in every if m.status is Status.SENT and str(m.channel) == "wechat")


def test_a_permanent_refusal_is_skipped_without_retrying_and_returns_the_grant(
    client: Client, tokens: dict, queue: Queue
):
    register(client, tokens["customer"], **everyone())
    consent(client, tokens["customer"], "OrderExpired")
    provider = RecordingProvider(always_fail={"c-1"}, permanent=True)
    [expired] = relay(order_event(EventType.ORDER_EXPIRED))
    responses = queue.deliver_all(notifier(provider), fast_runtime())
    assert responses == [{"batchItemFailures": []}]  # not retried: retrying cannot help
    assert {m.status for m in messages_of(expired).values()} == {Status.SKIPPED}
    assert DynamoContacts().grants("c-1") == {wechat_template_id("OrderExpired"): 1}


def test_birthdays_are_greeted_once_a_year_through_the_index(client: Client, tokens: dict):
    # Given a customer whose birthday is today (China time) and one whose birthday is tomorrow
    from datetime import UTC, datetime, timedelta

    from shared.notifications.delivery import BUSINESS_TZ
    from shared.web.auth import Role, issue_token

    now = datetime.now(tz=UTC)
    today = now.astimezone(BUSINESS_TZ)
    register(client, tokens["customer"], **everyone(), birthday=today.strftime("%m-%d"))
    other = issue_token("test-jwt-secret", "c-2", Role.CUSTOMER)
    register(client, other, phone="13800000002", birthday=(today + timedelta(days=1)).strftime("%m-%d"))
    provider = RecordingProvider()
    greeter = notifier(provider)
    # When the schedule runs twice today
    now_ms = int(now.timestamp() * 1000)
    assert greeter.greet_birthdays(now_ms) == 1
    assert greeter.greet_birthdays(now_ms + 3_600_000) in (0, 1)  # still today, or already tomorrow
    # Then the birthday customer was greeted once per reachable channel (no consent: WeChat skipped)
    assert sorted(c for _, c, r, _ in provider.sent if r == "c-1") == ["email", "sms"]
    assert all(n == f"birthday-{today.year}-c-1" for n, _, r, _ in provider.sent if r == "c-1")


def test_people_read_only_their_own_messages_and_admins_the_feed(client: Client, tokens: dict, queue: Queue):
    register(client, tokens["customer"], **everyone())
    [placed] = relay(order_event(EventType.ORDER_PLACED))
    queue.deliver_all(notifier(RecordingProvider()), fast_runtime())
    # A customer cannot read the admin feed, nor see another customer's messages
    assert client.http.get("/admin/notifications", headers=bearer(tokens["customer"])).status_code == 403
    assert client.http.get("/me/notifications", headers=bearer(tokens["customer2"])).json_body["items"] == []
    assert client.http.get("/me/notifications").status_code == 401
    # The admin reads by recipient, by event type and by event id
    admin = bearer(tokens["merchant_admin"])
    by_recipient = client.http.get("/admin/notifications?recipient=c-1", headers=admin).json_body["items"]
    by_type = client.http.get("/admin/notifications?event=OrderPlaced", headers=admin).json_body["items"]
    by_id = client.http.get(f"/admin/notifications?event={placed.event_id}", headers=admin).json_body["items"]
    everything = client.http.get("/admin/notifications", headers=admin).json_body["items"]
    assert len(by_recipient) == len(by_type) == len(by_id) == len(everything) == 3
    assert {i["event_id"] for i in everything} == {placed.event_id}
    assert client.http.get("/admin/notifications?event=OrderPaid", headers=admin).json_body["items"] == []
    assert set(everything[0]) >= {"id", "recipient", "channel", "event", "event_id", "status", "text", "created_at"}


def test_the_feeds_page_newest_first_without_repeats(client: Client, tokens: dict, queue: Queue):
    # Given five events' messages for one customer (SMS only)
    register(client, tokens["customer"], phone="13800000001")
    relay(*(order_event(EventType.ORDER_PLACED, order_id=f"o-{n}") for n in range(5)))
    queue.deliver_all(notifier(RecordingProvider()), fast_runtime())
    admin = bearer(tokens["merchant_admin"])
    for path, headers in (("/me/notifications", bearer(tokens["customer"])), ("/admin/notifications", admin)):
        # When read two at a time
        seen, cursor = [], None
        while True:
            query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
            body = client.http.get(path + query, headers=headers).json_body
            seen.extend(item for item in body["items"] if item["channel"] == "sms")
            cursor = body["next_cursor"]
            if not cursor:
                break
        # Then every SMS message appears once, newest first
        assert len(seen) == 5 and len({i["id"] for i in seen}) == 5, path
        assert [i["created_at"] for i in seen] == sorted((i["created_at"] for i in seen), reverse=True), path
