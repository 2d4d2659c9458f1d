"""Work moto 5.2.5 repeats on every DynamoDB request, done once.

Profiled inside the serialised server (cProfile around the WSGI app, docs/flash-sales.md,
"Performance"), a flash order's TransactWriteItems cost the emulator 2.5 ms of backend time and a
single-item UpdateItem 0.48 ms, much of it spent re-doing work whose result never changes:

- condition expressions are parsed (tokenised, built into an operator tree) up to three times per
  request part: once to validate the request, once to check it, once more inside put/update. The
  tree depends only on the expression, its names and its values, and evaluating it never changes
  it, so one parse per distinct (expression, names, values) is enough;
- update expressions are parsed twice per request (validation, then execution). moto's validator
  deep-copies the tree before it resolves anything against the item, so the parsed tree can be
  shared;
- an update's validation makes ten passes over a deep copy of the expression's tree, and in each
  pass moto rebuilds its node-type map twice per node and asks `isinstance` of abstract classes:
  the map is now resolved once per pass and node type, the copy is an unpickling of the shared
  tree (a fifth of `deepcopy`), and the three passes that read only the expression, its names and
  the table's keys are skipped for an input that has passed them before (they change nothing and
  give the same answer every time). A settlement-shaped transaction part (four SETs and a
  condition) went from 2.5 to 1.6 ms of the emulator's CPU (docs/benchmarks.md, "Settlement");
- building an item checks its size after EVERY attribute by re-measuring the whole item (quadratic
  in the attributes: an order item has 17). The sum only grows while an item is built, so checking
  the total once at the end raises exactly when the per-attribute check would; and the total is
  read off the request's values (`_value_size`), as moto's DynamoType.size counts them;
- a Query walks every item of the table for an index's partition and sorts what it finds, on
  every page: it is answered from an index kept in key order instead (infra/local/moto_index.py,
  whose write paths, put, delete and update, are installed with these), else from the items whose
  hash key may match (`query` below);
- every write to a table with a stream builds a stream record and measures its SizeBytes by
  dumping the whole record (both images) to JSON: 0.48 ms of a flash order's 0.66 ms of stream
  work under cProfile, for a figure only a reader of the stream sees. The record is measured on its first read
  instead, from the same dict (nothing changes a record once it is built), so readers get the
  same number (`stream_record`);
- the dispatcher asks, for every request, whether the host names one of moto's service modules
  by listing moto's package directory and testing each entry with `stat` until it finds it: 0.3-0.45
  ms of CPU per request, about a sixth of a raw decrement's. The modules are the directories of the
  installed package, which do not change while the process runs, so they are listed once
  (`moto_modules`);
- the JSON request parser walks every structure's members and dispatches every value by its
  shape's type name, to give strings and booleans back unchanged: a one-member structure (every
  attribute value) is read by its member (`parse_structure`), and values and map keys that moto
  would give back unchanged are taken as sent (`_as_sent`, `parse_map`).

Results are the same objects moto would compute (errors are never cached: an invalid expression
raises every time), so the emulator's answers do not change: tests/functional/test_emulator_speedups.py
holds it to that, tests/functional/test_emulator_patches_differential.py runs the transaction
scenarios with and without them, and tests/functional/test_emulator_index.py compares the index's
answers with moto's over random tables, writes and queries. Installed by `infra.local.moto_server` with the journal of
moto_transactions.py. `install()` refuses any moto but `moto_pin.MOTO_VERSION` (on a bump, see
infra/local/moto_pin.py); `uninstall()` puts back the very attributes moto shipped.
"""

from __future__ import annotations

import inspect
import pickle
from typing import Any

from infra.local import moto_index
from infra.local.moto_pin import require_pinned_moto

try:
    from moto import backends
    from moto.core.parse import BaseJSONParser, RequestParser
    from moto.core.serialize import BaseJSONSerializer
    from moto.core.utils import utcnow
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.table import StreamRecord, Table
    from moto.dynamodb.models.utilities import bytesize, dynamo_json_dump
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.validators import (  # type: ignore[attr-defined]
        ActionCountValidator,
        OverlappingPathsValidator,
        UpdateHashRangeKeyValidator,
        Validator,
    )
    from moto.moto_api._internal import mock_random
except ImportError:  # moto moved what this reaches into: say which moto, not only what is missing
    require_pinned_moto(__name__)
    raise

ITEM_SIZE_LIMIT = 405_000  # moto's own limit (DynamoDB's 400 KB, as moto measures an item)
CACHE_ENTRIES = 4096  # distinct expressions kept; the cache starts over when full

_conditions: dict[str, tuple[Any, list[str], list[str]]] = {}
_updates: dict[str, Any] = {}
# moto's own attributes, as its classes hold them (`make` is a classmethod object): uninstall() restores these.
_MOTO = {
    (ConditionExpressionParser, "parse"): ConditionExpressionParser.__dict__["parse"],
    (UpdateExpressionParser, "make"): UpdateExpressionParser.__dict__["make"],
    (Item, "__init__"): Item.__dict__["__init__"],
    (Table, "query"): Table.__dict__["query"],
    (DepthFirstTraverser, "traverse"): DepthFirstTraverser.__dict__["traverse"],
    (Validator, "__init__"): Validator.__dict__["__init__"],
    (Validator, "validate"): Validator.__dict__["validate"],
    (BaseJSONSerializer, "_serialize_type_structure"): BaseJSONSerializer.__dict__["_serialize_type_structure"],
    (BaseJSONParser, "_parse_structure"): BaseJSONParser.__dict__["_parse_structure"],
    (RequestParser, "_parse_map"): RequestParser.__dict__["_parse_map"],
    (StreamRecord, "__init__"): StreamRecord.__dict__["__init__"],
    (StreamRecord, "to_json"): StreamRecord.__dict__["to_json"],
    # A function of the module, which the dispatcher calls by its name there.
    (backends, "list_of_moto_modules"): backends.__dict__["list_of_moto_modules"],
    **{where: moto_own for where, (moto_own, _) in moto_index.WRITE_PATHS.items()},
}
_moto_parse_condition = _MOTO[ConditionExpressionParser, "parse"]
_moto_make_update = _MOTO[UpdateExpressionParser, "make"].__func__
_moto_query = _MOTO[Table, "query"]
_QUERY_SIGNATURE = inspect.signature(_moto_query)


def _condition_key(parser: ConditionExpressionParser) -> str:
    names = parser.expression_attribute_names
    values = parser.expression_attribute_values
    # repr tells "1" from 1 and b"1": two requests share a parse only if their inputs are equal.
    return repr(
        (
            parser.condition_expression,
            sorted(names.items()) if names else None,
            sorted(values.items()) if values else None,
        )
    )


def parse_condition(self: ConditionExpressionParser) -> Any:
    """ConditionExpressionParser.parse, once per distinct input. Callers also read the names and
    values the parse found (to reject unused ones), so those are kept with the tree."""
    key = _condition_key(self)
    known = _conditions.get(key)
    if known is None:
        tree = _moto_parse_condition(self)
        if len(_conditions) >= CACHE_ENTRIES:
            _conditions.clear()
        _conditions[key] = (tree, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
        return tree
    tree, names_found, values_found = known
    self.expr_attr_names_found.extend(names_found)
    self.expr_attr_values_found.extend(values_found)
    return tree


def make_update(cls: type[UpdateExpressionParser], expression: str) -> Any:
    """UpdateExpressionParser.make, once per expression (its readers only search the tree, and the
    validator works on a deep copy)."""
    known = _updates.get(expression)
    if known is None:
        known = _moto_make_update(cls, expression)
        if len(_updates) >= CACHE_ENTRIES:
            _updates.clear()
        _updates[expression] = known
    return known


def attribute_value(value: Any) -> DynamoType:
    """DynamoType(value) for a request's attribute value ({type: value}, one key): the same object
    moto builds (its type, its value, lists and maps built element by element the same way),
    without moto's two list() copies of the dict per value. Anything else is moto's constructor."""
    if type(value) is not dict or len(value) != 1:
        return DynamoType(value)
    ((kind, inner),) = value.items()
    built = _new_dynamo_type(DynamoType)
    built.type = kind
    if kind == "L":
        built.value = [attribute_value(element) for element in inner]
    elif kind == "M":
        built.value = {name: attribute_value(element) for name, element in inner.items()}
    else:
        built.value = inner
    return built


_new_dynamo_type = object.__new__


def build_item(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
    """Item.__init__ with one size check at the end instead of one per attribute, each attribute
    built by `attribute_value`."""
    self.hash_key = hash_key
    self.range_key = range_key
    built = LimitedSizeDict()
    for key, value in attrs.items():
        dict.__setitem__(built, key, attribute_value(value))
    self.attrs = built
    if sum(bytesize(key) + _value_size(value) for key, value in attrs.items()) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge


def _value_size(value: Any) -> int:
    """DynamoType(value).size() (Item.size() is the sum over an item's names and values), read off
    the request's own {type: value} instead of building a DynamoType for every value nested in
    it: a flash order's two puts spent 0.22 ms sizing theirs under cProfile. Anything but a
    one-key dict is moto's."""
    if type(value) is not dict or len(value) != 1:
        return DynamoType(value).size()
    ((kind, inner),) = value.items()
    if kind == "N":
        return len(str(inner))
    if kind in _SET_TYPES:
        element = kind[0]
        return sum(_value_size({element: member}) for member in inner)
    if kind == "L":
        return sum(_value_size(member) for member in inner)
    if kind == "M":
        return sum(bytesize(name) + _value_size(member) for name, member in inner.items())
    if isinstance(inner, bool):
        return 1
    return bytesize(inner)


_SET_TYPES = frozenset({"SS", "NS", "BS"})


def _may_equal(value: DynamoType | None, wanted: DynamoType) -> bool:
    """False only when moto's own `==` would be False too: both strings, and different. Anything
    else (numbers, binaries) is left to moto's comparison."""
    if value is None:
        return False
    return value.type != "S" or wanted.type != "S" or value.value == wanted.value


def query(self: Table, *args: Any, **kwargs: Any) -> Any:
    """Table.query over the items whose hash key (the table's, or the index's first) may match,
    instead of the whole table sorted: the same items reach moto's checks, and its sort by the
    keys (unique) decides the order, so the answer is moto's."""
    asked = _QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments
    hash_key, index_name = asked.get("hash_key"), asked.get("index_name")
    conditions = asked.get("hash_key_conditions") or []
    stored: dict[Any, Any] = self.items
    candidates: list[Any]
    if index_name:
        if not conditions:
            return _moto_query(self, *args, **kwargs)
        attribute, wanted = conditions[0]
        candidates = [
            item
            for hash_set in stored.values()
            for item in (hash_set.values() if self.range_key_attr else [hash_set])
            if _may_equal(item.attrs.get(attribute), wanted)
        ]
    else:
        if hash_key is None:
            return _moto_query(self, *args, **kwargs)
        candidates = [
            item
            for key, hash_set in stored.items()
            if _may_equal(key, hash_key)
            for item in (hash_set.values() if self.range_key_attr else [hash_set])
        ]
    # The serialised server runs one request at a time, so shadowing the method on this one table
    # for the length of the call is seen by nothing else.
    self.__dict__["all_items"] = lambda: candidates
    try:
        return _moto_query(self, *args, **kwargs)
    finally:
        del self.__dict__["all_items"]


def indexed_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    """Table.query read from the table's index (infra/local/moto_index.py) where it answers as moto
    does, else `query` above."""
    answered = moto_index.answer(self, _QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments)
    return query(self, *args, **kwargs) if answered is None else answered


_node_types: dict[type, bool] = {}
# (traverser class, node type) -> the function that handles it, or None. Per class, not per
# traverser: a validation builds new traversers every time. Every `_processing_map` of moto 5.2.5
# is a literal {node type: self.method}, the same for every instance of its class.
_handlers: dict[tuple[type, type], Any] = {}


def _handler_for(traverser: Any, node_type: type) -> Any:
    found = next(
        (handler.__func__ for wanted, handler in traverser._processing_map().items() if issubclass(node_type, wanted)),
        None,
    )
    _handlers[type(traverser), node_type] = found
    return found


def traverse(self: Any, node: Any) -> Any:
    """DepthFirstTraverser.traverse (moto's `traverse_node_recursively`), dispatching on each node's
    type through `_handlers`: moto rebuilds its node-type map twice for every node of each of the
    ten passes a validation makes, and asks `isinstance` of abstract classes (slow) each time. The
    first type of the map that matches wins, as in moto's `process`."""
    traverser_type = type(self)
    handlers, node_types = _handlers, _node_types
    pre_processing_of_child = self.pre_processing_of_child

    def visit(node: Any, child_id: int) -> Any:
        node_type = type(node)
        is_node = node_types.get(node_type)
        if is_node is None:
            is_node = node_types[node_type] = issubclass(node_type, Node)
        if not is_node:
            return node
        parent_node = node.parent
        children = node.children
        if children is not None:
            for i, child_node in enumerate(children):
                pre_processing_of_child(node, i)
                visit(child_node, i)
        key = (traverser_type, node_type)
        handler = handlers[key] if key in handlers else _handler_for(self, node_type)
        if handler is not None:
            node = handler(self, node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    return visit(node, -1)


# The passes of an update's validation that read only the expression, its names and the table's
# keys (not the item or the values): once an input has passed them it passes them every time, and
# they change nothing, so a known input skips them (moto runs all ten passes on every update).
_ITEM_INDEPENDENT = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)
_copies: dict[int, tuple[Any, bytes]] = {}  # id(parsed tree) -> (the tree, its pickle)
_passed: set[str] = set()


def validator_init(
    self: Any, expression: Any, expression_attribute_names: Any, expression_attribute_values: Any, item: Any, table: Any
) -> None:
    """Validator.__init__ with the tree copied by unpickling (a fifth of `deepcopy`'s time; the
    parsed trees are shared, above, and the passes rewrite the copy) and the item-independent
    passes left out for an input that has passed them."""
    self.expression_attribute_names = expression_attribute_names
    self.expression_attribute_values = expression_attribute_values
    self.item = item
    self.table = table
    self.processors = self.get_ast_processors()
    known = _copies.get(id(expression))
    if known is None or known[0] is not expression:
        if len(_copies) >= CACHE_ENTRIES:
            _copies.clear()
        known = _copies[id(expression)] = (expression, pickle.dumps(expression, pickle.HIGHEST_PROTOCOL))
    self.node_to_validate = pickle.loads(known[1])
    self._speedup_input = repr(
        (known[1], sorted((expression_attribute_names or {}).items()), list(getattr(table, "table_key_attrs", [])))
    )
    if self._speedup_input in _passed:
        self.processors = [p for p in self.processors if not isinstance(p, _ITEM_INDEPENDENT)]


def validate(self: Any) -> Any:
    """Validator.validate, noting an input whose item-independent passes succeeded."""
    n = self.node_to_validate
    for processor in self.processors:
        n = processor.traverse(n)
        if isinstance(processor, UpdateHashRangeKeyValidator):  # the last of them
            if len(_passed) >= CACHE_ENTRIES:
                _passed.clear()
            _passed.add(self._speedup_input)
    return n


_moto_serialize_structure = _MOTO[BaseJSONSerializer, "_serialize_type_structure"]
_ATTRIBUTE_TYPES = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})


def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    """BaseJSONSerializer._serialize_type_structure, asking an attribute value only for the type it
    has: moto asks each of the ten members of the AttributeValue shape of every attribute of every
    item it returns (a Query page of 400 entries: about 80,000 lookups through its attribute picker),
    and the nine absent ones answer None and are left out. Anything else is moto's."""
    if shape.name != "AttributeValue" or not isinstance(value, dict) or not value.keys() <= _ATTRIBUTE_TYPES:
        _moto_serialize_structure(self, serialized, value, shape, key)
        return
    wrapper: Any = self.MAP_TYPE() if key else serialized
    for member_key, member_shape in shape.members.items():
        if member_key in value:
            member_shape.parent = shape
            self._serialize_structure_member(wrapper, value, member_shape, member_key)
    if key:
        self._default_serialize(serialized, wrapper, shape, key)


_moto_parse_structure = _MOTO[BaseJSONParser, "_parse_structure"]
# id(structure shape) -> (the shape, {name on the wire: member name}, or None when two members share
# a wire name): the shape is kept so that a reused id is never taken for it.
_wire_names: dict[int, tuple[Any, dict[str, str] | None]] = {}


def _members_by_wire_name(shape: Any) -> dict[str, str] | None:
    names: dict[str, str] = {}
    for member_name, member_shape in shape.members.items():
        wire = member_shape.serialization.get("name", member_name)
        if wire in names:
            return None
        names[wire] = member_name
    return names


def parse_structure(self: Any, shape: Any, value: Any) -> Any:
    """BaseJSONParser._parse_structure, for a request's structure that has one member (every
    attribute value: {"S": ...}; a transaction's part: {"Put": ...}), looking up that member only:
    moto asks the input for each member of the shape (ten for an AttributeValue), and the absent
    ones give None and are left out. A flash order's transaction has 27 attribute values. The
    answer is the dict moto builds: the member present, parsed, unless it is null. Anything else
    (several keys, no dict, a document) is moto's."""
    if type(value) is not dict or len(value) != 1 or shape.is_document_type:
        return _moto_parse_structure(self, shape, value)
    known = _wire_names.get(id(shape))
    if known is None or known[0] is not shape:
        if len(_wire_names) >= CACHE_ENTRIES:
            _wire_names.clear()
        known = _wire_names[id(shape)] = (shape, _members_by_wire_name(shape))
    names = known[1]
    if names is None:
        return _moto_parse_structure(self, shape, value)
    ((wire, raw),) = value.items()
    parsed = self.MAP_TYPE()
    member_name = names.get(wire)
    if member_name is not None and raw is not None:
        member_shape = shape.members[member_name]
        parsed[member_name] = raw if _as_sent(self, member_shape) else self._parse_shape(member_shape, raw)
    return parsed


# (parser class, shape type) -> whether moto's _parse_shape gives the value back unchanged
_unchanged: dict[tuple[type, str], bool] = {}


def _as_sent(parser: Any, shape: Any) -> bool:
    """True when moto's `_parse_shape` would hand `shape`'s value back as it came: the parser's
    class has no `_parse_<type>` for it (JSON has none for strings and booleans: every S, N, BOOL
    and NULL value, every map key), so moto falls to `_default_handle`, which returns the value."""
    kind = (type(parser), shape.type_name)
    known = _unchanged.get(kind)
    if known is None:
        cls = type(parser)
        known = _unchanged[kind] = (
            getattr(cls, f"_parse_{shape.type_name}", None) is None
            and cls._parse_shape is RequestParser._parse_shape
            and cls._default_handle is RequestParser._default_handle
        )
    return known


def parse_map(self: Any, shape: Any, value: Any) -> Any:
    """RequestParser._parse_map, keys and values that moto would give back unchanged (`_as_sent`)
    taken as they are: an item's attribute names, a request's expression names. The same dict in
    the same order; the key is parsed before its value, as moto does, so the same error comes first."""
    parsed = self.MAP_TYPE()
    key_shape, value_shape = shape.key, shape.value
    keys_as_sent, values_as_sent = _as_sent(self, key_shape), _as_sent(self, value_shape)
    for key, val in value.items():
        actual_key = key if keys_as_sent else self._parse_shape(key_shape, key)
        parsed[actual_key] = val if values_as_sent else self._parse_shape(value_shape, val)
    return parsed


def stream_record(
    self: StreamRecord, table: Table, stream_type: str, event_name: str, old: Item | None, new: Item | None, seq: int
) -> None:
    """StreamRecord.__init__ without its last step, the record's SizeBytes, which moto measures by
    dumping the whole record (both images) to JSON on every write: 0.48 ms of a flash order's
    0.66 ms of stream work under cProfile, for a figure only a reader of the stream sees.
    `stream_record_json` measures it when the record is first read, from the same dict moto
    would have measured (nothing writes to a record after it is built), so the reader gets the
    same number."""
    old_a = old.to_json()["Attributes"] if old is not None else {}
    new_a = new.to_json()["Attributes"] if new is not None else {}
    rec: Any = old if old is not None else new
    keys = {table.hash_key_attr: rec.hash_key.to_json()}
    if table.range_key_attr is not None and rec is not None:
        keys[table.range_key_attr] = rec.range_key.to_json()
    self.record = {
        "eventID": mock_random.uuid4().hex,
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.0",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "StreamViewType": stream_type,
            "ApproximateCreationDateTime": utcnow(),
            "SequenceNumber": str(seq),
            "SizeBytes": 1,  # moto measures the record with this in it
            "Keys": keys,
        },
    }
    if stream_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
        self.record["dynamodb"]["NewImage"] = new_a
    if stream_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
        self.record["dynamodb"]["OldImage"] = old_a
    self.unsized = True


_moto_modules: tuple[str, ...] = ()


def moto_modules() -> tuple[str, ...]:
    """moto.backends.list_of_moto_modules, listed once: the same names in the same order."""
    global _moto_modules
    if not _moto_modules:
        _moto_modules = tuple(_MOTO[backends, "list_of_moto_modules"]())
    return _moto_modules


def stream_record_json(self: StreamRecord) -> dict[str, Any]:
    """StreamRecord.to_json, the record's SizeBytes measured on its first read as moto measures it."""
    if self.__dict__.pop("unsized", False):
        self.record["dynamodb"]["SizeBytes"] = len(dynamo_json_dump(self.record["dynamodb"]))
    return self.record


_OURS = {
    (ConditionExpressionParser, "parse"): parse_condition,
    (UpdateExpressionParser, "make"): classmethod(make_update),
    (Item, "__init__"): build_item,
    (Table, "query"): indexed_query,
    (DepthFirstTraverser, "traverse"): traverse,
    (Validator, "__init__"): validator_init,
    (Validator, "validate"): validate,
    (BaseJSONSerializer, "_serialize_type_structure"): serialize_structure,
    (BaseJSONParser, "_parse_structure"): parse_structure,
    (RequestParser, "_parse_map"): parse_map,
    (StreamRecord, "__init__"): stream_record,
    (StreamRecord, "to_json"): stream_record_json,
    (backends, "list_of_moto_modules"): moto_modules,
    **{where: ours for where, (_, ours) in moto_index.WRITE_PATHS.items()},
}


def installed() -> bool:
    return all(cls.__dict__[name] is ours for (cls, name), ours in _OURS.items())


def install() -> None:
    """Patch this process's moto (a second call does nothing)."""
    require_pinned_moto(__name__)
    for (cls, name), ours in _OURS.items():
        setattr(cls, name, ours)


def uninstall() -> None:
    """moto as shipped (tests compare both); the caches start empty on the next install."""
    for (cls, name), moto_own in _MOTO.items():
        setattr(cls, name, moto_own)
    _conditions.clear()
    _updates.clear()
    _copies.clear()
    _passed.clear()
    _node_types.clear()
    _handlers.clear()
    _wire_names.clear()
    _unchanged.clear()
    moto_index.forget()
