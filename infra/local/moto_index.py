"""An index for moto 5.2.5's DynamoDB Query: each partition's items kept in key order.

moto has no index structure. A Query on a global secondary index walks every item of the table to
find the index partition's items, sorts them, then compares each with the ExclusiveStartKey and
the key condition before it cuts the page: paging through a partition of n items costs n for every
page, so reading it all costs n²/page (the settlement bench's shard pages, docs/benchmarks.md,
"Settlement"). Real DynamoDB reads the partition's range from the start key on and stops at the
limit.

Here each table keeps, per view (the table itself, and each secondary index), a bucket per
partition key value holding its items in the order moto sorts them (a list of sort-key tuples,
kept sorted with `bisect`, and the items beside them). Writes only note the primary keys they
touch (`Table.put_item`, `Table.delete_item`, `DynamoDBBackend.update_item`: every other write
path of moto 5.2.5, batches, transactions, PartiQL and the journal's rollback in
moto_transactions.py included, goes through these three or rewrites only keys they noted); the
next Query moves the noted items to where they now belong, so an item changed in place is read as
it is now. A table object carries its own index, so a table deleted and created again, or swapped
for its copy by moto's own transaction rollback, starts with the index that matches its items.

A Query is answered from the bucket: the key condition's range found by bisection, the start key's
place found by bisection, then moto's own loop (limit, 1 MB page size, the key comparison, the
count, the last evaluated key) over that range only, and moto's own tail (the copy, the index's
projection, the filter, the projection expression). It answers what moto answers, item for item:
anything this does not handle exactly (multi-attribute keys, the legacy QueryFilter, a start key
or operand of another type than the key's, a key of an unexpected type stored in an item, Limit
below 1, items over 1 MB) goes to moto's query. tests/functional/test_emulator_index.py holds it
to that over random tables, writes and queries.
"""

from __future__ import annotations

import copy
from bisect import bisect_left, bisect_right
from decimal import Decimal
from typing import Any

from infra.local.moto_pin import require_pinned_moto

try:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, GlobalSecondaryIndex, Table
except ImportError:  # moto moved what this reaches into: say which moto, not only what is missing
    require_pinned_moto(__name__)
    raise

_STATE = "_speedup_index"  # the attribute of a Table's __dict__ holding its index
LARGE_ITEM = 100_000  # items above this size are remembered with their size (the 1 MB page check)
_PY_TYPE = {"S": str, "N": Decimal, "B": bytes}  # a key's cast value, as moto stores it
_OPERANDS = {"=": 1, "EQ": 1, "<": 1, "LT": 1, "<=": 1, "LE": 1, ">": 1, "GT": 1, ">=": 1, "GE": 1}
_OPERANDS.update({"BETWEEN": 2, "BEGINS_WITH": 1})

_MOTO_PUT = Table.__dict__["put_item"]
_MOTO_DELETE = Table.__dict__["delete_item"]
_MOTO_UPDATE = DynamoDBBackend.__dict__["update_item"]
_epoch = [0]  # bumped by forget(): an index built before it may have missed writes


class _Bucket:
    __slots__ = ("items", "keys")

    def __init__(self) -> None:
        self.keys: list[tuple] = []
        self.items: list[Item] = []


class _View:
    """One partition key's buckets: the table's (index None) or one secondary index's."""

    def __init__(self, table: Table, index: Any) -> None:
        self.index = index
        declared = {a["AttributeName"]: a["AttributeType"] for a in table.attr}
        if index is None:
            self.hash_attr = table.hash_key_attr
            self.range_attr = table.range_key_attr
            self.needs: list[str] = []
            sort_attrs = table._generate_attr_to_sort_by([table.hash_key_attr], [table.range_key_attr])
        else:  # as moto's query builds them for an index (the caller checked one hash key, at most one range key)
            self.hash_attr = next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
            ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
            self.range_attr = ranges[0] if ranges else None
            self.needs = [self.hash_attr, *ranges]
            if ranges:
                range_attrs = [ranges[0], table.range_key_attr]
            elif isinstance(index, GlobalSecondaryIndex) and table.range_key_attr:
                range_attrs = [table.range_key_attr, table.range_key_attr]
            else:
                range_attrs = [table.hash_key_attr, table.range_key_attr]
            sort_attrs = table._generate_attr_to_sort_by([self.hash_attr, table.hash_key_attr], range_attrs)
        # The first sort attribute is the partition key, the same for a whole bucket.
        self.sort_attrs = sort_attrs
        self.rest = sort_attrs[1:]
        self.types = [declared.get(a) for a in self.rest]
        self.hash_type = declared.get(self.hash_attr)
        self.usable = all(t in _PY_TYPE for t in self.types) and sort_attrs[0] == self.hash_attr
        self.buckets: dict[DynamoType, _Bucket] = {}
        self.placed: dict[tuple, tuple[DynamoType, tuple]] = {}
        self.odd: set[tuple] = set()  # items whose key attributes moto would not sort as this does

    def key_of(self, item: Item) -> tuple | None:
        """The item's place in its bucket, or None when a key attribute's type is not the declared one."""
        key = []
        for attr, declared in zip(self.rest, self.types, strict=True):
            value = item.attrs[attr]
            cast = value.cast_value
            if value.type != declared or type(cast) is not _PY_TYPE[declared]:
                return None
            if declared == "N" and not cast.is_finite():
                return None
            key.append(cast)
        return tuple(key)

    def place(self, pk: tuple, item: Item | None) -> None:
        self.odd.discard(pk)
        if item is None or any(item.attrs.get(a) is None for a in self.needs):
            return
        hash_value = item.attrs[self.hash_attr] if self.index is not None else item.hash_key
        key = self.key_of(item)
        if key is None:
            self.odd.add(pk)
            return
        bucket = self.buckets.get(hash_value)
        if bucket is None:
            bucket = self.buckets[hash_value] = _Bucket()
        i = bisect_right(bucket.keys, key)
        bucket.keys.insert(i, key)
        bucket.items.insert(i, item)
        self.placed[pk] = (hash_value, key)

    def remove(self, pk: tuple) -> bool:
        self.odd.discard(pk)
        where = self.placed.pop(pk, None)
        if where is None:
            return True
        hash_value, key = where
        bucket = self.buckets.get(hash_value)
        if bucket is None:
            return False
        i = bisect_left(bucket.keys, key)
        if i >= len(bucket.keys) or bucket.keys[i] != key:
            return False
        del bucket.keys[i]
        del bucket.items[i]
        if not bucket.keys:
            del self.buckets[hash_value]
        return True


class _State:
    def __init__(self, table: Table) -> None:
        self.epoch = _epoch[0]
        self.items_ref = table.items
        self.views: dict[str | None, _View] = {}
        self.dirty: set[tuple] = set()
        self.stale = False  # a write this could not place: rebuild everything
        self.large: dict[tuple, int] = {}
        for pk, item in _all(table):
            self._measure(pk, item)

    def _measure(self, pk: tuple, item: Item | None) -> None:
        size = item.size() if item is not None else 0
        if size > LARGE_ITEM:
            self.large[pk] = size
        else:
            self.large.pop(pk, None)

    def largest(self) -> int:
        """At least the size of every item of the table."""
        return max(self.large.values(), default=LARGE_ITEM)

    def catch_up(self, table: Table) -> None:
        dirty, self.dirty = self.dirty, set()
        for pk in dirty:
            item = _current(table, pk)
            self._measure(pk, item)
            for name, view in list(self.views.items()):
                if view.remove(pk):
                    view.place(pk, item)
                else:  # not where it was put: build this view again
                    del self.views[name]


def _all(table: Table) -> list[tuple[tuple, Item]]:
    found = []
    for hash_value, stored in table.items.items():
        if table.range_key_attr:
            found.extend(((hash_value, range_value), item) for range_value, item in stored.items())
        elif isinstance(stored, Item):
            found.append(((hash_value, None), stored))
    return found


def _current(table: Table, pk: tuple) -> Item | None:
    stored = table.items.get(pk[0])
    if table.range_key_attr and isinstance(stored, dict):
        stored = stored.get(pk[1])
    return stored if isinstance(stored, Item) else None


def _note(table: Table, hash_value: Any, range_value: Any) -> None:
    state: _State | None = table.__dict__.get(_STATE)
    if state is None:
        return
    if not isinstance(hash_value, DynamoType) or (table.range_key_attr and not isinstance(range_value, DynamoType)):
        state.stale = True
        return
    state.dirty.add((hash_value, range_value if table.range_key_attr else None))


def put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Table.put_item, noting the key it writes."""
    try:
        return _MOTO_PUT(self, item_attrs, *args, **kwargs)
    finally:
        try:
            hash_value = DynamoType(item_attrs[self.hash_key_attr])
            range_value = DynamoType(item_attrs[self.range_key_attr]) if self.range_key_attr else None
        except Exception:  # moto refused the item before writing it (no key): nothing moved
            hash_value = range_value = None
        if hash_value is not None:
            _note(self, hash_value, range_value)


def delete_item(self: Table, hash_key: Any, range_key: Any) -> Any:
    """Table.delete_item, noting the key it removes."""
    try:
        return _MOTO_DELETE(self, hash_key, range_key)
    finally:
        _note(self, hash_key, range_key)


def update_item(self: DynamoDBBackend, table_name: str, key: Any, *args: Any, **kwargs: Any) -> Any:
    """DynamoDBBackend.update_item (which changes a stored item in place), noting the key, even
    when it fails part-way."""
    try:
        return _MOTO_UPDATE(self, table_name, key, *args, **kwargs)
    finally:
        table = self.tables.get(table_name)
        if table is None:
            table = next((t for t in self.tables.values() if t.table_arn == table_name), None)
        if table is not None and table.__dict__.get(_STATE) is not None:
            try:  # the key as moto's update_item reads it
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            except Exception:
                table.__dict__[_STATE].stale = True
            else:
                _note(table, hash_value, range_value)


def _state_for(table: Table) -> _State:
    state: _State | None = table.__dict__.get(_STATE)
    if state is None or state.stale or state.epoch != _epoch[0] or state.items_ref is not table.items:
        state = table.__dict__[_STATE] = _State(table)
    else:
        state.catch_up(table)
    return state


def _view_for(table: Table, state: _State, index: Any) -> _View:
    name = None if index is None else index.name
    view = state.views.get(name)
    if view is None or view.index is not index:
        view = state.views[name] = _View(table, index)
        if view.usable:
            for pk, item in _all(table):
                view.place(pk, item)
    return view


def _typed(view_type: str | None, value: Any) -> Any:
    """The cast value of an operand or start-key part of the key's declared type, else None."""
    if not isinstance(value, DynamoType) or value.type != view_type:
        return None
    cast = value.cast_value
    if type(cast) is not _PY_TYPE.get(view_type or "") or (view_type == "N" and not cast.is_finite()):
        return None
    return cast


def _window(keys: list[tuple], op: str | None, operands: list[Any]) -> tuple[int, int]:
    """Where in a bucket the items meeting the key condition are (they are contiguous: the
    condition reads the first sort attribute, by which the bucket is ordered)."""
    n = len(keys)
    if op is None:
        return 0, n

    def first(k: tuple) -> Any:
        return k[0]

    x = operands[0]
    if op in ("=", "EQ"):
        return bisect_left(keys, x, key=first), bisect_right(keys, x, key=first)
    if op in ("<", "LT"):
        return 0, bisect_left(keys, x, key=first)
    if op in ("<=", "LE"):
        return 0, bisect_right(keys, x, key=first)
    if op in (">", "GT"):
        return bisect_right(keys, x, key=first), n
    if op in (">=", "GE"):
        return bisect_left(keys, x, key=first), n
    if op == "BETWEEN":
        lo = bisect_left(keys, x, key=first)
        return lo, max(lo, bisect_right(keys, operands[1], key=first))
    lo = bisect_left(keys, x, key=first)  # BEGINS_WITH: the prefixed strings follow the prefix
    return lo, bisect_left(keys, True, lo=lo, key=lambda k: not k[0].startswith(x))


class _Unhandled(Exception):
    """A query this does not answer exactly: moto answers it."""


def _partition(table: Table, asked: dict[str, Any]) -> tuple[Any, DynamoType]:
    """The index asked for (None: the table) and the partition key value."""
    index_name = asked.get("index_name")
    hash_conditions = asked.get("hash_key_conditions") or []
    if not index_name:
        hash_value = asked.get("hash_key")
        if not isinstance(hash_value, DynamoType) or len(hash_conditions) > 1:
            raise _Unhandled
        return None, hash_value
    index = {i.name: i for i in table.all_indexes()}.get(index_name)
    if index is None or (asked.get("consistent_read") and index in table.global_indexes):
        raise _Unhandled  # moto's error
    kinds = [k["KeyType"] for k in index.schema]
    if kinds.count("HASH") != 1 or kinds.count("RANGE") > 1 or len(hash_conditions) != 1:
        raise _Unhandled  # multi-attribute keys, or a condition short of the key
    attr, hash_value = hash_conditions[0]
    hash_attr = next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
    if attr != hash_attr or not isinstance(hash_value, DynamoType):
        raise _Unhandled
    return index, hash_value


def _operands(view: _View, asked: dict[str, Any]) -> list[Any]:
    """The key condition's operands as the sort key's cast values."""
    op, range_objs = asked.get("range_comparison"), asked.get("range_objs") or []
    range_conditions = asked.get("range_key_conditions") or []
    if op is None and not range_conditions:
        return []
    if op is None or view.range_attr is None or _OPERANDS.get(op) != len(range_objs) or len(range_conditions) > 1:
        raise _Unhandled
    if range_conditions and (range_conditions[0][0] != view.range_attr or range_conditions[0][1] != op):
        raise _Unhandled
    operands = [_typed(view.types[0], v) for v in range_objs]
    if any(o is None for o in operands) or (op == "BEGINS_WITH" and type(operands[0]) not in (str, bytes)):
        raise _Unhandled
    return operands


def _start_key(view: _View, hash_value: DynamoType, exclusive_start_key: Any) -> tuple | None:
    """The start key's place in the bucket's order (moto compares every sort attribute of it)."""
    if exclusive_start_key is None:
        return None
    if not isinstance(exclusive_start_key, dict):
        raise _Unhandled
    raws = [exclusive_start_key.get(attr) for attr in view.sort_attrs]
    if any(not isinstance(raw, dict) or len(raw) != 1 for raw in raws):
        raise _Unhandled  # moto fails on a start key short of an attribute
    parts = [DynamoType(raw) for raw in raws]
    start = [_typed(t, v) for t, v in zip(view.types, parts[1:], strict=True)]
    if parts[0] != hash_value or any(s is None for s in start):
        raise _Unhandled
    return tuple(start)


def answer(table: Table, asked: dict[str, Any]) -> tuple[list[Item], int, dict[str, Any] | None] | None:
    """moto's answer to the query `asked` (Table.query's bound arguments), or None for moto to give it."""
    forward, limit = asked.get("scan_index_forward"), asked.get("limit")
    if asked.get("filter_kwargs") or (forward is not True and forward is not False):
        return None
    if limit is not None and (type(limit) is not int or limit < 1):
        return None
    try:
        index, hash_value = _partition(table, asked)
        state = _state_for(table)
        view = _view_for(table, state, index)
        if not view.usable or view.odd or state.largest() > RESULT_SIZE_LIMIT:
            return None
        operands = _operands(view, asked)
        start_key = _start_key(view, hash_value, asked.get("exclusive_start_key"))
    except _Unhandled:
        return None
    return _read(table, state, view, hash_value, operands, start_key, asked)


def _ranges(keys: list[tuple], start_key: tuple | None, window: tuple[int, int], forward: bool) -> tuple[range, range]:
    """The bucket positions moto reads in the window, in order, and those it reads after it.

    moto skips every item at or before the start key (in the query's direction), then reads on.
    Items outside the window never join the page; before it the page is empty, so they can stop
    nothing (no item is over 1 MB: checked); after it they matter only to the limit and size checks."""
    lo, hi = window
    n = len(keys)
    if forward:
        begin = 0 if start_key is None else bisect_right(keys, start_key)
        return range(max(begin, lo), hi), range(max(begin, hi), n)
    begin = n - 1 if start_key is None else bisect_left(keys, start_key) - 1
    return range(min(begin, hi - 1), lo - 1, -1), range(min(begin, lo - 1), -1, -1)


def _read(
    table: Table,
    state: _State,
    view: _View,
    hash_value: DynamoType,
    operands: list[Any],
    start_key: tuple | None,
    asked: dict[str, Any],
) -> tuple[list[Item], int, dict[str, Any] | None]:
    bucket = view.buckets.get(hash_value)
    keys, items = (bucket.keys, bucket.items) if bucket is not None else ([], [])
    op, range_objs, limit = asked.get("range_comparison"), asked.get("range_objs") or [], asked.get("limit")
    inside, after = _ranges(keys, start_key, _window(keys, op, operands), asked["scan_index_forward"])
    index_name = asked.get("index_name")
    range_attr = view.range_attr
    results: list[Item] = []
    result_size = 0
    last_evaluated_key = None

    def step(i: int) -> bool:
        """moto's loop body for one item; True when the page ends before it."""
        nonlocal result_size, last_evaluated_key
        result = items[i]
        size = result.size()
        if len(results) == limit or (result_size + size) > RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
            return True
        value = result.attrs.get(range_attr) if range_attr else None
        if op is None or (value is not None and value.compare(op, range_objs)):
            results.append(result)
            result_size += size
        return False

    if not any(step(i) for i in inside) and after:
        if len(results) == limit:  # the next item read ends the page
            step(after[0])
        elif result_size + state.largest() > RESULT_SIZE_LIMIT:  # one of them might: read them as moto does
            any(step(i) for i in after)
    return _moto_tail(table, results, asked), len(results), last_evaluated_key


def _moto_tail(table: Table, results: list[Item], asked: dict[str, Any]) -> list[Item]:
    """What moto's query does with the items it read, as it has it."""
    results = copy.deepcopy(results)
    index_name = asked.get("index_name")
    if index_name:
        index = table.get_index(index_name)
        results = [index.project(r) for r in results]
    filter_expression = asked.get("filter_expression")
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    projection_expressions = asked.get("projection_expressions")
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results


def forget() -> None:
    """Indexes built so far may miss writes made from now on (the write paths are moto's own
    again): the next query after install builds them afresh."""
    _epoch[0] += 1


WRITE_PATHS = {
    (Table, "put_item"): (_MOTO_PUT, put_item),
    (Table, "delete_item"): (_MOTO_DELETE, delete_item),
    (DynamoDBBackend, "update_item"): (_MOTO_UPDATE, update_item),
}
