"""bench/_write_units.py against the AWS docs: "DynamoDB item sizes and formats" (CapacityUnitCalculations)
and the capacity-mode pages' write examples (1 KB per WCU, doubled in a transaction)."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest

from bench._write_meter import WriteMeter
from bench._write_units import (
    Index,
    Table,
    index_writes,
    item_size,
    number_size,
    units,
    value_size,
    write_cost,
)
from infra.local.resources import table_definition


# -- sizes: "the sum of the lengths of its attribute names and values" -----------------------------
def test_a_string_is_its_name_plus_its_utf8_bytes() -> None:
    assert item_size({"name": {"S": "abc"}}) == 4 + 3
    assert item_size({"city": {"S": "上海"}}) == 4 + 6  # 3 UTF-8 bytes a character, not 2 characters


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("1", 2),  # 1 significant digit: 1 byte + 1
        ("12", 2),
        ("123", 3),
        ("1999", 3),
        ("100000", 2),  # trailing zeroes trimmed: 1 significant digit
        ("0.0012", 2),  # leading zeroes trimmed
        ("-12.5", 3),
        ("1764590400000", 5),  # epoch ms: 13 digits less 5 trailing zeroes, 8 digits / 2 + 1
        ("0", 1),
    ],
)
def test_a_number_is_one_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert number_size(number) == size
    assert item_size({"n": {"N": number}}) == 1 + size


def test_a_binary_is_its_raw_bytes_not_its_base64() -> None:
    raw = b"\x00\x01\x02\x03\x04"
    assert item_size({"b": {"B": raw}}) == 1 + 5
    assert item_size({"b": {"B": base64.b64encode(raw).decode()}}) == 1 + 5  # as the wire carries it


def test_null_and_boolean_are_one_byte() -> None:
    assert item_size({"ok": {"BOOL": True}, "gone": {"NULL": True}}) == (2 + 1) + (4 + 1)


def test_lists_and_maps_have_three_bytes_of_overhead_and_one_per_element() -> None:
    assert item_size({"l": {"L": []}}) == 1 + 3  # empty: name + 3
    assert item_size({"m": {"M": {}}}) == 1 + 3
    # two elements: 3 + (1 + 2) + (1 + 1)  ("ab" is 2 bytes, BOOL 1)
    assert value_size({"L": [{"S": "ab"}, {"BOOL": False}]}) == 3 + 3 + 2
    # a map element counts its name: 3 + (1 + len("qty") + size of 2)
    assert value_size({"M": {"qty": {"N": "2"}}}) == 3 + 1 + 3 + 2
    nested = {"lines": {"L": [{"M": {"sku": {"S": "A-1"}, "qty": {"N": "3"}}}]}}
    assert item_size(nested) == 5 + (3 + 1 + (3 + (1 + 3 + 3) + (1 + 3 + 2)))


def test_sets_are_the_sum_of_their_elements() -> None:
    assert value_size({"SS": ["a", "bc"]}) == 3
    assert value_size({"NS": ["1", "123"]}) == 2 + 3


def test_no_item_is_zero_bytes() -> None:
    assert item_size(None) == 0
    assert item_size({}) == 0


# -- units: "one WCU ... for an item up to 1 KB"; "a transactional write of a 3 KB item: six WCUs" ---
@pytest.mark.parametrize(
    ("size", "standard", "transactional"),
    [(0, 1, 2), (1, 1, 2), (500, 1, 2), (1024, 1, 2), (1025, 2, 4), (3 * 1024, 3, 6), (3500, 4, 8)],
)
def test_write_units_are_started_kilobytes_doubled_in_a_transaction(
    size: int, standard: int, transactional: int
) -> None:
    assert units(size) == standard
    assert units(size, transactional=True) == transactional


# -- index writes ----------------------------------------------------------------------------------
TABLE = Table(
    keys=("pk", "sk"),
    indexes=(Index("gsi1", ("gsi1pk", "gsi1sk")), Index("gsi2", ("gsi2pk", "gsi2sk"), projection="KEYS_ONLY")),
)


def _item(**attributes: str) -> dict:
    return {"pk": {"S": "ORDER#1"}, "sk": {"S": "ORDER"}} | {k: {"S": v} for k, v in attributes.items()}


def test_the_table_and_its_indexes_come_from_the_template() -> None:
    table = Table.from_definition(table_definition("any"))
    assert table.keys == ("pk", "sk")
    assert [(i.name, i.keys, i.projection) for i in table.indexes] == [
        ("gsi1", ("gsi1pk", "gsi1sk"), "ALL"),
        ("gsi2", ("gsi2pk", "gsi2sk"), "ALL"),
    ]


def test_an_item_without_an_indexs_keys_writes_nothing_to_it() -> None:
    cost = write_cost(TABLE, "Put", None, _item(status="NEW"), transactional=True)
    assert (cost.items, cost.table_wcu, cost.index_writes, cost.index_wcu) == (1, 2, 0, 0)


def test_a_put_with_both_keys_of_an_index_writes_it_once_at_standard_cost() -> None:
    cost = write_cost(TABLE, "Put", None, _item(gsi1pk="C#1", gsi1sk="2026"), transactional=True)
    assert (cost.table_wcu, cost.index_writes, cost.index_wcu, cost.by_index) == (2, 1, 1, {"gsi1": 1})
    half = write_cost(TABLE, "Put", None, _item(gsi1pk="C#1"), transactional=False)  # sparse: no sort key
    assert half.index_writes == 0


def test_changing_an_index_key_deletes_the_old_entry_and_puts_the_new() -> None:
    before, after = _item(gsi1pk="A", gsi1sk="1"), _item(gsi1pk="A", gsi1sk="2")
    assert index_writes(TABLE, TABLE.indexes[0], before, after) == (2, 2)


def test_leaving_and_joining_an_index_are_one_write_each() -> None:
    queued, left = _item(gsi2pk="DUE#3", gsi2sk="1"), _item()
    assert index_writes(TABLE, TABLE.indexes[1], queued, left) == (1, 1)
    assert index_writes(TABLE, TABLE.indexes[1], left, queued) == (1, 1)


def test_a_projection_decides_whether_a_non_key_change_writes_the_index() -> None:
    before = _item(gsi1pk="A", gsi1sk="1", gsi2pk="B", gsi2sk="1", status="NEW")
    after = {**before, "status": {"S": "PAID"}}
    assert index_writes(TABLE, TABLE.indexes[0], before, after) == (1, 1)  # ALL: the entry changes
    assert index_writes(TABLE, TABLE.indexes[1], before, after) == (0, 0)  # KEYS_ONLY: it does not
    assert index_writes(TABLE, TABLE.indexes[0], before, before) == (0, 0)


def test_an_update_is_sized_by_the_larger_image_and_a_delete_by_the_deleted_item() -> None:
    small, large = _item(note="x"), _item(note="x" * 2000)
    assert write_cost(TABLE, "Update", large, small, transactional=False).table_wcu == 2
    assert write_cost(TABLE, "Update", small, large, transactional=True).table_wcu == 4
    assert write_cost(TABLE, "Delete", large, None, transactional=False).table_wcu == 2
    assert write_cost(TABLE, "Delete", None, None, transactional=False).table_wcu == 1  # nothing there: 1


def test_costs_add_up_by_index() -> None:
    one = write_cost(TABLE, "Put", None, _item(gsi1pk="A", gsi1sk="1"), transactional=True)
    two = write_cost(TABLE, "Put", None, _item(gsi1pk="A", gsi1sk="2", gsi2pk="B", gsi2sk="1"), transactional=True)
    total = one + two
    assert (total.items, total.table_wcu, total.index_wcu, total.wcu) == (2, 4, 3, 7)
    assert total.by_index == {"gsi1": 2, "gsi2": 1}


def test_a_condition_check_is_not_a_write() -> None:
    with pytest.raises(ValueError, match="not a write"):
        write_cost(TABLE, "ConditionCheck", None, None, transactional=True)


# -- the meter's hooks (bench/_write_meter.py), on a table held in a dict instead of DynamoDB ------
class _Reader:
    """BatchGetItem over a dict of items by (pk, sk): what the meter's second client answers."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict] = {}

    def batch_get_item(self, RequestItems: dict) -> dict:
        responses = {
            table: [
                self.items[(k["pk"]["S"], k["sk"]["S"])]
                for k in request["Keys"]
                if (k["pk"]["S"], k["sk"]["S"]) in self.items
            ]
            for table, request in RequestItems.items()
        }
        return {"Responses": responses}


def _call(meter: WriteMeter, reader: _Reader, operation: str, params: dict, apply: Any, status: int = 200) -> None:
    """What botocore emits around one call: the params, then before the call, then after it."""
    context: dict = {}
    meter._parts(params=params, model=SimpleNamespace(name=operation), context=context)
    meter._before(context=context)
    if status < 300:
        apply(reader.items)
    meter._after(http_response=SimpleNamespace(status_code=status), parsed={}, context=context)


def _metered() -> tuple[WriteMeter, _Reader]:
    meter, reader = WriteMeter(TABLE), _Reader()
    meter._reader = reader
    meter.start()
    return meter, reader


def test_the_meter_prices_a_transaction_from_the_images_before_and_after() -> None:
    meter, reader = _metered()
    stock = _item(entity="Stock", qty="5")
    stock["pk"] = {"S": "PRODUCT#A"}
    reader.items[("PRODUCT#A", "ORDER")] = stock
    order = _item(entity="Order", gsi1pk="C#1", gsi1sk="2026", note="x" * 1100)
    params = {
        "TransactItems": [
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "PRODUCT#A"}, "sk": {"S": "ORDER"}}}},
            {"Put": {"TableName": "t", "Item": order}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "X"}, "sk": {"S": "Y"}}}},
        ]
    }

    def apply(items: dict) -> None:
        items[("PRODUCT#A", "ORDER")] = {**stock, "qty": {"S": "4"}}
        items[("ORDER#1", "ORDER")] = order

    _call(meter, reader, "TransactWriteItems", params, apply)
    taken = meter.taken()
    assert taken.cost.items == 2  # the ConditionCheck is not a write
    assert taken.checks == 1
    assert taken.cost.table_wcu == 2 + 4  # the stock under 1 KB, the order over it: both doubled
    assert (taken.cost.index_writes, taken.cost.by_index) == (1, {"gsi1": 2})
    assert taken.writes == {"Update Stock": 1, "Put Order": 1}


def test_the_meter_sizes_an_update_by_the_item_read_back_and_skips_failed_calls() -> None:
    meter, reader = _metered()
    key = {"pk": {"S": "ORDER#1"}, "sk": {"S": "ORDER"}}
    reader.items[("ORDER#1", "ORDER")] = _item(entity="Order", gsi2pk="DUE#1", gsi2sk="1")

    def grow(items: dict) -> None:  # the update leaves the due queue and grows past 1 KB
        items[("ORDER#1", "ORDER")] = _item(entity="Order", note="y" * 1500)

    _call(meter, reader, "UpdateItem", {"TableName": "t", "Key": key}, grow, status=400)
    assert meter.taken().cost.items == 0
    _call(meter, reader, "UpdateItem", {"TableName": "t", "Key": key}, grow)
    cost = meter.taken().cost
    assert (cost.items, cost.table_wcu, cost.by_index) == (1, 2, {"gsi2": 1})
    _call(meter, reader, "DeleteItem", {"TableName": "t", "Key": key}, lambda items: items.clear())
    assert meter.taken().cost.table_wcu == 2 + 2  # the deleted item was 2 KB


def test_the_meter_reads_the_indexes_from_the_template() -> None:
    meter = WriteMeter.for_template()
    assert [i.name for i in meter.table.indexes] == ["gsi1", "gsi2"]
