"""The emulator's Query index (infra/local/moto_index.py) answers exactly as moto's own query does.

Random tables (string, number and binary keys; hash-only and hash-and-range tables; global indexes
with and without a range key, sparse, of every projection; a local index) take random puts,
updates (that move, remove and add index keys), deletes, batches and transactions (some cancelled,
so rolled back), and a table is deleted and created again; after each few writes, random queries
(each direction, every key condition form, filters, limits, projections, COUNT, start keys taken
from pages and from stored items) are answered twice over the same table: by the index, and by
moto's Table.query as shipped. Every page must be the same: items, order, Count, ScannedCount and
LastEvaluatedKey, or the same error. The seeds are printed; EMULATOR_INDEX_SEED replays one."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.table import Table

from infra.local import moto_index, moto_speedups

SEEDS = [int(os.environ["EMULATOR_INDEX_SEED"])] if os.environ.get("EMULATOR_INDEX_SEED") else [11, 23, 37]
STRINGS = ["a", "ab", "abc", "b", "ba", "bb", "c", "d", "é"]
NUMBERS = ["-1", "0", "1", "1.5", "2", "10", "-0.5", "3"]
BINARIES = [b"\x00", b"\x00\x01", b"\x01", b"\xff", b"a", b"ab"]
PARTITIONS = ["p0", "p1", "p2"]

# name -> (key schema, attribute types, global indexes, local indexes); an index: (name, hash, range, projection)
SHAPES: dict[str, tuple] = {
    "range": (
        ("pk", "sk"),
        {"pk": "S", "sk": "S", "gpk": "S", "gnum": "N", "gpk2": "S", "gbin": "B", "gh": "S", "ls": "S"},
        [("ixN", "gpk", "gnum", "ALL"), ("ixB", "gpk2", "gbin", "KEYS_ONLY"), ("ixH", "gh", None, "INCLUDE")],
        [("lxS", "pk", "ls", "ALL")],
    ),
    "hash": (
        ("pk", None),
        {"pk": "S", "gpk": "S", "gs": "S", "gnum": "N"},
        [("ixS", "gpk", "gs", "ALL"), ("ixH", "gnum", None, "ALL")],
        [],
    ),
    "numbers": (("pk", "sk"), {"pk": "S", "sk": "N", "gpk": "S", "gs": "S"}, [("ixS", "gpk", "gs", "ALL")], []),
    "binary": (("pk", "sk"), {"pk": "S", "sk": "B", "gpk": "S", "gnum": "N"}, [("ixN", "gpk", "gnum", "INCLUDE")], []),
}


@pytest.fixture
def dynamodb(moto_endpoint: str):
    return boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def index_answers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """[queries the index answered, queries it left to moto]."""
    counts = [0, 0]
    own = moto_index.answer

    def counted(table: Any, asked: dict[str, Any]) -> Any:
        answered = own(table, asked)
        counts[answered is None] += 1
        return answered

    monkeypatch.setattr(moto_index, "answer", counted)
    return counts


def _value(rng: random.Random, kind: str) -> dict[str, Any]:
    if kind == "S":
        return {"S": rng.choice(STRINGS)}
    if kind == "N":
        return {"N": rng.choice(NUMBERS)}
    return {"B": rng.choice(BINARIES)}


def _create(db: Any, name: str, shape: str) -> None:
    (hash_key, range_key), types, gsis, lsis = SHAPES[shape]

    def schema(h: str, r: str | None) -> list[dict[str, str]]:
        return [{"AttributeName": h, "KeyType": "HASH"}] + ([{"AttributeName": r, "KeyType": "RANGE"}] if r else [])

    def projection(kind: str) -> dict[str, Any]:
        return {"ProjectionType": kind, **({"NonKeyAttributes": ["n"]} if kind == "INCLUDE" else {})}

    used = {hash_key, range_key} | {a for _, h, r, _ in gsis + lsis for a in (h, r)}
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": schema(hash_key, range_key),
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in types.items() if a in used],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        request["GlobalSecondaryIndexes"] = [
            {"IndexName": n, "KeySchema": schema(h, r), "Projection": projection(p)} for n, h, r, p in gsis
        ]
    if lsis:
        request["LocalSecondaryIndexes"] = [
            {"IndexName": n, "KeySchema": schema(h, r), "Projection": projection(p)} for n, h, r, p in lsis
        ]
    db.create_table(**request)


def _key(rng: random.Random, shape: str) -> dict[str, Any]:
    (hash_key, range_key), types, _, _ = SHAPES[shape]
    key = {hash_key: {"S": rng.choice(PARTITIONS)}}
    if range_key:
        key[range_key] = _value(rng, types[range_key])
    return key


def _index_attrs(shape: str) -> list[str]:
    (hash_key, range_key), types, _, _ = SHAPES[shape]
    return [a for a in types if a not in (hash_key, range_key)]


def _partition_value(rng: random.Random, attr: str, kind: str) -> dict[str, Any]:
    if attr.startswith("gpk") or attr == "gh":
        return {"S": rng.choice(["q0", "q1"])}
    return _value(rng, kind)


def _item(rng: random.Random, shape: str) -> dict[str, Any]:
    types = SHAPES[shape][1]
    item = _key(rng, shape)
    for attr in _index_attrs(shape):
        if rng.random() < 0.7:  # sparse: an item without the attribute is not in the index
            item[attr] = _partition_value(rng, attr, types[attr])
    item["n"] = {"N": str(rng.randint(0, 9))}
    if rng.random() < 0.3:
        item["pad"] = {"S": "x" * rng.randint(1, 300)}
    return item


def _update(rng: random.Random, shape: str) -> dict[str, Any]:
    """An update that moves, removes or sets index keys (and a counter)."""
    types = SHAPES[shape][1]
    sets, removes, values = ["n = if_not_exists(n, :zero) + :one"], [], {":zero": {"N": "0"}, ":one": {"N": "1"}}
    for i, attr in enumerate(rng.sample(_index_attrs(shape), k=rng.randint(0, 2))):
        if rng.random() < 0.3:
            removes.append(attr)
        else:
            sets.append(f"{attr} = :v{i}")
            values[f":v{i}"] = _partition_value(rng, attr, types[attr])
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    request = {"UpdateExpression": expression, "ExpressionAttributeValues": values}
    if rng.random() < 0.2:
        request["ConditionExpression"] = "attribute_exists(n)"
    return request


def _outcome(call: Callable[..., Any], **request: Any) -> Any:
    try:
        answer = call(**request)
    except ClientError as failed:
        return ("error", failed.response["Error"]["Code"], failed.response["Error"].get("Message"))
    answer.pop("ResponseMetadata", None)
    return answer


def _unique(parts: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The requests of (key, request) pairs, each key once (a batch or transaction names a key once)."""
    seen, unique = set(), []
    for key, request in parts:
        k = json.dumps(key, default=repr, sort_keys=True)
        if k not in seen:
            seen.add(k)
            unique.append(request)
    return unique


def _batch(db: Any, rng: random.Random, name: str, shape: str) -> None:
    puts = [_item(rng, shape) for _ in range(rng.randint(1, 4))]
    parts = [({a: item[a] for a in _key_names(shape)}, {"PutRequest": {"Item": item}}) for item in puts]
    key = _key(rng, shape)
    parts.append((key, {"DeleteRequest": {"Key": key}}))
    _outcome(db.batch_write_item, RequestItems={name: _unique(parts)})


def _transaction_part(rng: random.Random, name: str, shape: str) -> tuple[dict[str, Any], dict[str, Any]]:
    choice, key = rng.random(), _key(rng, shape)
    if choice < 0.4:
        item = _item(rng, shape)
        return {a: item[a] for a in _key_names(shape)}, {"Put": {"TableName": name, "Item": item}}
    if choice < 0.8:
        return key, {"Update": {"TableName": name, "Key": key, **_update(rng, shape)}}
    if choice < 0.9:
        return key, {"Delete": {"TableName": name, "Key": key}}
    # fails often: the whole transaction is rolled back
    return key, {"ConditionCheck": {"TableName": name, "Key": key, "ConditionExpression": "attribute_exists(n)"}}


def _write(db: Any, rng: random.Random, name: str, shape: str) -> None:
    kind = rng.random()
    if kind < 0.35:
        _outcome(db.put_item, TableName=name, Item=_item(rng, shape))
    elif kind < 0.65:
        _outcome(db.update_item, TableName=name, Key=_key(rng, shape), **_update(rng, shape))
    elif kind < 0.75:
        _outcome(db.delete_item, TableName=name, Key=_key(rng, shape))
    elif kind < 0.85:
        _batch(db, rng, name, shape)
    else:
        parts = [_transaction_part(rng, name, shape) for _ in range(rng.randint(1, 4))]
        _outcome(db.transact_write_items, TransactItems=_unique(parts))


def _key_names(shape: str) -> list[str]:
    return [a for a in SHAPES[shape][0] if a]


def _views(shape: str) -> list[tuple[str | None, str, str | None]]:
    (hash_key, range_key), _, gsis, lsis = SHAPES[shape]
    return [(None, hash_key, range_key)] + [(n, h, r) for n, h, r, _ in gsis + lsis]


def _key_condition(rng: random.Random, shape: str, range_attr: str | None, values: dict[str, Any]) -> str:
    """A sort-key condition of any form (or none), its operands added to `values`."""
    if not range_attr or rng.random() < 0.2:
        return ""
    kind = SHAPES[shape][1][range_attr]
    op = rng.choice(["=", "<", "<=", ">", ">=", "between"] + (["begins_with"] if kind in "SB" else []))
    values[":a"] = _value(rng, kind)
    if op == "between":
        values[":b"] = _value(rng, kind)
        return " AND #r BETWEEN :a AND :b"
    if op == "begins_with":
        return " AND begins_with(#r, :a)"
    return f" AND #r {op} :a"


def _stored_start(db: Any, rng: random.Random, name: str, shape: str, view: tuple) -> dict[str, Any] | None:
    """A start key from a stored item of the view, as a client could hold one."""
    index, hash_attr, range_attr = view
    scanned = db.scan(TableName=name)["Items"]
    if index:
        scanned = [i for i in scanned if all(a in i for a in (hash_attr, range_attr) if a)]
    if not scanned:
        return None
    start = rng.choice(scanned)
    wanted = set(_key_names(shape)) | {hash_attr} | ({range_attr} if range_attr else set())
    return {a: start[a] for a in wanted}


def _query(db: Any, rng: random.Random, name: str, shape: str) -> dict[str, Any]:
    types = SHAPES[shape][1]
    view = rng.choice(_views(shape))
    index, hash_attr, range_attr = view
    names = {"#h": hash_attr, **({"#r": range_attr} if range_attr else {})}
    values = {":h": _partition_value(rng, hash_attr, types[hash_attr]) if index else {"S": rng.choice(PARTITIONS)}}
    if index == "lxS":
        values[":h"] = {"S": rng.choice(PARTITIONS)}
    if rng.random() < 0.1:
        values[":h"] = {"S": "nobody"} if types[hash_attr] == "S" else {"N": "99"}
    condition = "#h = :h" + _key_condition(rng, shape, range_attr, values)
    if "#r" not in condition:
        names.pop("#r", None)
    request: dict[str, Any] = {"TableName": name, "KeyConditionExpression": condition}
    request["ScanIndexForward"] = rng.random() < 0.5
    if index:
        request["IndexName"] = index
    if rng.random() < 0.6:
        request["Limit"] = rng.randint(1, 5)
    if rng.random() < 0.3:
        request["FilterExpression"] = "n > :f"
        values[":f"] = {"N": str(rng.randint(0, 9))}
    if rng.random() < 0.2:
        request["ProjectionExpression"] = "#h, n"
    elif rng.random() < 0.1:
        request["Select"] = "COUNT"
    if rng.random() < 0.3 and (start := _stored_start(db, rng, name, shape, view)):
        request["ExclusiveStartKey"] = start
        values[":h"] = start[hash_attr]
    request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = values
    return request


def _pages(db: Any, request: dict[str, Any]) -> list[Any]:
    pages, request = [], dict(request)
    for _ in range(40):
        page = _outcome(db.query, **request)
        pages.append(page)
        if not isinstance(page, dict) or "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return pages


def _moto_as_shipped_answers(db: Any, request: dict[str, Any]) -> list[Any]:
    ours = Table.__dict__["query"]
    Table.query = moto_speedups._MOTO[Table, "query"]  # type: ignore[method-assign]
    try:
        return _pages(db, request)
    finally:
        Table.query = ours  # type: ignore[method-assign]


def _differences(db: Any, seed: int, queries_per_round: int = 6, rounds: int = 25) -> list[tuple]:
    """Run the random script on one table of each shape; the queries whose pages differ."""
    rng = random.Random(seed)
    found: list[tuple] = []
    for shape in SHAPES:
        name = f"ix-{shape}-{uuid.uuid4().hex[:8]}"
        _create(db, name, shape)
        for round_no in range(rounds):
            if round_no == rounds // 2 and shape == "range":  # the same name, a new table
                db.delete_table(TableName=name)
                _create(db, name, shape)
            for _ in range(rng.randint(1, 8)):
                _write(db, rng, name, shape)
            for _ in range(queries_per_round):
                request = _query(db, rng, name, shape)
                indexed, shipped = _pages(db, request), _moto_as_shipped_answers(db, request)
                if indexed != shipped:
                    found.append((seed, shape, round_no, request, indexed, shipped))
        db.delete_table(TableName=name)
    return found


def test_the_index_answers_every_random_query_as_moto_does(dynamodb, index_answers):
    assert moto_speedups.installed()
    for seed in SEEDS:
        print(f"EMULATOR_INDEX_SEED={seed}")
        found = _differences(dynamodb, seed)
        assert not found, found[0]
    # And the index, not moto's fallback, answered nearly all of them
    answered, left = index_answers
    assert answered > 10 * left and answered > 1000, index_answers


@pytest.mark.parametrize("path", sorted(f"{cls.__name__}.{name}" for cls, name in moto_index.WRITE_PATHS))
def test_the_comparison_fails_when_a_write_path_is_not_noted(dynamodb, monkeypatch, path):
    # Given the index no longer told of the writes of one path (moto's own function in its place)
    (cls, name), (moto_own, _) = next(
        (where, paths) for where, paths in moto_index.WRITE_PATHS.items() if f"{where[0].__name__}.{where[1]}" == path
    )
    monkeypatch.setattr(cls, name, moto_own)
    # When the random script runs
    found = _differences(dynamodb, SEEDS[0], rounds=12)
    # Then the index answers some query differently from moto, and the comparison sees it
    assert found


def test_a_table_swapped_for_its_copy_on_moto_s_own_rollback_keeps_a_matching_index(dynamodb, moto_endpoint):
    # Given moto's own TransactWriteItems (it rolls back by swapping in a deep copy of the table)
    from infra.local import moto_transactions

    moto_transactions.uninstall()
    try:
        found = _differences(dynamodb, SEEDS[0] + 1, rounds=10)
    finally:
        moto_transactions.install()
    # Then every answer is still moto's
    assert not found, found[0]


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    moto_speedups.install()
    yield
