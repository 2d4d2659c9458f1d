"""One DynamoDB transaction whose parts are labelled, and the translation of its failures.

PynamoDB's own `TransactWrite` regroups operations by kind, so its cancellation reasons do not line
up with the order the caller wrote them in. This keeps the caller's order, so a failed condition
can be named ("line 2: stock", "idempotency") and turned into the right domain error.

Retries: throttling and timeouts are retried inside botocore ("standard" mode, bounded, jittered).
A `TransactionConflict` cancellation (another transaction touched one of our items at the same
moment) is retried here, a bounded number of times with full-jitter backoff: every part is
conditional, so a retry can never apply twice. A caller with somewhere else to go turns that off
(`retry_conflicts=False`) and gets TemporarilyUnavailable, with the reason of every part, at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from shared.data.connection import connection
from shared.data.table import BaseItem
from shared.kernel.errors import TemporarilyUnavailable

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflict",
        "TransactionConflictException",
        # CancellationReasons codes of a transaction DynamoDB could not give capacity to.
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
    }
)
CONFLICT_CODES = frozenset({"TransactionConflict", "TransactionConflictException", "TransactionInProgressException"})
CONFLICT_RETRIES = 4
BACKOFF_BASE_S = 0.02
BACKOFF_CAP_S = 0.4


class TransactionCancelled(Exception):
    """The transaction did not apply; `failed` holds the labels whose condition failed."""

    def __init__(self, failed: list[str], reasons: dict[str, str], items: dict[str, dict | None]) -> None:
        super().__init__(f"transaction cancelled: {', '.join(failed) or 'no condition failed'}")
        self.failed = failed
        self.reasons = reasons
        self.items = items


@dataclass
class Transaction:
    """Collects labelled Put / Update / Delete / ConditionCheck parts in the caller's order."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    # False: a conflict raises TemporarilyUnavailable at once (its `reasons` name the part), for
    # callers with somewhere else to go (a flash purchase moves off a contended shard).
    retry_conflicts: bool = True

    def put(self, item: BaseItem, label: str, condition: Condition | None = None) -> None:
        self._add("Put", put_part(item, condition), label)

    def add_put(self, part: dict[str, Any], label: str) -> None:
        """A Put part built before by `put_part` (or a copy of one with another key); the part
        itself is not changed."""
        self._add("Put", dict(part), label)

    def update(
        self,
        item_cls: type[BaseItem],
        key: tuple[str, str],
        actions: list[Action],
        label: str,
        condition: Condition | None = None,
    ) -> None:
        self._add("Update", update_part(item_cls, key, actions, condition), label)

    def add_update(self, part: dict[str, Any], label: str) -> None:
        """An Update part built before by `update_part` (the same part again, e.g. a shard's
        decrement by the same quantity on every purchase); the part itself is not changed."""
        self._add("Update", dict(part), label)

    def delete(
        self, item_cls: type[BaseItem], key: tuple[str, str], label: str, condition: Condition | None = None
    ) -> None:
        kwargs = _class_kwargs(item_cls, key, condition)
        self._add("Delete", kwargs, label)

    def check(self, item_cls: type[BaseItem], key: tuple[str, str], condition: Condition, label: str) -> None:
        kwargs = _class_kwargs(item_cls, key, condition)
        self._add("ConditionCheck", kwargs, label)

    def _add(self, kind: str, kwargs: dict[str, Any], label: str) -> None:
        kwargs.pop("ReturnValues", None)
        if kind != "Update" and kind != "Put":
            kwargs.pop("ReturnValuesOnConditionCheckFailure", None)
        self.parts.append({kind: kwargs})
        self.labels.append(label)

    def __len__(self) -> int:
        return len(self.parts)

    def commit(self) -> None:
        """Apply every part or none. Raises TransactionCancelled naming the failed conditions,
        or TemporarilyUnavailable when DynamoDB stays busy past the retry budget."""
        if len(self.parts) > 100:
            raise ValueError("a DynamoDB transaction holds at most 100 items")
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                connection().dispatch("TransactWriteItems", {"TransactItems": self.parts})
                return
            except ClientError as exc:
                cancelled = self._cancellation(exc)
                if cancelled is None:
                    raise _unavailable(exc) from exc
                if cancelled.failed:
                    raise cancelled from exc
                if attempt == CONFLICT_RETRIES or not self.retry_conflicts:
                    # Nothing applied; `reasons` name the part that met a conflict or throttling.
                    raise TemporarilyUnavailable(
                        "too many concurrent writers; retry", reasons=cancelled.reasons
                    ) from exc
                backoff(attempt)
            except BotoCoreError as exc:
                raise TemporarilyUnavailable("the database did not answer in time; retry") from exc

    def _cancellation(self, exc: ClientError) -> TransactionCancelled | None:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            return None
        reasons: dict[str, str] = {}
        items: dict[str, dict | None] = {}
        failed: list[str] = []
        raw = getattr(exc, "cancellation_reasons", None)
        for label, reason in zip(self.labels, raw or [], strict=False):
            code = reason.code if reason is not None else "None"
            reasons[label] = code
            if code == "ConditionalCheckFailed":
                failed.append(label)
                items[label] = reason.raw_item if reason is not None else None
            elif code not in ("None", *TRANSIENT_CODES):
                # ValidationError and friends: a bug in how we built the transaction, not a conflict.
                raise RuntimeError(f"transaction part {label} rejected: {code}: {reason.message if reason else ''}")
        return TransactionCancelled(failed, reasons, items)


def put_part(item: BaseItem, condition: Condition | None = None) -> dict[str, Any]:
    """A Put part's arguments as PynamoDB builds them (the item, its condition's names and values)."""
    part = item.get_save_kwargs_from_instance(condition=condition, return_values_on_condition_failure="ALL_OLD")
    part.pop("ReturnValues", None)
    return part


def update_part(
    item_cls: type[BaseItem], key: tuple[str, str], actions: Sequence[Action], condition: Condition | None = None
) -> dict[str, Any]:
    """An Update part's arguments as PynamoDB builds them (its expressions, names and values)."""
    return _class_kwargs(item_cls, key, condition, actions=actions, return_values_on_condition_failure="ALL_OLD")


def _class_kwargs(item_cls: type[BaseItem], key: tuple[str, str], condition: Condition | None, **extra: Any) -> dict:
    hash_key, range_key = item_cls._serialize_keys(key[0], key[1])
    return item_cls._get_connection().get_operation_kwargs(
        hash_key=hash_key, range_key=range_key, condition=condition, **extra
    )


def backoff(attempt: int) -> None:
    """Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff and Jitter")."""
    time.sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))


def _unavailable(exc: ClientError) -> Exception:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in TRANSIENT_CODES:
        return TemporarilyUnavailable("the database is busy; retry", aws_code=code)
    return exc


def condition_failed(exc: PynamoDBException) -> bool:
    """Whether a single-item write was refused by its condition. Safe on a timeout, whose cause has
    `response = None`, on which PynamoDB's own `cause_response_code` raises AttributeError."""
    if isinstance(exc.cause, BotoCoreError):
        return False
    return exc.cause_response_code == "ConditionalCheckFailedException"


@contextmanager
def translated() -> Iterator[None]:
    """Turn transient SDK failures of single-item calls into TemporarilyUnavailable (503)."""
    try:
        yield
    except PynamoDBException as exc:
        if isinstance(exc.cause, BotoCoreError):
            # Asked first: a timeout's cause has `response = None`, on which PynamoDB's
            # cause_response_code raises AttributeError (a 500 under load, as the hostile tier saw).
            raise TemporarilyUnavailable("the database did not answer in time; retry") from exc
        code = exc.cause_response_code or ""
        if code in TRANSIENT_CODES:
            raise TemporarilyUnavailable("the database is busy; retry", aws_code=code) from exc
        raise
    except BotoCoreError as exc:
        raise TemporarilyUnavailable("the database did not answer in time; retry") from exc
    except ClientError as exc:
        raise _unavailable(exc) from exc
