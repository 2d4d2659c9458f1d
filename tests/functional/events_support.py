"""Helpers for the event tests on moto: emit through the outbox, read and drive queues as Lambda
does, and build the consumer runtime with test-speed backoff."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from infra.local.runner import as_lambda_sqs_record, as_lambda_stream_record
from shared.data import outbox
from shared.data.queues import ConsumerQueue
from shared.data.stores.consumer_marks import DynamoMarks
from shared.data.stream import decode
from shared.data.transactions import Transaction
from shared.kernel.clock import now_ms
from shared.kernel.events import DomainEvent, EventType
from shared.messaging.consumers import RetryPolicy, Runtime, consume
from shared.messaging.ports import Consumer


def emit(event: DomainEvent) -> DomainEvent:
    """Write an event through the outbox, as a state change would (its own transaction here)."""
    tx = Transaction()
    outbox.emit(tx, event)
    tx.commit()
    return event


def stream_records(streams: Any = None, arn: str | None = None) -> list[dict[str, Any]]:
    """Every record of the table's stream so far, shaped as Lambda delivers them (the test table's
    stream, or the stream `arn` read through the `dynamodbstreams` client `streams`)."""
    arn = arn or os.environ["TABLE_STREAM_ARN"]
    if streams is None:
        streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=os.environ["DYNAMODB_ENDPOINT"])
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not response["Records"]:
                break
            records.extend(as_lambda_stream_record(r, arn) for r in response["Records"])
            iterator = response.get("NextShardIterator")
    return records


def announced() -> list[dict[str, Any]]:
    """Every event the table's stream announces so far, as the relay forwards it (outbox Event
    items and the events derived from state items' changes), as the message consumers receive."""
    return [json.loads(event.body) for record in stream_records() for event in decode(record).forwarded]


def order_event(event_type: EventType, order_id: str = "o-1", customer_id: str = "c-1", **extra: Any) -> DomainEvent:
    payload = {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": "PAID",
        "total_fen": 16800,
        "fulfilment": {"type": "pickup", "store_id": "S001"},
        "store_id": "S001",
        "lines": [{"sku": "TEA-001", "qty": 1, "payable_fen": 16800}],
        **extra,
    }
    return DomainEvent(event_type, order_id, payload)


def fast_runtime(clock: Callable[[], int] = now_ms, lease_s: float = 60.0) -> Runtime:
    """The real DynamoDB marks and SQS queue, with no backoff between retries."""
    return Runtime(DynamoMarks(), ConsumerQueue(), RetryPolicy(base_s=0, lease_s=lease_s), clock)


@dataclass
class Queue:
    """One of the stack's queues, read and driven like Lambda's SQS poller."""

    url: str
    sqs: Any

    @classmethod
    def of(cls, table: dict, logical_id: str) -> Queue:
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=os.environ["SQS_ENDPOINT"])
        return cls(table["queues"][logical_id], sqs)

    @property
    def arn(self) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def send(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)

    def receive(self, hide_s: int = 30) -> list[dict[str, Any]]:
        """Every visible message (hidden for `hide_s` afterwards), with attributes."""
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hide_s,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return found
            found.extend(batch)

    def peek(self) -> list[dict[str, Any]]:
        """Every visible message, left visible for the next delivery."""
        found = self.receive()
        for message in found:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return found

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.receive()]

    def deliver(self, consumer: Consumer, runtime: Runtime, limit: int = 10) -> dict[str, Any] | None:
        """One Lambda invocation: receive a batch, consume it, delete what did not fail."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=limit, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return None
        arn = self.arn
        response = consume({"Records": [as_lambda_sqs_record(m, arn) for m in messages]}, consumer, runtime)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return response

    def deliver_all(self, consumer: Consumer, runtime: Runtime, max_invocations: int = 200) -> list[dict[str, Any]]:
        """Invoke until the queue is empty (failed messages come straight back: no backoff)."""
        responses: list[dict[str, Any]] = []
        for _ in range(max_invocations):
            response = self.deliver(consumer, runtime)
            if response is None:
                return responses
            responses.append(response)
        raise AssertionError(f"queue not empty after {max_invocations} invocations")

    def in_flight(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[name]) for name in names)

    def deliver_until_settled(self, consumer: Consumer, runtime: Runtime, timeout_s: float = 300.0) -> int:
        """Invoke until no message is visible or in flight (retries wait for their backoff)."""
        deadline = time.monotonic() + timeout_s
        invocations = 0
        while time.monotonic() < deadline:
            if self.deliver(consumer, runtime) is not None:
                invocations += 1
            elif self.in_flight() == 0:
                return invocations
            else:
                time.sleep(0.2)
        raise AssertionError(f"queue not settled after {timeout_s}s")
