"""What DynamoDB charges for a write, from the item images: sizes, write units, index writes.

Pure (no I/O): images are low-level AttributeValue maps (`{"pk": {"S": "ORDER#1"}, ...}`), as the
SDK sends and returns them. `bench/_write_meter.py` captures the images of the writes the bench
makes; `tests/unit/test_write_units.py` checks these rules against the AWS docs' examples.

The rules (AWS, "DynamoDB item sizes and formats" and "Capacity unit consumption for write
operations"):
- an item's size is the sum, over its attributes, of the UTF-8 length of the name plus the
  value's size: a string its UTF-8 bytes; a number about 1 byte per two significant digits plus 1;
  a binary its raw bytes; a boolean or null 1 byte; a list or map 3 bytes plus, per element, 1 byte
  and the element's size (a map element's size includes its name); a set the sum of its elements;
- a write costs 1 WCU per started KB (1,024 bytes) of the item, at least 1; inside
  TransactWriteItems twice that; a Put that replaces an item and an Update are sized by the larger
  of the item before and after, a Delete by the item deleted;
- each global secondary index whose key attributes the item carries is written too, at standard
  (not transactional) cost, sized by the index entry (the projection: with ALL the whole item).
  What this module takes for an index when an item changes (the docs' "Global secondary indexes:
  writes"): entry added or removed: 1 write; index key changed: 2 (the old entry deleted, the new
  one put); same key but a projected attribute changed: 1 (sized by the larger entry); nothing
  projected changed: 0.

Not counted: a ConditionCheck part (it consumes read units, 2 RCU per 4 KB, not write units),
failed (condition-refused or cancelled) writes, which DynamoDB also charges, and the stream (free).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Image = Mapping[str, Mapping[str, Any]]
KB = 1024


def number_size(text: str) -> int:
    """Bytes of a number: 1 per two significant digits (leading and trailing zeroes trimmed), plus 1."""
    mantissa = text.strip().lstrip("+-").lower().split("e")[0]
    digits = mantissa.replace(".", "").strip("0")
    return math.ceil(len(digits) / 2) + 1


def _binary_size(value: Any) -> int:
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return len(base64.b64decode(value))  # the wire's base64: its raw bytes count


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one AttributeValue, without its name."""
    ((kind, payload),) = value.items()
    if kind == "S":
        return len(payload.encode("utf-8"))
    if kind == "N":
        return number_size(payload)
    if kind == "B":
        return _binary_size(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in payload)
    if kind == "NS":
        return sum(number_size(n) for n in payload)
    if kind == "BS":
        return sum(_binary_size(b) for b in payload)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in payload)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + value_size(element) for name, element in payload.items())
    raise ValueError(f"unknown AttributeValue type {kind!r}")


def item_size(item: Image | None) -> int:
    """Bytes of an item: its attributes' names and values. None (no item) is 0."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def units(size_bytes: int, transactional: bool = False) -> int:
    """Write units for an item of this size: 1 per started KB, at least 1; doubled in a transaction."""
    standard = max(1, math.ceil(size_bytes / KB))
    return 2 * standard if transactional else standard


@dataclass(frozen=True)
class Index:
    """A global secondary index as the table definition has it (KeySchema, Projection)."""

    name: str
    keys: tuple[str, ...]
    projection: str = "ALL"  # ALL, KEYS_ONLY or INCLUDE
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> Table:
        """From CreateTable arguments (`infra.local.resources.table_definition`, DescribeTable's Table)."""
        indexes = tuple(
            Index(
                name=gsi["IndexName"],
                keys=tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                projection=gsi.get("Projection", {}).get("ProjectionType", "ALL"),
                non_key_attributes=tuple(gsi.get("Projection", {}).get("NonKeyAttributes", ())),
            )
            for gsi in definition.get("GlobalSecondaryIndexes", ())
        )
        return cls(tuple(k["AttributeName"] for k in definition["KeySchema"]), indexes)

    def key_of(self, item: Image) -> dict[str, Any]:
        return {name: dict(item[name]) for name in self.keys}


def index_entry(table: Table, index: Index, item: Image | None) -> dict[str, Any] | None:
    """The item's entry in the index, or None when the item lacks one of the index's keys (sparse)."""
    if not item or any(name not in item for name in index.keys):
        return None
    if index.projection == "ALL":
        return dict(item)
    kept = set(table.keys) | set(index.keys)
    if index.projection == "INCLUDE":
        kept |= set(index.non_key_attributes)
    return {name: value for name, value in item.items() if name in kept}


def index_writes(table: Table, index: Index, before: Image | None, after: Image | None) -> tuple[int, int]:
    """(writes, write units) the index takes when an item goes from `before` to `after`."""
    old, new = index_entry(table, index, before), index_entry(table, index, after)
    if old is None and new is None:
        return 0, 0
    if old is None or new is None:
        return 1, units(item_size(old if new is None else new))
    if any(old[k] != new[k] for k in index.keys):
        return 2, units(item_size(old)) + units(item_size(new))
    if old != new:
        return 1, units(max(item_size(old), item_size(new)))
    return 0, 0


@dataclass
class Cost:
    """Items written and the write units they cost, on the table and on its indexes."""

    items: int = 0
    table_wcu: int = 0
    index_writes: int = 0
    index_wcu: int = 0
    by_index: dict[str, int] = field(default_factory=dict)  # index name -> write units

    @property
    def wcu(self) -> int:
        return self.table_wcu + self.index_wcu

    def __add__(self, other: Cost) -> Cost:
        by_index = dict(self.by_index)
        for name, wcu in other.by_index.items():
            by_index[name] = by_index.get(name, 0) + wcu
        return Cost(
            self.items + other.items,
            self.table_wcu + other.table_wcu,
            self.index_writes + other.index_writes,
            self.index_wcu + other.index_wcu,
            by_index,
        )


def write_cost(table: Table, kind: str, before: Image | None, after: Image | None, transactional: bool) -> Cost:
    """One Put, Update or Delete of an item from `before` (None: absent) to `after` (None: deleted)."""
    if kind not in ("Put", "Update", "Delete"):
        raise ValueError(f"not a write: {kind!r}")
    sized = item_size(before) if kind == "Delete" else max(item_size(before), item_size(after))
    cost = Cost(items=1, table_wcu=units(sized, transactional))
    for index in table.indexes:
        writes, wcu = index_writes(table, index, before, after)
        if writes:
            cost.index_writes += writes
            cost.index_wcu += wcu
            cost.by_index[index.name] = wcu
    return cost
