"""The relay's decisions, on real Lambda stream records and with fake queues and outbox."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from shared.data.stream import decode
from shared.kernel.errors import TemporarilyUnavailable
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.ports import QueueMessage
from shared.messaging.relay import Relay, low_stock_event
from shared.messaging.routing import SUBSCRIPTIONS, queues_for
from tests.events import load

QUEUES = {"NotificationsQueue": "https://sqs/notifications", "AuditQueue": "https://sqs/audit"}
TWO_CONSUMERS = {
    "NotificationsQueue": frozenset({EventType.ORDER_PAID, EventType.LOW_STOCK}),
    "AuditQueue": frozenset({EventType.ORDER_PAID}),
}


class FakeQueues:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.sent: dict[str, list[QueueMessage]] = {}
        self.refuse = refuse or set()  # event ids SQS will not take

    def send(self, url: str, messages: Sequence[QueueMessage]) -> list[int]:
        refused = [i for i, m in enumerate(messages) if m.attributes["event_id"] in self.refuse]
        self.sent.setdefault(url, []).extend(m for i, m in enumerate(messages) if i not in refused)
        return refused


class FakeOutbox:
    def __init__(self, unavailable: bool = False) -> None:
        self.events: dict[str, DomainEvent] = {}
        self.unavailable = unavailable

    def emit_once(self, event: DomainEvent) -> bool:
        if self.unavailable:
            raise TemporarilyUnavailable("throttled")
        if event.event_id in self.events:
            return False
        self.events[event.event_id] = event
        return True


def stock_record(before: int, after: int, threshold: int | None = 5, sequence: str = "2") -> dict:
    record = load("dynamodb_stream_stock_modify")["Records"][0]
    for image, available in (("OldImage", before), ("NewImage", after)):
        record["dynamodb"][image]["available"] = {"N": str(available)}
        if threshold is None:
            record["dynamodb"][image].pop("low_stock_threshold")
        else:
            record["dynamodb"][image]["low_stock_threshold"] = {"N": str(threshold)}
    record["dynamodb"]["SequenceNumber"] = sequence
    return record


def event_record(event_type: str, event_id: str, sequence: str) -> dict:
    record = load("dynamodb_stream_event_insert")["Records"][0]
    image = record["dynamodb"]["NewImage"]
    body = json.loads(image["body"]["S"])
    body.update(type=event_type, event_id=event_id)
    image.update(event_type={"S": event_type}, event_id={"S": event_id}, body={"S": json.dumps(body)})
    record["dynamodb"]["SequenceNumber"] = sequence
    return record


def relay_with(queues: FakeQueues, outbox: FakeOutbox, subscriptions=TWO_CONSUMERS) -> Relay:
    return Relay(QUEUES, decode, queues.send, outbox.emit_once, subscriptions)


@pytest.mark.parametrize(
    ("before", "after", "threshold", "crossed"),
    [
        (6, 4, 5, True),  # from above to below
        (5, 4, 5, True),  # from exactly at the threshold: at it is not yet low
        (4, 2, 5, False),  # already below: a further order is not a new crossing
        (6, 5, 5, False),  # down to the threshold, not below it
        (4, 6, 5, False),  # restocked: going up is no alert
        (6, 0, None, False),  # no threshold set for this SKU
    ],
)
def test_low_stock_is_derived_only_when_available_crosses_below_the_threshold(before, after, threshold, crossed):
    # Given a stock MODIFY record
    change = decode(stock_record(before, after, threshold))
    # When the relay looks at it
    event = low_stock_event(change)
    # Then there is an event exactly when `available` went from >= threshold to < threshold
    assert (event is not None) is crossed
    if event is not None:
        assert event.type is EventType.LOW_STOCK
        assert event.payload == {
            "sku": "TEA-001",
            "location": "S001",
            "available": after,
            "on_hand": 12,
            "threshold": 5,
        }
        assert event.aggregate_id == "TEA-001@S001"


def test_the_same_stream_record_always_derives_the_same_event():
    # Given one record read twice (a redelivery) and another record with the same numbers
    first, again = decode(stock_record(6, 4)), decode(stock_record(6, 4))
    other = decode(stock_record(6, 4, sequence="3"))
    # Then the redelivery names the same event (so the outbox refuses it) and the other a new one
    assert low_stock_event(first) == low_stock_event(again)
    assert low_stock_event(first).event_id != low_stock_event(other).event_id  # type: ignore[union-attr]
    assert low_stock_event(first).occurred_at == "2026-11-23T00:01:00.000Z"  # type: ignore[union-attr]


def test_an_event_goes_to_every_queue_subscribed_to_its_type_and_nowhere_else():
    # Given an OrderPaid (two subscribers) and an OrderCompleted (none)
    queues, outbox = FakeQueues(), FakeOutbox()
    records = [event_record("OrderPaid", "e-1", "10"), event_record("OrderCompleted", "e-2", "11")]
    # When relayed
    response = relay_with(queues, outbox).relay(records)
    # Then the OrderPaid body reached both queues unchanged, with its type and id as attributes
    assert response == {"batchItemFailures": []}
    assert set(queues.sent) == {QUEUES["NotificationsQueue"], QUEUES["AuditQueue"]}
    for messages in queues.sent.values():
        assert [m.attributes for m in messages] == [{"event_type": "OrderPaid", "event_id": "e-1"}]
        assert messages[0].body == records[0]["dynamodb"]["NewImage"]["body"]["S"]


def test_a_refused_message_reports_its_record_so_lambda_retries_from_there():
    # Given three events of which SQS refuses the second
    queues, outbox = FakeQueues(refuse={"e-2"}), FakeOutbox()
    records = [event_record("OrderPaid", f"e-{n}", str(20 + n)) for n in (1, 2, 3)]
    # When relayed
    response = relay_with(queues, outbox).relay(records)
    # Then the response names the second record's sequence number: Lambda retries from it
    assert response == {"batchItemFailures": [{"itemIdentifier": "22"}]}


def test_low_stock_that_cannot_be_written_fails_its_record():
    # Given the table is throttling past the retry budget
    queues, outbox = FakeQueues(), FakeOutbox(unavailable=True)
    records = [event_record("OrderPaid", "e-1", "30"), stock_record(6, 4, sequence="31")]
    # When relayed
    response = relay_with(queues, outbox).relay(records)
    # Then the stock record is retried, the event before it is done
    assert response == {"batchItemFailures": [{"itemIdentifier": "31"}]}


def test_other_stream_changes_are_ignored():
    # Given an Event item removed by TTL and a stock INSERT
    removed = event_record("OrderPaid", "e-1", "40")
    removed["eventName"] = "REMOVE"
    removed["dynamodb"]["OldImage"] = removed["dynamodb"].pop("NewImage")
    inserted = stock_record(6, 0, sequence="41")
    inserted["eventName"] = "INSERT"
    queues, outbox = FakeQueues(), FakeOutbox()
    # When relayed
    response = relay_with(queues, outbox).relay([removed, inserted])
    # Then nothing is sent or emitted
    assert response == {"batchItemFailures": []}
    assert queues.sent == {} and outbox.events == {}


def test_a_relay_without_a_subscribed_queue_refuses_to_start():
    # Given a deployment whose CONSUMER_QUEUES lacks the audit queue
    with pytest.raises(LookupError, match="AuditQueue"):
        Relay({"NotificationsQueue": "u"}, decode, FakeQueues().send, FakeOutbox().emit_once, TWO_CONSUMERS)


def test_the_routing_table_sends_customer_facing_events_to_notifications():
    # (The commission ledger hears payments, completions and refunds too, the report books payments and
    # refunds: docs/commission.md.)
    assert queues_for("CommissionRecorded") == ["ReportingQueue"]
    assert queues_for("OrderPaid") == ["CommissionQueue", "MembershipQueue", "NotificationsQueue", "ReportingQueue"]
    assert queues_for("LowStock") == ["NotificationsQueue"]
    assert queues_for("OrderCompleted") == ["CommissionQueue", "MembershipQueue"]
    assert queues_for("NoSuchEvent") == []
    # and the payments consumer refunds and closes through the provider (docs/payments.md, "Refunds")
    assert queues_for("PaymentNeedsRefund") == ["NotificationsQueue", "PaymentsQueue"]
    assert queues_for("OrderExpired") == ["MembershipQueue", "NotificationsQueue", "PaymentsQueue"]
    assert set(SUBSCRIPTIONS) == {
        "NotificationsQueue",
        "CommissionQueue",
        "SettlementQueue",
        "ReportingQueue",
        "PaymentsQueue",
        "MembershipQueue",
    }
