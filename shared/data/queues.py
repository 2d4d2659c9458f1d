"""SQS: the relay's fan-out and the consumers' retry and dead-letter moves. The only module that
talks to SQS.

One botocore client per process, created on first use: the API Lambda never pays for it, and
boto3 is not needed at all (botocore is already loaded by PynamoDB). Retries are botocore's
"standard" mode (bounded, jittered), as for DynamoDB. Where SQS is (region, endpoint) is given
once by the composition root (`configure`, called by `bootstrap.ready()`), as for the table.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.messaging.ports import QueueMessage

BATCH_LIMIT = 10  # SendMessageBatch / ChangeMessageVisibilityBatch take at most ten entries
_lock = threading.Lock()
_client: Any = None


@dataclass(frozen=True)
class Endpoint:
    region: str
    url: str | None  # only the local emulator has one; in AWS botocore finds SQS itself


_endpoint: Endpoint | None = None


def configure(region: str, url: str | None) -> None:
    """Where SQS is; the next client is created there (bootstrap.ready() calls this)."""
    global _endpoint
    wanted = Endpoint(region, url)
    if wanted == _endpoint:
        return
    reset()
    with _lock:
        _endpoint = wanted


def client() -> Any:
    """The process's SQS client (also what the fault harness attaches to)."""
    global _client
    with _lock:
        if _client is None:
            import botocore.config
            import botocore.session

            if _endpoint is None:
                raise RuntimeError("SQS is not configured: bootstrap.ready() calls shared.data.queues.configure")
            config = botocore.config.Config(
                retries={"mode": "standard", "total_max_attempts": 4},
                connect_timeout=2,
                read_timeout=5,
                max_pool_connections=20,
            )
            _client = botocore.session.get_session().create_client(
                "sqs", region_name=_endpoint.region, endpoint_url=_endpoint.url, config=config
            )
        return _client


def reset() -> None:
    """Forget the client, where SQS is and the looked-up queues (tests and the local runner change
    endpoints)."""
    global _client, _endpoint
    with _lock:
        _client = None
        _endpoint = None
    url_of_arn.cache_clear()
    redrive_of.cache_clear()


def send_batch(queue_url: str, messages: Sequence[QueueMessage]) -> list[int]:
    """Send `messages` in batches of ten; returns the indexes of those SQS did not take."""
    from botocore.exceptions import BotoCoreError, ClientError

    failed: list[int] = []
    for start in range(0, len(messages), BATCH_LIMIT):
        chunk = messages[start : start + BATCH_LIMIT]
        entries = [
            {"Id": str(start + i), "MessageBody": m.body, "MessageAttributes": _attributes(m.attributes)}
            for i, m in enumerate(chunk)
        ]
        try:
            response = client().send_message_batch(QueueUrl=queue_url, Entries=entries)
        except (BotoCoreError, ClientError):
            failed.extend(range(start, start + len(chunk)))
            continue
        failed.extend(int(entry["Id"]) for entry in response.get("Failed", []))
    return sorted(failed)


def retry_later(source_arn: str, delays: Sequence[tuple[str, int]]) -> None:
    """Make failed messages visible again after their backoff (receipt handle, seconds) instead of
    the queue's whole visibility timeout. Best effort: if this fails the timeout still applies."""
    from botocore.exceptions import BotoCoreError, ClientError

    url = url_of_arn(source_arn)
    for start in range(0, len(delays), BATCH_LIMIT):
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": delay}
            for i, (handle, delay) in enumerate(delays[start : start + BATCH_LIMIT])
        ]
        with contextlib.suppress(BotoCoreError, ClientError):
            client().change_message_visibility_batch(QueueUrl=url, Entries=entries)


@dataclass(frozen=True)
class Redrive:
    dead_letter_url: str
    max_receives: int


def dead_letter(source_arn: str, body: str, attributes: dict[str, str]) -> None:
    """Put a message on the source queue's dead-letter queue with attributes saying why."""
    redrive = redrive_of(source_arn)
    if redrive is None:
        raise LookupError(f"{source_arn} has no dead-letter queue")
    client().send_message(QueueUrl=redrive.dead_letter_url, MessageBody=body, MessageAttributes=_attributes(attributes))


@lru_cache(maxsize=32)
def redrive_of(source_arn: str) -> Redrive | None:
    """The queue's RedrivePolicy (read once per process): where and after how many receives."""
    attributes = client().get_queue_attributes(QueueUrl=url_of_arn(source_arn), AttributeNames=["RedrivePolicy"])
    raw = attributes.get("Attributes", {}).get("RedrivePolicy")
    if not raw:
        return None
    policy = json.loads(raw)
    return Redrive(url_of_arn(policy["deadLetterTargetArn"]), int(policy["maxReceiveCount"]))


@lru_cache(maxsize=64)
def url_of_arn(arn: str) -> str:
    _, _, _, _, account, name = arn.split(":", 5)
    return str(client().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def _attributes(values: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items() if value}


class ConsumerQueue:
    """What a consumer needs of its own queue (shared.messaging.ports.RetryQueue)."""

    def max_receives(self, source_arn: str) -> int | None:
        redrive = redrive_of(source_arn)
        return redrive.max_receives if redrive else None

    def retry_later(self, source_arn: str, delays: Sequence[tuple[str, int]]) -> None:
        retry_later(source_arn, delays)

    def dead_letter(self, source_arn: str, body: str, attributes: dict[str, str]) -> None:
        dead_letter(source_arn, body, attributes)
