"""The fault harness itself: it injects the real error codes at the set rate, only where it is told,
and what it injects is handled as the real thing would be (botocore retries throttling, the
Transaction retries conflicts, a lost response after an applied write surfaces as such)."""

from __future__ import annotations

import os
from collections import Counter

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from infra.local.faults import FaultInjector, Kind
from shared.data import outbox, queues
from shared.data.items import EventItem
from shared.data.transactions import Transaction, TransactionCancelled, translated
from shared.kernel.errors import TemporarilyUnavailable
from shared.kernel.events import DomainEvent, EventType
from tests.functional.events_support import Queue


def raw_dynamodb(table: dict):  # type: ignore[no-untyped-def]
    """A client without retries, so every injected fault is seen by the caller."""
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=os.environ["DYNAMODB_ENDPOINT"],
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def outcome(call) -> str:  # type: ignore[no-untyped-def]
    try:
        call()
        return "ok"
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    except ConnectTimeoutError:
        return "ConnectTimeout"
    except ReadTimeoutError:
        return "ReadTimeout"


def event(n: int = 0) -> DomainEvent:
    return DomainEvent(EventType.ORDER_PAID, f"o-{n}", {"order_id": f"o-{n}"})


def emit_tx(e: DomainEvent) -> Transaction:
    tx = Transaction()
    outbox.emit(tx, e)
    return tx


def test_it_injects_real_error_codes_at_the_set_rate(table: dict):
    # Given a client without retries and a 25% fault rate of the single-item kinds
    client = raw_dynamodb(table)
    faults = FaultInjector(
        rate=0.25, seed=3, kinds=[Kind.THROTTLING, Kind.THROUGHPUT, Kind.TIMEOUT_UNSENT, Kind.TIMEOUT_APPLIED]
    )
    key = {"pk": {"S": "P"}, "sk": {"S": "S"}}
    # When 400 reads are made
    with faults.attached(client):
        outcomes = Counter(outcome(lambda: client.get_item(TableName=table["table"], Key=key)) for _ in range(400))
    # Then about a quarter failed, each failure was injected, with DynamoDB's own codes
    failures = 400 - outcomes["ok"]
    assert failures == faults.total
    assert 0.18 < failures / 400 < 0.32
    assert set(outcomes) == {
        "ok",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "ConnectTimeout",
        "ReadTimeout",
    }
    assert faults.count(Kind.THROTTLING) == outcomes["ThrottlingException"]
    assert faults.eligible["GetItem"] == 400


def test_the_same_seed_injects_the_same_faults(table: dict):
    client = raw_dynamodb(table)
    key = {"pk": {"S": "P"}, "sk": {"S": "S"}}

    def run(seed: int) -> list[str]:
        with FaultInjector(rate=0.5, seed=seed, kinds=[Kind.THROTTLING, Kind.THROUGHPUT]).attached(client):
            return [outcome(lambda: client.get_item(TableName=table["table"], Key=key)) for _ in range(30)]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_botocore_retries_injected_throttling_on_the_shared_client(table: dict):
    # Given the shared DynamoDB client throttled twice, then not
    faults = FaultInjector(rate=1.0, kinds=[Kind.THROTTLING], max_faults=2)
    # When an item is read
    with faults.attached(), translated(), pytest.raises(EventItem.DoesNotExist):
        EventItem.get("EVENT#missing", "EVENT")
    # Then the read went through on botocore's third attempt (standard mode)
    assert faults.total == 2 and faults.seen["GetItem"] == 3


def test_throttling_past_the_retry_budget_is_temporarily_unavailable(table: dict):
    # Given every attempt throttled
    faults = FaultInjector(rate=1.0, kinds=[Kind.THROUGHPUT])
    # When an item is read, the caller gets the 503 error, after botocore's bounded attempts
    with faults.attached(), pytest.raises(TemporarilyUnavailable), translated():
        EventItem.get("EVENT#missing", "EVENT")
    assert faults.seen["GetItem"] == 4  # 1 + max_retry_attempts (shared/data/table.py)


def test_a_transaction_conflict_is_retried_by_the_transaction(table: dict):
    # Given two TransactionConflict cancellations ahead
    faults = FaultInjector(rate=1.0, kinds=[Kind.CONFLICT], operations=["TransactWriteItems"], max_faults=2)
    e = event()
    # When a transaction commits
    with faults.attached():
        emit_tx(e).commit()
    # Then it applied on the third attempt, once
    assert faults.count(Kind.CONFLICT, "TransactWriteItems") == 2
    assert faults.seen["TransactWriteItems"] == 3
    assert EventItem.get(*EventItem.key(e.event_id)).event_id == e.event_id


def test_endless_conflicts_end_in_temporarily_unavailable_naming_the_conflict(table: dict):
    faults = FaultInjector(rate=1.0, kinds=[Kind.CONFLICT])
    e = event()
    with faults.attached(), pytest.raises(TemporarilyUnavailable) as raised:
        emit_tx(e).commit()
    # The cancellation reasons were DynamoDB's shape: TransactionConflict on the transaction's item
    assert raised.value.details["reasons"] == {"event:OrderPaid": "TransactionConflict"}
    with pytest.raises(EventItem.DoesNotExist):
        EventItem.get(*EventItem.key(e.event_id))


def test_a_conflict_on_a_single_item_write_is_transaction_conflict_exception(table: dict):
    client = raw_dynamodb(table)
    item = {"pk": {"S": "P"}, "sk": {"S": "S"}}
    with FaultInjector(rate=1.0, kinds=[Kind.CONFLICT]).attached(client):
        assert outcome(lambda: client.put_item(TableName=table["table"], Item=item)) == "TransactionConflictException"


def test_a_timeout_before_sending_applies_nothing(table: dict):
    # Given a raw client and a connect timeout on the first attempt
    client = raw_dynamodb(table)
    item = {"pk": {"S": "UNSENT"}, "sk": {"S": "S"}}
    with FaultInjector(rate=1.0, kinds=[Kind.TIMEOUT_UNSENT]).attached(client):
        assert outcome(lambda: client.put_item(TableName=table["table"], Item=item)) == "ConnectTimeout"
    # Then nothing was written
    assert "Item" not in client.get_item(TableName=table["table"], Key=item)


def test_a_lost_response_after_an_applied_write_fails_the_retry_on_its_own_success(table: dict):
    # Given the first attempt of a conditional transaction applied but its response lost
    faults = FaultInjector(rate=1.0, kinds=[Kind.TIMEOUT_APPLIED], operations=["TransactWriteItems"], max_faults=1)
    e = event()
    # When it commits, botocore retries; the retry finds the event already there
    with faults.attached(), pytest.raises(TransactionCancelled) as cancelled:
        emit_tx(e).commit()
    # Then the caller is told the condition failed although the write is in: the nasty case,
    # which callers absorb with idempotency (the order placement replays the stored response)
    assert cancelled.value.failed == ["event:OrderPaid"]
    assert EventItem.get(*EventItem.key(e.event_id)).event_id == e.event_id


def test_only_the_chosen_partitions_suffer(table: dict):
    # Given faults on the hot partition only
    client = raw_dynamodb(table)
    faults = FaultInjector(rate=1.0, kinds=[Kind.THROTTLING], partitions={"HOT"})
    with faults.attached(client):
        cold = outcome(lambda: client.put_item(TableName=table["table"], Item={"pk": {"S": "COLD"}, "sk": {"S": "1"}}))
        hot = outcome(lambda: client.put_item(TableName=table["table"], Item={"pk": {"S": "HOT"}, "sk": {"S": "1"}}))
    assert (cold, hot) == ("ok", "ThrottlingException")
    assert faults.seen["PutItem"] == 2 and faults.eligible["PutItem"] == 1


def test_a_transaction_conflict_names_the_hot_item(table: dict):
    # Given a transaction over a cold and a hot item, and conflicts on the hot partition only
    faults = FaultInjector(rate=1.0, kinds=[Kind.CONFLICT], partitions=lambda pk: pk.startswith("EVENT#hot"))
    tx = Transaction()
    outbox.emit(tx, DomainEvent(EventType.ORDER_PAID, "o", {}, event_id="cold-1"))
    outbox.emit(tx, DomainEvent(EventType.ORDER_PLACED, "o", {}, event_id="hot-1"))
    with faults.attached(), pytest.raises(TemporarilyUnavailable) as raised:
        tx.commit()
    # Then the cancellation reason points at the hot item, as DynamoDB's would
    assert raised.value.details["reasons"] == {"event:OrderPaid": "None", "event:OrderPlaced": "TransactionConflict"}


def test_it_attaches_to_an_sqs_client_whose_retries_absorb_throttling(table: dict):
    # Given the process's SQS client throttled once
    queue = Queue.of(table, "NotificationsQueue")
    faults = FaultInjector(rate=1.0, kinds=[Kind.THROTTLING], max_faults=1)
    # When a batch is sent through it
    from shared.messaging.ports import QueueMessage

    with faults.attached(queues.client()):
        refused = queues.send_batch(queue.url, [QueueMessage("{}", {"event_type": "X"})])
    # Then SQS's own throttling code was injected, retried, and the message delivered once
    assert refused == [] and faults.count(Kind.THROTTLING, "SendMessageBatch") == 1
    assert len(queue.receive()) == 1


def test_detaching_stops_the_faults(table: dict):
    faults = FaultInjector(rate=1.0, kinds=[Kind.THROTTLING]).attach()
    faults.detach()
    with pytest.raises(EventItem.DoesNotExist):
        EventItem.get("EVENT#missing", "EVENT")
    assert faults.total == 0
