"""The local event runner: what `chalice local` lacks (DESIGN.md, "Local runtime").

Driven by the same definitions that deploy: every `AWS::Lambda::EventSourceMapping` in
`infra/template.yaml` names a source (the table's stream or a queue) and a function of `app.py`
(`{"Ref": "<ChaliceLogicalId>"}`); every `@schedule` of `app.py` runs every few seconds instead of
on its AWS rate. Handlers are called with Lambda-shaped events, so they run exactly as in AWS:
queue consumers' `batchItemFailures` decide which messages are deleted; the rest come back after
their visibility timeout and, past `maxReceiveCount`, land in the dead-letter queue.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import boto3

from infra.local.resources import load_template, queue_name

POLL_S = 0.2


def logical_id(function_name: str) -> str:
    """Chalice's CloudFormation logical id for a function name: `stream_relay` -> `StreamRelay`."""
    return "".join(part[:1].upper() + part[1:] for part in function_name.replace("-", "_").split("_"))


@dataclass
class Mapping:
    function: Any
    source: str  # "stream" or a queue logical id
    batch_size: int


class FakeContext:
    function_name = "local"
    aws_request_id = "local"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class EventRunner:
    def __init__(self, schedule_every_s: float = 3.0, quiet: bool = False) -> None:
        import app as app_module

        self.app = app_module.app
        self.schedule_every_s = schedule_every_s
        self.quiet = quiet
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        region = os.environ["AWS_DEFAULT_REGION"]
        endpoint = os.environ["DYNAMODB_ENDPOINT"]
        self.sqs = boto3.client("sqs", region_name=region, endpoint_url=os.environ.get("SQS_ENDPOINT", endpoint))
        self.streams = boto3.client("dynamodbstreams", region_name=region, endpoint_url=endpoint)
        self.stage = os.environ.get("STAGE", "local")
        self.mappings = self._mappings()

    def _mappings(self) -> list[Mapping]:
        functions = {logical_id(f.name): f for f in self.app.pure_lambda_functions}
        found = []
        for res in load_template()["Resources"].values():
            if res["Type"] != "AWS::Lambda::EventSourceMapping":
                continue
            props = res["Properties"]
            target = props["FunctionName"]["Ref"]
            if target not in functions:
                raise LookupError(f"event source mapping targets {target}, which app.py does not define")
            source_ref = props["EventSourceArn"]["Fn::GetAtt"]
            source = "stream" if source_ref[1] == "StreamArn" else source_ref[0]
            found.append(Mapping(functions[target], source, int(props.get("BatchSize", 10))))
        return found

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        for mapping in self.mappings:
            target = self._poll_stream if mapping.source == "stream" else self._poll_queue
            self._spawn(target, mapping)
        schedules = [s for s in self.app.event_sources if type(s).__name__ == "ScheduledEventConfig"]
        if schedules:
            self._spawn(self._run_schedules, schedules)

    def _spawn(self, target: Any, arg: Any) -> None:
        thread = threading.Thread(target=self._guard, args=(target, arg), daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _guard(self, target: Any, arg: Any) -> None:
        while not self._stop.is_set():
            try:
                target(arg)
                return
            except Exception:  # a crashed poller must not stop the others; log and restart it
                traceback.print_exc()
                self._stop.wait(1.0)

    # -- sources ---------------------------------------------------------------------------------
    def _poll_stream(self, mapping: Mapping) -> None:
        arn = os.environ["TABLE_STREAM_ARN"]
        iterators: dict[str, str] = {}
        while not self._stop.is_set():
            shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
            for shard in shards:
                if shard["ShardId"] not in iterators:
                    iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                    )["ShardIterator"]
            idle = True
            for shard_id, iterator in list(iterators.items()):
                response = self.streams.get_records(ShardIterator=iterator, Limit=mapping.batch_size)
                records = response.get("Records", [])
                if records:
                    idle = False
                    for record in records:
                        record["eventSourceARN"] = arn
                    result = mapping.function({"Records": records}, FakeContext()) or {}
                    failures = result.get("batchItemFailures") or []
                    if failures:
                        # As Lambda does with ReportBatchItemFailures: retry from the first failure.
                        first = failures[0]["itemIdentifier"]
                        iterators[shard_id] = self.streams.get_shard_iterator(
                            StreamArn=arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                            SequenceNumber=first,
                        )["ShardIterator"]
                        continue
                iterators[shard_id] = response.get("NextShardIterator") or iterator
            if idle:
                self._stop.wait(POLL_S)

    def _poll_queue(self, mapping: Mapping) -> None:
        url = self.sqs.get_queue_url(QueueName=queue_name(mapping.source, self.stage))["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self._stop.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=min(mapping.batch_size, 10), WaitTimeSeconds=0,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                self._stop.wait(POLL_S)
                continue
            event = {"Records": [_sqs_record(m, arn) for m in messages]}
            try:
                result = mapping.function(event, FakeContext()) or {}
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures") or []}
            except Exception:
                traceback.print_exc()
                failed = {m["MessageId"] for m in messages}  # a crash fails the whole batch, as in Lambda
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                chunk = done[start : start + 10]
                self.sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
                )

    def _run_schedules(self, schedules: list[Any]) -> None:
        handlers = [(s.name, self.app.handler_map[s.name]) for s in schedules]
        while not self._stop.wait(self.schedule_every_s):
            for name, handler in handlers:
                event = {
                    "id": f"local-{time.time_ns()}",
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "resources": [f"local:{name}"],
                    "detail": {},
                }
                try:
                    handler(event, FakeContext())
                except Exception:
                    traceback.print_exc()


def _sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": arn.split(":")[3],
    }
