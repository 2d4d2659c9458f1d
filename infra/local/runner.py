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
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError

from infra.local.resources import load_template, queue_name

POLL_S = 0.2
RETRY_S = 0.5  # pause before retrying a stream batch that reported a failure (Lambda backs off too)


def logical_id(function_name: str) -> str:
    """Chalice's CloudFormation logical id for a function name: `stream_relay` -> `StreamRelay`."""
    return "".join(part[:1].upper() + part[1:] for part in function_name.replace("-", "_").split("_"))


@dataclass
class Mapping:
    function: Any
    source: str  # "stream" or a queue logical id
    batch_size: int
    starting_position: str = "TRIM_HORIZON"


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
        self._iterators: dict[int, dict[str, str]] = {}  # per stream mapping: shard id -> iterator
        self._queues: dict[str, tuple[str, str]] = {}

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
            found.append(
                Mapping(
                    functions[target],
                    source,
                    int(props.get("BatchSize", 10)),
                    str(props.get("StartingPosition", "TRIM_HORIZON")),
                )
            )
        return found

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Poll every source on its own thread until `stop()` (what `make dev` does)."""
        for mapping in self.mappings:
            self._spawn(self._loop, mapping)
        schedules = self._schedules()
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
            except EndpointConnectionError:
                # The emulator is gone (stopped, or crashed): nothing left to poll. One line, not a
                # traceback per poller per second until someone notices.
                if not self._stop.is_set():
                    self._stop.set()
                    print("event runner: the emulator does not answer; the runner stops", file=sys.stderr, flush=True)
                return
            except Exception:  # a crashed poller must not stop the others; log and restart it
                if self._stop.is_set():
                    return  # stopping: whatever failed was cut short by the stop
                traceback.print_exc()
                self._stop.wait(1.0)

    def _report_crash(self) -> None:
        """A handler's traceback, unless the runner is stopping (the emulator may be gone already)."""
        if not self._stop.is_set():
            traceback.print_exc()

    def _loop(self, mapping: Mapping) -> None:
        while not self._stop.is_set():
            if not self.poll_once(mapping):
                self._stop.wait(POLL_S)

    def drain(self, timeout_s: float = 20.0, quiet_s: float = 0.5, sources: Iterable[str] | None = None) -> int:
        """Without threads (tests): poll every source (or only `sources`: "stream", queue logical
        ids) until nothing happened for `quiet_s` (failed messages come back after their backoff,
        so a quiet spell must outlast it). Returns the number of invocations; TimeoutError if
        still busy after `timeout_s`."""
        chosen = set(sources) if sources is not None else None
        mappings = [m for m in self.mappings if chosen is None or m.source in chosen]
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        invocations = 0
        while time.monotonic() - quiet_since < quiet_s:
            if time.monotonic() > deadline:
                raise TimeoutError(f"events still flowing after {timeout_s}s")
            worked = [m for m in mappings if self.poll_once(m)]
            invocations += len(worked)
            if worked:
                quiet_since = time.monotonic()
            else:
                time.sleep(0.05)
        return invocations

    def poll_once(self, mapping: Mapping) -> bool:
        """One poll of one source, invoking its function if there was anything; True if it did."""
        if mapping.source == "stream":
            return self._poll_stream_once(mapping)
        return self._poll_queue_once(mapping)

    # -- sources ---------------------------------------------------------------------------------
    def _poll_stream_once(self, mapping: Mapping) -> bool:
        arn = os.environ["TABLE_STREAM_ARN"]
        iterators = self._iterators.setdefault(id(mapping), {})
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in iterators:
                iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType=mapping.starting_position
                )["ShardIterator"]
        worked = False
        for shard_id, iterator in list(iterators.items()):
            response = self.streams.get_records(ShardIterator=iterator, Limit=mapping.batch_size)
            records = [as_lambda_stream_record(r, arn) for r in response.get("Records", [])]
            if not records:
                iterators[shard_id] = response.get("NextShardIterator") or iterator
                continue
            worked = True
            retry_from = self._invoke_stream(mapping, records)
            if retry_from is None:
                iterators[shard_id] = response.get("NextShardIterator") or iterator
                continue
            # As Lambda does with ReportBatchItemFailures: checkpoint before the first failure and
            # retry from it after a pause (Lambda's bisect and retry limit are AWS-only).
            iterators[shard_id] = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=retry_from
            )["ShardIterator"]
            self._stop.wait(RETRY_S)
        return worked

    def _invoke_stream(self, mapping: Mapping, records: list[dict[str, Any]]) -> str | None:
        """Run the function on a batch; the sequence number to retry from, or None when done."""
        try:
            result = mapping.function({"Records": records}, FakeContext()) or {}
        except Exception:
            self._report_crash()
            return str(records[0]["dynamodb"]["SequenceNumber"])  # a crash retries the whole batch
        failures = result.get("batchItemFailures") or []
        if not failures:
            return None
        return min((str(f["itemIdentifier"]) for f in failures), key=int)

    def _queue(self, logical_id: str) -> tuple[str, str]:
        """(url, arn) of the queue the stack created for this logical id: CONSUMER_QUEUES (set by
        the local stack and the test fixture) names it; otherwise the stage's naming rule."""
        if logical_id not in self._queues:
            pairs = (item.split("=", 1) for item in os.environ.get("CONSUMER_QUEUES", "").split(",") if "=" in item)
            known = {name.strip(): url.strip() for name, url in pairs}
            url = (
                known.get(logical_id)
                or self.sqs.get_queue_url(QueueName=queue_name(logical_id, self.stage))["QueueUrl"]
            )
            attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
            self._queues[logical_id] = (url, attributes["QueueArn"])
        return self._queues[logical_id]

    def _poll_queue_once(self, mapping: Mapping) -> bool:
        url, arn = self._queue(mapping.source)
        messages = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(mapping.batch_size, 10),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return False
        event = {"Records": [as_lambda_sqs_record(m, arn) for m in messages]}
        try:
            result = mapping.function(event, FakeContext()) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures") or []}
        except Exception:
            self._report_crash()
            failed = {m["MessageId"] for m in messages}  # a crash fails the whole batch, as in Lambda
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        return True

    def _schedules(self) -> list[Any]:
        return [s for s in self.app.event_sources if type(s).__name__ == "ScheduledEventConfig"]

    def _run_schedules(self, schedules: list[Any]) -> None:
        handlers = [(s.name, self.app.handler_map[s.name]) for s in schedules]
        while not self._stop.wait(self.schedule_every_s):
            for name, handler in handlers:
                try:
                    handler(_scheduled_event(name), FakeContext())
                except Exception:
                    self._report_crash()


def _scheduled_event(name: str) -> dict[str, Any]:
    """An EventBridge scheduled event, with every field Chalice's CloudWatchEvent reads."""
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return {
        "version": "0",
        "id": f"local-{time.time_ns()}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "region": region,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "resources": [f"arn:aws:events:{region}:123456789012:rule/{name}"],
        "detail": {},
    }


def as_lambda_stream_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A record as Lambda delivers it: boto3 parses ApproximateCreationDateTime into a datetime,
    Lambda sends epoch seconds; and Lambda adds the stream ARN."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": data, "eventSourceARN": arn}


def as_lambda_sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """A message as Lambda delivers it: SQS's MessageAttributes use StringValue/DataType, Lambda's
    stringValue/dataType."""
    attributes = {
        name: {_lower_first(key): value for key, value in attribute.items()}
        for name, attribute in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": arn.split(":")[3],
    }


def _lower_first(key: str) -> str:
    return key[:1].lower() + key[1:]
