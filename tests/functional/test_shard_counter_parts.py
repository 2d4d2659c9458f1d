"""A shard's decrement inside a transaction (`ShardedCounter.take_in`) is built once per table,
shard, quantity and owner's condition, then reused (shared/data/shard_counter.py): the reused part
is the one PynamoDB builds, each transaction gets its own copy, and anything that changes the part
(the table, the quantity, the condition) gets a part of its own."""

from __future__ import annotations

import pytest

from shared.data import shard_counter
from shared.data.stores.flash_sales import OPEN, shards_of
from shared.data.transactions import Transaction, update_part


def _built_now(counter, shard: int, qty: int, also) -> dict:
    item = counter.item
    return update_part(
        item, counter.key(shard), [item.remaining.add(-qty), item.ordered.add(qty)], counter._with(qty, also)
    )


def _take_in(counter, shard: int, qty: int, also) -> dict:
    tx = Transaction()
    counter.take_in(tx, shard, qty, also=also)
    ((kind, part),) = tx.parts[0].items()
    assert kind == "Update" and tx.labels == [counter.part(shard)]
    return part


def test_a_reused_part_is_the_part_pynamodb_builds(table):
    counter = shards_of("SALE-1")
    for qty, also in [(1, OPEN), (2, OPEN), (1, None)]:
        # Given the same take twice
        first, again = _take_in(counter, 0, qty, also), _take_in(counter, 0, qty, also)
        # Then both are the part PynamoDB builds for it now (expressions, names, values, table)
        expected = _built_now(counter, 0, qty, also)
        expected.pop("ReturnValues", None)
        assert first == again == expected
        # And each transaction holds its own part: changing one leaves the other and the memo alone
        first["Extra"] = True
        assert "Extra" not in again and "Extra" not in _take_in(counter, 0, qty, also)


def test_what_changes_the_part_gets_a_part_of_its_own(table, monkeypatch: pytest.MonkeyPatch):
    counter = shards_of("SALE-2")
    base = _take_in(counter, 0, 1, OPEN)
    # Another shard, another quantity, another condition: each its own key, values or expression
    assert _take_in(counter, 1, 1, OPEN)["Key"] != base["Key"]
    assert _take_in(counter, 0, 3, OPEN)["ExpressionAttributeValues"] != base["ExpressionAttributeValues"]
    assert _take_in(counter, 0, 1, None)["ConditionExpression"] != base["ConditionExpression"]
    # Another table (each test, each stage has its own): the part names it
    from shared.data.table import BaseItem

    monkeypatch.setattr(BaseItem.Meta, "table_name", "another-table")
    assert _take_in(counter, 0, 1, OPEN)["TableName"] == "another-table"


def test_the_memo_stays_bounded(table, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(shard_counter, "TAKE_IN_PARTS_KEPT", 5)
    shard_counter._TAKE_IN_PARTS.clear()
    for n in range(12):
        _take_in(shards_of(f"SALE-{n}"), 0, 1, OPEN)
    assert len(shard_counter._TAKE_IN_PARTS) <= 5
