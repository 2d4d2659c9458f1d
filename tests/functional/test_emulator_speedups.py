"""The emulator's shortcuts (infra/local/moto_speedups.py) answer exactly as moto does without them:
the same script of requests (conditions that pass and fail, reused expressions with other values
and names, invalid and unused expression parts, transactions, items at the size limit, queries of
the table and of an index) gives the same answers and leaves the same table, with the shortcuts
and with moto as shipped."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.local import moto_speedups, resources

BIG = 405_000  # moto's item size limit, as it measures an item


@pytest.fixture
def dynamodb(moto_endpoint: str):
    return boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def moto_as_shipped() -> Iterator[Callable[[bool], None]]:
    def use(shipped: bool) -> None:
        if shipped:
            moto_speedups.uninstall()
        else:
            moto_speedups.install()

    yield use
    moto_speedups.install()  # the session's emulator keeps its shortcuts


def _key(pk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": "X"}}


def _outcome(call: Callable[..., Any], **request: Any) -> tuple:
    try:
        answer = call(**request)
    except ClientError as failed:
        body = failed.response
        return (
            "error",
            body["Error"]["Code"],
            body["Error"].get("Message"),
            body.get("Item"),
            body.get("CancellationReasons"),
        )
    answer.pop("ResponseMetadata", None)
    return ("ok", answer)


def _set_x(expression: str, names: dict[str, str] | None = None) -> dict[str, Any]:
    """An update request setting the paths of `expression` to "x"."""
    request: dict[str, Any] = {"UpdateExpression": expression, "ExpressionAttributeValues": {":v": {"S": "x"}}}
    if names:
        request["ExpressionAttributeNames"] = names
    return request


def _script(db: Any, table: str) -> list[tuple]:
    """Requests whose answers depend on every cached or skipped step."""
    put, update, tx = db.put_item, db.update_item, db.transact_write_items
    n_at_least = {"ConditionExpression": "n >= :q", "UpdateExpression": "SET n = n - :q"}
    return [
        _outcome(
            put, TableName=table, Item={**_key("A"), "n": {"N": "5"}}, ConditionExpression="attribute_not_exists(pk)"
        ),
        # the same condition again: now it fails, and returns the item as it is
        _outcome(
            put,
            TableName=table,
            Item={**_key("A"), "n": {"N": "9"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        # one expression, three sets of values: each is judged with its own
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            ExpressionAttributeValues={":q": {"N": "3"}},
            ReturnValues="UPDATED_NEW",
            **n_at_least,
        ),
        _outcome(update, TableName=table, Key=_key("A"), ExpressionAttributeValues={":q": {"N": "3"}}, **n_at_least),
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            ExpressionAttributeValues={":q": {"N": "2"}},
            ReturnValues="ALL_NEW",
            **n_at_least,
        ),
        # one expression, two meanings of its name
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            UpdateExpression="SET #a = :v",
            ConditionExpression="attribute_not_exists(#a)",
            ExpressionAttributeNames={"#a": "m"},
            ExpressionAttributeValues={":v": {"S": "first"}},
        ),
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            UpdateExpression="SET #a = :v",
            ConditionExpression="attribute_not_exists(#a)",
            ExpressionAttributeNames={"#a": "m"},
            ExpressionAttributeValues={":v": {"S": "second"}},
        ),
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            UpdateExpression="SET #a = :v",
            ConditionExpression="attribute_not_exists(#a)",
            ExpressionAttributeNames={"#a": "k"},
            ExpressionAttributeValues={":v": {"S": "third"}},
        ),
        # invalid expressions fail every time, unused parts are refused after a valid use
        _outcome(put, TableName=table, Item=_key("B"), ConditionExpression="n >="),
        _outcome(put, TableName=table, Item=_key("B"), ConditionExpression="n >="),
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            UpdateExpression="SET n = n +",
            ExpressionAttributeValues={":q": {"N": "1"}},
        ),
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            ExpressionAttributeValues={":q": {"N": "1"}, ":unused": {"N": "1"}},
            **n_at_least,
        ),
        # the passes that read only the expression, its names and the keys (skipped for an input that
        # passed them): one expression valid with one name, an update of the key with another, the
        # same path twice (overlapping), two SET clauses; each failing one asked twice
        *[
            _outcome(update, TableName=table, Key=_key("A"), **request)
            for request in (
                _set_x("SET #a = :v, #b = :v", {"#a": "m", "#b": "o"}),
                *[_set_x("SET #a = :v, #b = :v", {"#a": "m", "#b": "sk"})] * 2,
                *[_set_x("SET #a = :v, #b = :v", {"#a": "m", "#b": "m"})] * 2,
                *[_set_x("SET m = :v SET o = :v")] * 2,
            )
        ],
        # a valid expression whose values fail a later pass (a type mismatch), then pass
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            UpdateExpression="SET m = m + :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
        ),
        _outcome(
            update,
            TableName=table,
            Key=_key("A"),
            UpdateExpression="SET m = :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        # a transaction whose last part fails, then one that applies
        _outcome(
            tx,
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {**_key("C"), "n": {"N": "1"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": table,
                        "Key": _key("A"),
                        "UpdateExpression": "SET n = n - :q",
                        "ConditionExpression": "n >= :q",
                        "ExpressionAttributeValues": {":q": {"N": "50"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ],
        ),
        _outcome(
            tx,
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {**_key("C"), "n": {"N": "1"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": table,
                        "Key": _key("D"),
                        "UpdateExpression": "SET n = if_not_exists(n, :zero) + :q",
                        "ConditionExpression": "attribute_not_exists(n) OR n <= :q",
                        "ExpressionAttributeValues": {":q": {"N": "1"}, ":zero": {"N": "0"}},
                    }
                },
            ],
        ),
        # items at moto's size limit: just under is stored, just over is refused, growing past it too
        _outcome(put, TableName=table, Item={**_key("E"), "big": {"S": "x" * (BIG - 100)}}),
        _outcome(put, TableName=table, Item={**_key("F"), "big": {"S": "x" * (BIG - 4)}, "more": {"S": "yy"}}),
        _outcome(put, TableName=table, Item={**_key("G"), "big": {"S": "x" * BIG}}),
        _outcome(
            update,
            TableName=table,
            Key=_key("E"),
            UpdateExpression="SET more = :v",
            ExpressionAttributeValues={":v": {"S": "y" * 200}},
        ),
        *_queries(db, table),
        _outcome(db.scan, TableName=table),
    ]


def _queries(db: Any, table: str) -> list[tuple]:
    """Queries of the table and of an index (the shortcut starts them from the items whose hash
    key can match): ranges, order, limits and pages, counts, a filter, a key nobody has."""
    for n in range(12):
        item = {**_key(f"Q{n % 3}"), "sk": {"S": f"R{n:02d}"}, "gsi2pk": {"S": f"QUEUE#{n % 2}"}}
        item["gsi2sk"] = {"S": f"{(n * 7) % 12:02d}#{n}"}
        item["n"] = {"N": str(n)}
        db.put_item(TableName=table, Item=item)
    db.put_item(TableName=table, Item={**_key("Q9"), "gsi2pk": {"S": "QUEUE#0"}})  # no gsi2sk: not in the index
    # every attribute type, nested too: what a returned item serialises (the shortcut asks each
    # attribute value only for the type it has)
    every_type = {
        "s": {"S": "文字"},
        "n": {"N": "-1.5"},
        "b": {"B": b"\x00\xff"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"\x01", b"\x02"]},
        "null": {"NULL": True},
        "bool": {"BOOL": False},
        "m": {"M": {"inner": {"L": [{"S": "x"}, {"M": {"deep": {"BOOL": True}}}, {"B": b"\x03"}]}}},
        "l": {"L": []},
    }
    db.put_item(TableName=table, Item={**_key("Q8"), **every_type})
    q = db.query
    queue = {
        "IndexName": "gsi2",
        "KeyConditionExpression": "gsi2pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "QUEUE#0"}},
    }
    due = {
        "IndexName": "gsi2",
        "KeyConditionExpression": "gsi2pk = :p AND gsi2sk <= :until",
        "ExpressionAttributeValues": {":p": {"S": "QUEUE#1"}, ":until": {"S": "08#~"}},
    }
    first_page = q(TableName=table, Limit=2, **queue)
    return [
        _outcome(q, TableName=table, **queue),
        _outcome(q, TableName=table, ScanIndexForward=False, Limit=3, **due),
        _outcome(q, TableName=table, Limit=2, ExclusiveStartKey=first_page["LastEvaluatedKey"], **queue),
        _outcome(q, TableName=table, Select="COUNT", **due),
        _outcome(
            q,
            TableName=table,
            FilterExpression="n > :n",
            **{**queue, "ExpressionAttributeValues": {**queue["ExpressionAttributeValues"], ":n": {"N": "3"}}},
        ),
        _outcome(
            q,
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :r)",
            ExpressionAttributeValues={":pk": {"S": "Q1"}, ":r": {"S": "R0"}},
        ),
        _outcome(
            q,
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "Q2"}},
            ScanIndexForward=False,
            Limit=2,
        ),
        _outcome(q, TableName=table, **{**queue, "ExpressionAttributeValues": {":p": {"S": "QUEUE#none"}}}),
        _outcome(q, TableName=table, ConsistentRead=True, **queue),  # refused on an index
        _outcome(q, TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "Q8"}}),
        _outcome(db.get_item, TableName=table, Key=_key("Q8")),
    ]


def _stream_records(moto_endpoint: str, stream_arn: str) -> list[dict]:
    """Every record of the table's stream, as a reader gets them (GetRecords), less the random event id."""
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, region_name="us-east-1")
    (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    for record in records:
        record.pop("eventID")
    return records


def _run_on_fresh_table(db: Any, moto_endpoint: str) -> list[tuple]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    created = resources.create_all(moto_endpoint, "us-east-1", name, name)
    answers = _script(db, name)
    answers[-1][1]["Items"].sort(key=lambda item: item["pk"]["S"])
    # a delete, so the stream holds a REMOVE (keys and old image, no new one)
    answers.append(_outcome(db.delete_item, TableName=name, Key=_key("Q8"), ReturnValues="ALL_OLD"))
    answers.append(("stream", _stream_records(moto_endpoint, created["stream_arn"])))
    # answers name their table; binary values (bytes) compare by their repr
    return json.loads(json.dumps(answers, default=repr).replace(name, "<table>"))


@pytest.fixture
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stream records carry their time, which is in the size moto gives them: one instant for both runs."""
    import datetime

    from moto.dynamodb.models import table as moto_table

    instant = datetime.datetime(2026, 12, 3, 15, 4, 5, 123456)
    monkeypatch.setattr(moto_table, "utcnow", lambda: instant)
    monkeypatch.setattr(moto_speedups, "utcnow", lambda: instant)


def test_with_and_without_the_shortcuts_every_answer_and_the_table_are_the_same(
    dynamodb, moto_endpoint, moto_as_shipped, stopped_clock
):
    # Given the same script of requests
    # When it runs on moto as shipped and on moto with the shortcuts, each on a fresh table
    moto_as_shipped(True)
    shipped = _run_on_fresh_table(dynamodb, moto_endpoint)
    moto_as_shipped(False)
    shortcut = _run_on_fresh_table(dynamodb, moto_endpoint)
    # Then every answer (errors, returned items, cancellation reasons), the final table and the
    # stream's records (images, keys, event names, sequence numbers, sizes) agree
    assert shortcut == shipped
    stream = shipped[-1][1]
    assert len(stream) >= 10 and {r["eventName"] for r in stream} == {"INSERT", "MODIFY", "REMOVE"}, stream
    assert all(r["dynamodb"]["SizeBytes"] > 100 for r in stream), stream  # measured, not moto's placeholder
    # And the script really exercised failures, not only successes
    assert [kind for kind, *_ in shipped].count("error") >= 8, shipped
    # And the queries found items, in the index and in the table
    found = [answer["Count"] for kind, answer, *_ in shipped if kind == "ok" and "Count" in answer]
    assert len(found) >= 8 and sum(1 for n in found if n >= 2) >= 5, found


def test_a_cached_condition_is_judged_against_each_item_as_it_is_now(dynamodb, moto_endpoint):
    # Given an item and a condition the emulator has parsed before
    name = f"t-{uuid.uuid4().hex[:12]}"
    resources.create_all(moto_endpoint, "us-east-1", name, name)
    decrement = {
        "TableName": name,
        "Key": _key("S"),
        "UpdateExpression": "SET n = n - :one",
        "ConditionExpression": "n >= :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    dynamodb.put_item(TableName=name, Item={**_key("S"), "n": {"N": "3"}})
    # When it decrements four times
    results = [_outcome(dynamodb.update_item, **decrement)[0] for _ in range(4)]
    # Then three succeed and the fourth is refused: nothing about the item is cached
    assert results == ["ok", "ok", "ok", "error"]
    assert dynamodb.get_item(TableName=name, Key=_key("S"))["Item"]["n"] == {"N": "0"}


# Attribute values as a request may carry them, odd ones included: every type, nested; a null
# member; no member; two members; a member DynamoDB does not have; not a dict at all.
ODD_VALUES: list[Any] = [
    {"S": "文字"},
    {"N": "-1.5"},
    {"B": "AP8="},
    {"SS": ["a", "b"]},
    {"NS": ["1", "2"]},
    {"BS": ["AQ==", "Ag=="]},
    {"NULL": True},
    {"BOOL": False},
    {"M": {"inner": {"L": [{"S": "x"}, {"M": {"deep": {"BOOL": True}}}, {"B": "Aw=="}, {"L": []}]}}},
    {"L": []},
    {"S": None},
    {},
    {"S": "a", "N": "1"},
    {"Q": "x"},
    {"M": {"k": {}, "j": {"S": None, "N": "2"}}},
]


def _parsed(operation: str, body: dict[str, Any]) -> tuple:
    """What moto's request parser makes of `body` for `operation` (or the error it raises)."""
    from moto.core.parse import JSONParser
    from moto.core.utils import get_service_model

    parser = JSONParser(get_service_model("dynamodb").operation_model(operation))
    try:
        return ("ok", parser.parse({"body": json.dumps(body).encode(), "headers": {}}))
    except Exception as failed:  # the same refusal either way, by type and message
        return ("error", type(failed).__name__, str(failed))


def _parser_requests() -> list[tuple[str, dict[str, Any]]]:
    key = {"pk": {"S": "P"}, "sk": {"S": "X"}}
    requests: list[tuple[str, dict[str, Any]]] = [
        ("PutItem", {"TableName": "t", "Item": {**key, f"a{n}": value}}) for n, value in enumerate(ODD_VALUES)
    ]
    requests += [
        ("PutItem", {"TableName": "t", "Item": {**key, "bad": "not a map"}}),
        ("PutItem", {"TableName": "t", "Item": {**key, "bad": ["a list"]}}),
        (
            "UpdateItem",
            {
                "TableName": "t",
                "Key": key,
                "UpdateExpression": "SET a = :v",
                "ExpressionAttributeValues": {":v": {"M": {"x": {"N": "1"}}}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "t", "Item": {**key, "n": {"N": "1"}}}},
                    {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "SET n = :v"}},
                    {"Put": {"TableName": "t", "Item": key}, "Delete": {"TableName": "t", "Key": key}},
                    {},
                    {"Unknown": {"TableName": "t"}},
                    {"ConditionCheck": None},
                ],
                "ClientRequestToken": "token",
            },
        ),
        ("Query", {"TableName": "t", "ExclusiveStartKey": {"pk": {"S": "P"}}, "Limit": 2}),
    ]
    return requests


def test_the_request_parser_reads_each_request_as_moto_does(moto_as_shipped):
    from moto.core.parse import JSONParser

    # Given requests whose structures have one member (every attribute value, a transaction's
    # parts) and odd ones (null members, none, two, unknown ones, values that are not maps)
    requests = _parser_requests()
    # When moto as shipped and moto with the shortcut parse them
    moto_as_shipped(True)
    shipped = [_parsed(operation, body) for operation, body in requests]
    moto_as_shipped(False)
    shortcut = [_parsed(operation, body) for operation, body in requests]
    # Then each parses to the same request, or fails the same way
    assert shortcut == shipped
    assert sum(1 for kind, *_ in shipped if kind == "error") >= 2, shipped  # the non-maps are refused
    # And the parse is really the shortcut's (a structure of one member is read without moto's
    # loop, a string member and a map's string keys taken as sent)
    assert moto_speedups._wire_names
    assert {kind for kind, as_sent in moto_speedups._unchanged.items() if as_sent} >= {
        (JSONParser, "string"),
        (JSONParser, "boolean"),
    }
    assert not moto_speedups._unchanged[JSONParser, "blob"]  # base64, decoded by moto's own handler


def _built(value: Any, build: Callable[[Any], Any]) -> tuple:
    from moto.dynamodb.models.dynamo_type import DynamoType

    def shape(built: Any) -> Any:  # the object tree, class by class
        if isinstance(built, DynamoType):
            assert vars(built).keys() == {"type", "value"}
            return ("DynamoType", built.type, shape(built.value))
        if isinstance(built, list):
            return [shape(v) for v in built]
        if isinstance(built, dict):
            return {k: shape(v) for k, v in built.items()}
        return (type(built).__name__, built)

    try:
        built = build(value)
        return ("ok", shape(built), built.size(), repr(built.to_json()))
    except Exception as failed:
        return ("error", type(failed).__name__, str(failed))


def test_an_attribute_value_is_built_as_moto_builds_it():
    from moto.dynamodb.models.dynamo_type import DynamoType

    # Given attribute values of every type, nested, and malformed ones
    values = [*ODD_VALUES, {"L": 5}, {"M": "x"}, {"L": [{"S": "a"}, "not a map"]}, DynamoType({"L": [{"N": "1"}]})]
    # When each is built by moto's DynamoType and by the shortcut
    # Then the same tree of objects comes out (types, values, their classes), or the same error
    for value in values:
        assert _built(value, moto_speedups.attribute_value) == _built(value, DynamoType), value


def _size(value: Any, measure: Callable[[Any], int]) -> tuple:
    try:
        return ("ok", measure(value))
    except Exception as exc:  # the same failure, whatever moto raises for a malformed value
        return ("error", type(exc).__name__)


_ATTRIBUTE_VALUES = st.recursive(
    st.one_of(
        st.text(max_size=6).map(lambda s: {"S": s}),
        st.integers(-(10**6), 10**6).map(lambda n: {"N": str(n)}),
        st.binary(max_size=4).map(lambda b: {"B": base64.b64encode(b).decode()}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.lists(st.text(max_size=3), min_size=1, max_size=3, unique=True).map(lambda s: {"SS": s}),
        st.lists(st.integers(0, 99).map(str), min_size=1, max_size=3, unique=True).map(lambda s: {"NS": s}),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda values: {"L": values}),
        st.dictionaries(st.text(max_size=4), inner, max_size=3).map(lambda values: {"M": values}),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_ATTRIBUTE_VALUES)
def test_an_item_is_sized_as_moto_sizes_it(value):
    from moto.dynamodb.models.dynamo_type import DynamoType

    # Given any attribute value, nested (and, below, the malformed ones)
    # When its size is read off the request and measured by moto's DynamoType
    # Then both give the same number of bytes
    assert _size(value, moto_speedups._value_size) == _size(value, lambda v: DynamoType(v).size())


def test_a_malformed_value_is_sized_or_refused_as_moto_does():
    from moto.dynamodb.models.dynamo_type import DynamoType

    for value in [*ODD_VALUES, {"L": 5}, {"M": "x"}, {"L": [{"S": "a"}, "not a map"]}, {"S": 5}, {"SS": "ab"}]:
        assert _size(value, moto_speedups._value_size) == _size(value, lambda v: DynamoType(v).size()), value


@settings(max_examples=200, deadline=None)
@given(value=_ATTRIBUTE_VALUES, names=st.dictionaries(st.text(max_size=3).map(lambda s: "#" + s), st.text(max_size=3)))
def test_a_generated_request_is_parsed_as_moto_parses_it(value, names):
    # Given a request with any attribute value, nested, and any expression names
    body = {
        "TableName": "t",
        "Item": {"pk": {"S": "P"}, "sk": {"S": "X"}, "a": value},
        "ConditionExpression": "attribute_not_exists(pk)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":v": value},
    }
    # When moto as shipped and moto with the shortcuts parse it
    moto_speedups.uninstall()
    try:
        shipped = _parsed("PutItem", body)
    finally:
        moto_speedups.install()
    # Then both make the same request of it
    assert _parsed("PutItem", body) == shipped


def test_moto_s_modules_are_listed_once_as_moto_lists_them(moto_as_shipped):
    from moto import backends

    listed_by_moto = list(moto_speedups._MOTO[backends, "list_of_moto_modules"]())
    assert {"dynamodb", "dynamodbstreams", "sqs"} <= set(listed_by_moto)
    # Installed, the dispatcher's question gets the names moto lists, in its order, every time
    assert backends.list_of_moto_modules is moto_speedups.moto_modules
    assert list(backends.list_of_moto_modules()) == list(backends.list_of_moto_modules()) == listed_by_moto
    # Uninstalled, moto's own function is back
    moto_as_shipped(True)
    assert backends.list_of_moto_modules is moto_speedups._MOTO[backends, "list_of_moto_modules"]
