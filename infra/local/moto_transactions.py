"""moto's TransactWriteItems with a rollback that costs what the transaction touches.

moto 5.2.5 deep-copies every table a transaction names before applying it, so that it can roll
back. One transaction therefore costs time in proportion to the whole table, stream records
included: measured on the serialised server, 4 transactions/s on a table of 1,000 items and 1/s at
2,000, while an UpdateItem stayed at ~300/s. Real DynamoDB's cost does not grow with the table, and
every order, payment and flash-sale purchase here is a transaction, so the emulator must not
either.

This keeps moto's own checks and error reporting (the loop below follows moto's, case for case)
and replaces the backup with a journal: before each part is applied, a copy of the one item it
touches, and the length of the table's stream. A cancelled transaction puts those items back and
drops the stream records it added, in place. That is only sound because the serialised server runs
one request at a time (nothing else can write in between), so `install()` is called for the
serialised server only. Where it answers differently from moto 5.2.5, moto is wrong and this is
what DynamoDB does; tests/functional/test_emulator_patches_differential.py names each case:

- moto swaps in its copy of the table on a rollback, so a stream reader's shard iterator stays on
  the old table: it reads records of the writes rolled back, and nothing written afterwards (the
  local stream relay would go deaf). Here the table stays the same object.
- moto leaves the parts before a part naming two operations applied (it raises before its
  rollback); here that request, as in DynamoDB, writes nothing.

`install()` refuses any moto but `moto_pin.MOTO_VERSION`; `uninstall()` puts moto's own back (the
differential test runs both). On a moto bump, see infra/local/moto_pin.py.
"""

from __future__ import annotations

import copy
from typing import Any

from infra.local.moto_pin import require_pinned_moto

try:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table
except ImportError:  # moto moved what this reaches into: say which moto, not only what is missing
    require_pinned_moto(__name__)
    raise

_MOTO_TRANSACT_WRITE_ITEMS = DynamoDBBackend.__dict__["transact_write_items"]


class _Journal:
    """The items a transaction is about to change, as they were, and where each stream stood."""

    def __init__(self) -> None:
        # (table, hash, range, the item before, whether the range table had the hash's bucket)
        self.saved: list[tuple[Table, DynamoType, DynamoType | None, Item | None, bool]] = []
        self.stream_marks: dict[int, tuple[Table, int]] = {}

    def remember(
        self, table: Table, hash_value: DynamoType, range_value: DynamoType | None, current: Item | None
    ) -> None:
        self.saved.append((table, hash_value, range_value, copy.deepcopy(current), hash_value in table.items))
        if table.stream_shard is not None and id(table) not in self.stream_marks:
            self.stream_marks[id(table)] = (table, len(table.stream_shard.items))

    def roll_back(self) -> None:
        for table, hash_value, range_value, original, had_bucket in reversed(self.saved):
            if range_value is None:
                if original is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = original  # type: ignore[assignment]
                continue
            bucket = table.items[hash_value]
            if original is None:
                bucket.pop(range_value, None)
            else:
                bucket[range_value] = original
            if not had_bucket and not bucket:
                del table.items[hash_value]  # as the deep copy had it: no empty bucket left behind
        for table, mark in self.stream_marks.values():
            if table.stream_shard is not None:
                del table.stream_shard.items[mark:]


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("The conditional request failed")
        self.item = item


def _check(op: dict[str, Any], current: Item | None) -> None:
    condition = op.get("ConditionExpression")
    if condition is None:
        return
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if not get_filter_expression(condition, names, values).expr(current):
        wants_old = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        raise _ConditionFailed(current.to_json()["Attributes"] if wants_old and current else None)


def _apply(backend: DynamoDBBackend, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    """Apply a part whose condition `_check` has just passed. moto's put/update/delete would check
    it again; nothing can change the item in between (one request at a time, and no two parts of
    a transaction name the same item), so that second check could only repeat the first."""
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"])
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key)
    elif op_type == "Update":
        names: Any = op.get("ExpressionAttributeNames")  # None when absent, as moto passes them
        values: Any = op.get("ExpressionAttributeValues")
        backend.update_item(
            op["TableName"],
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )


def _one_part(backend: DynamoDBBackend, item: dict[str, Any], journal: _Journal, targets: set) -> None:
    """Check and apply one part; raises what moto would for it."""
    if len(item) > 1:
        raise TransactWriteSingleOpException
    op_type, op = next(iter(item.items()))
    if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
        raise ValueError("Unsupported transaction operation")
    key = _key_of(backend, op_type, op)
    target = (str(op["TableName"]), str(dict(sorted(key.items()))))
    if target in targets:
        raise MultipleTransactionsException()
    targets.add(target)
    table = backend.get_table(op["TableName"])
    hash_value, range_value = backend.get_keys_value(
        table, key
    )  # moto's get_item: a key short of the schema is invalid
    current = table.get_item(hash_value, range_value)
    _check(op, current)
    if op_type != "ConditionCheck":
        journal.remember(table, hash_value, range_value, current)
        _apply(backend, op_type, op, key)


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    journal = _Journal()
    targets: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for item in transact_items:
        try:
            _one_part(self, item, journal, targets)
            errors.append((None, None, None))
        except (TransactWriteSingleOpException, MultipleTransactionsException, MockValidationException):
            journal.roll_back()
            raise
        except _ConditionFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc), exc.item))
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), None))
        except Exception as exc:  # moto reports any other failure as a cancellation reason too
            errors.append((type(exc).__name__, str(exc), None))

    if any(code is not None for code, _, _ in errors):
        journal.roll_back()
        raise TransactionCanceledException(errors)


def installed() -> bool:
    return DynamoDBBackend.__dict__["transact_write_items"] is transact_write_items


def install() -> None:
    """Replace moto's TransactWriteItems in this process (a second call does nothing)."""
    require_pinned_moto(__name__)
    if not installed():
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def uninstall() -> None:
    """moto's own TransactWriteItems again, the very function moto shipped."""
    DynamoDBBackend.transact_write_items = _MOTO_TRANSACT_WRITE_ITEMS  # type: ignore[method-assign]
