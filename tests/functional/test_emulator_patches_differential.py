"""The emulator's moto patches against moto's own behaviour (infra/local/moto_transactions.py,
moto_speedups.py, guarded by moto_pin.py).

The same transaction scenarios run on the session's serialised server four ways: moto 5.2.5 as
shipped, with the transactions journal, with the speedups, with both. Each run records every answer
(cancellation reasons per part: codes, messages, returned items, order), the tables as they end, and
each table's stream twice: read from its start afterwards, and as a reader that opened the stream
before the scenario sees it. The speedups must change nothing. The journal must change nothing but
two named moto bugs, asserted as such:

- MOTO_DETACHES_READERS: moto rolls back by swapping in its copy of the table, so an iterator opened
  before the rollback reads the rolled-back writes and nothing after (the local stream relay keeps
  its iterators). Each scenario that rolls back lists what that reader sees on moto.
- MOTO_KEEPS_PARTS_BEFORE_A_TWO_OPERATION_PART: moto raises before its rollback.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item

from infra.local import moto_pin, moto_speedups, moto_transactions, resources

REQUIREMENTS_DEV = Path(__file__).resolve().parents[2] / "requirements-dev.txt"
PATCHES = (moto_transactions, moto_speedups)
MARKER = "MARKER"  # written to every table after a scenario: a live reader must see it


# -- the emulator, four ways -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def _emulator(moto_endpoint: str) -> Emulator:
    return Emulator(moto_endpoint)


@pytest.fixture
def emulator(_emulator: Emulator) -> Iterator[Emulator]:
    yield _emulator
    _emulator.use(transactions=True, speedups=True)  # the session's server keeps both patches


class Emulator:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        once = Config(retries={"total_max_attempts": 1})  # an emulator's 500 is an answer to compare, not to retry
        self.db = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=once)
        self.streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name="us-east-1")
        self.template = resources.load_template()
        self.shards: dict[str, str] = {}

    def use(self, transactions: bool, speedups: bool) -> None:
        for patch, wanted in ((moto_transactions, transactions), (moto_speedups, speedups)):
            if wanted:
                patch.install()
            else:
                patch.uninstall()

    def fresh_tables(self) -> Tables:
        main, other = f"m-{uuid.uuid4().hex[:12]}", f"h-{uuid.uuid4().hex[:12]}"
        arns = {
            "main": self.db.create_table(**resources.table_definition(main, self.template)),
            "other": self.db.create_table(  # hash key only: the journal's other shape of table
                TableName=other,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            ),
        }
        return Tables(main, other, {k: v["TableDescription"]["LatestStreamArn"] for k, v in arns.items()})

    def shard_iterator(self, arn: str, kind: str) -> str:
        shard = self.shards.get(arn)
        if shard is None:
            shard = self.shards[arn] = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0][
                "ShardId"
            ]
        return self.streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind)["ShardIterator"]

    def follow(self, iterator: str) -> list[dict]:
        """Every record from an iterator on, following NextShardIterator as a poller does."""
        records: list[dict] = []
        for _ in range(20):
            page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page["Records"]:
                return records
            records += page["Records"]
            iterator = page["NextShardIterator"]
        raise AssertionError("the stream did not end")

    def observe(self, scenario: Scenario) -> dict[str, Any]:
        tables = self.fresh_tables()
        scenario.seed(self.db, tables)
        readers = {role: self.shard_iterator(arn, "LATEST") for role, arn in tables.arns.items()}
        answers = scenario.run(self.db, tables)
        for name in (tables.main, tables.other):
            self.db.put_item(TableName=name, Item=tables.key(name, MARKER))
        seen = {
            "items": {role: _scan(self.db, name) for role, name in tables.named().items()},
            "item_counts": {
                role: self.db.describe_table(TableName=name)["Table"]["ItemCount"]
                for role, name in tables.named().items()
            },
            "stream": {
                role: [_record(r) for r in self.follow(self.shard_iterator(arn, "TRIM_HORIZON"))]
                for role, arn in tables.arns.items()
            },
            "reader": {role: [_record(r) for r in self.follow(it)] for role, it in readers.items()},
        }
        return tables.anonymise({"answers": answers, **seen})


@dataclass
class Tables:
    main: str  # the template's table (pk, sk, its indexes and stream)
    other: str  # pk only
    arns: dict[str, str]

    def named(self) -> dict[str, str]:
        return {"main": self.main, "other": self.other}

    def key(self, table: str, pk: str) -> dict:
        return {"pk": {"S": pk}, "sk": {"S": "X"}} if table == self.main else {"pk": {"S": pk}}

    def anonymise(self, seen: Any) -> Any:
        text = json.dumps(seen, default=str).replace(self.main, "<main>").replace(self.other, "<other>")
        return json.loads(text)


def _scan(db: Any, name: str) -> list[dict]:
    return sorted(db.scan(TableName=name)["Items"], key=lambda item: json.dumps(item, sort_keys=True))


def _record(record: dict) -> dict:
    """A stream record without what differs on every run (its id, time, and a size moto derives from the time)."""
    body = {k: v for k, v in record["dynamodb"].items() if k not in {"ApproximateCreationDateTime", "SizeBytes"}}
    return {"eventName": record["eventName"], "eventSource": record["eventSource"], "dynamodb": body}


def _outcome(call: Callable[..., Any], **request: Any) -> list:
    try:
        answer = call(**request)
    except ClientError as failed:
        body = failed.response
        return ["error", body["Error"]["Code"], body["Error"].get("Message"), body.get("CancellationReasons")]
    answer.pop("ResponseMetadata", None)
    return ["ok", answer]


def _brief(records: list[dict]) -> list[str]:
    return [f"{r['eventName']} {r['dynamodb']['Keys']['pk']['S']}" for r in records]


# -- the scenarios ---------------------------------------------------------------------------------
def _n(value: int) -> dict:
    return {"N": str(value)}


def _put(t: Tables, table: str, pk: str, **extra: Any) -> dict:
    condition = {k: extra.pop(k) for k in list(extra) if k[0].isupper()}
    return {"Put": {"TableName": table, "Item": {**t.key(table, pk), **extra}, **condition}}


def _update(t: Tables, table: str, pk: str, expression: str, **extra: Any) -> dict:
    return {"Update": {"TableName": table, "Key": t.key(table, pk), "UpdateExpression": expression, **extra}}


def _delete(t: Tables, table: str, pk: str, **extra: Any) -> dict:
    return {"Delete": {"TableName": table, "Key": t.key(table, pk), **extra}}


def _check(t: Tables, table: str, pk: str, condition: str, **extra: Any) -> dict:
    return {"ConditionCheck": {"TableName": table, "Key": t.key(table, pk), "ConditionExpression": condition, **extra}}


def _seed(*items: tuple[str, str, dict]) -> Callable[[Any, Tables], None]:
    def seed(db: Any, t: Tables) -> None:
        for role, pk, attrs in items:
            name = t.named()[role]
            db.put_item(TableName=name, Item={**t.key(name, pk), **attrs})

    return seed


def _transactions(*requests: Callable[[Tables], list[dict]], **options: Any) -> Callable[[Any, Tables], list]:
    def run(db: Any, t: Tables) -> list:
        return [_outcome(db.transact_write_items, TransactItems=parts(t), **options) for parts in requests]

    return run


PLUS_ONE = {"ExpressionAttributeValues": {":one": _n(1)}}


@dataclass
class Scenario:
    name: str
    seed: Callable[[Any, Tables], None]
    run: Callable[[Any, Tables], list]
    # MOTO_DETACHES_READERS: what a reader opened before `run` sees on moto as shipped, for each
    # table a rollback swapped (the journal's reader sees the stream as it really is).
    moto_reader: dict[str, list[str]] | None = None
    expect: list[str] = field(default_factory=list)  # the codes of the answers, on both


SCENARIOS = [
    Scenario(
        "every kind of part commits: put, conditional update and delete, condition check",
        _seed(("main", "B", {"n": _n(1)}), ("main", "D", {"n": _n(1)})),
        _transactions(
            lambda t: [
                _put(t, t.main, "A", n=_n(7)),
                _update(t, t.main, "B", "SET n = n + :one", ConditionExpression="n = :one", **PLUS_ONE),
                _delete(t, t.main, "D", ConditionExpression="attribute_exists(pk)"),
                _check(t, t.main, "Z", "attribute_not_exists(pk)"),
            ]
        ),
        expect=["ok"],
    ),
    Scenario(
        "the last part's condition fails: the parts before it are undone",
        _seed(("main", "B", {"n": _n(1)})),
        _transactions(
            lambda t: [
                _put(t, t.main, "A", n=_n(7)),
                _update(t, t.main, "B", "SET n = n + :one", **PLUS_ONE),
                _put(t, t.main, "C", n=_n(1), ConditionExpression="attribute_exists(pk)"),
            ]
        ),
        moto_reader={"main": ["INSERT A", "MODIFY B"]},
        expect=["TransactionCanceledException"],
    ),
    Scenario(
        "several conditions fail: one reason per part, in order, parts after a failure still judged",
        _seed(("main", "B", {"n": _n(1)}), ("main", "E", {"n": _n(5)})),
        _transactions(
            lambda t: [
                _check(t, t.main, "B", "n > :five", ExpressionAttributeValues={":five": _n(5)}),
                _put(t, t.main, "A", n=_n(1)),
                _update(
                    t,
                    t.main,
                    "E",
                    "SET n = n - :q",
                    ConditionExpression="n >= :q",
                    ExpressionAttributeValues={":q": _n(9)},
                ),
                _delete(t, t.main, "F"),
                _put(t, t.main, "G", ConditionExpression="attribute_not_exists(pk)"),
                _delete(t, t.main, "H", ConditionExpression="attribute_exists(pk)"),
            ]
        ),
        moto_reader={"main": ["INSERT A", "INSERT G"]},
        expect=["TransactionCanceledException"],
    ),
    Scenario(
        "ReturnValuesOnConditionCheckFailure=ALL_OLD: the item as it is, none for a missing item",
        _seed(("main", "B", {"n": _n(1), "tag": {"S": "b"}, "tags": {"SS": ["x", "y"]}})),
        _transactions(
            lambda t: [
                _update(
                    t,
                    t.main,
                    "B",
                    "SET n = n + :one",
                    ConditionExpression="n > :one",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **PLUS_ONE,
                ),
                _put(
                    t,
                    t.main,
                    "C",
                    ConditionExpression="attribute_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
                _check(t, t.main, "B2", "attribute_exists(pk)", ReturnValuesOnConditionCheckFailure="NONE"),
            ]
        ),
        moto_reader={"main": []},
        expect=["TransactionCanceledException"],
    ),
    Scenario(
        "an update that creates its item, then a failing check: the new item is undone",
        _seed(),
        _transactions(
            lambda t: [
                _update(
                    t,
                    t.main,
                    "X",
                    "SET n = if_not_exists(n, :zero) + :one",
                    ExpressionAttributeValues={":zero": _n(0), ":one": _n(1)},
                ),
                _put(t, t.other, "Y", n=_n(1)),
                _check(t, t.main, "Z", "attribute_exists(pk)"),
            ]
        ),
        moto_reader={
            "main": ["INSERT X", "INSERT X"],
            "other": ["INSERT Y"],
        },  # moto records an Update creating an item as two INSERTs
        expect=["TransactionCanceledException"],
    ),
    Scenario(
        "two tables: one transaction commits across both, the next is cancelled on the other",
        _seed(("other", "H1", {"n": _n(1)})),
        _transactions(
            lambda t: [
                _put(t, t.main, "A", n=_n(1)),
                _update(t, t.other, "H1", "SET n = n + :one", **PLUS_ONE),
                _put(t, t.other, "H2", n=_n(2)),
            ],
            lambda t: [
                _put(t, t.main, "A2", n=_n(1)),
                _delete(t, t.other, "H1"),
                _check(t, t.other, "H9", "attribute_exists(pk)"),
            ],
        ),
        moto_reader={"main": ["INSERT A", "INSERT A2"], "other": ["MODIFY H1", "INSERT H2", "REMOVE H1"]},
        expect=["ok", "TransactionCanceledException"],
    ),
    Scenario(
        "the same order twice (ClientRequestToken too): it commits once, the replay is cancelled",
        _seed(("main", "S", {"stock": _n(2)})),
        _transactions(
            *[
                lambda t: [
                    _update(
                        t,
                        t.main,
                        "S",
                        "SET #stock = #stock - :one",
                        ConditionExpression="#stock >= :one",
                        ExpressionAttributeNames={"#stock": "stock"},
                        **PLUS_ONE,
                    ),
                    _put(  # the replay's names come from the speedups' cache: they must still count as used
                        t,
                        t.main,
                        "O1",
                        state={"S": "placed"},
                        ConditionExpression="attribute_not_exists(#pk)",
                        ExpressionAttributeNames={"#pk": "pk"},
                    ),
                ]
            ]
            * 2,
            ClientRequestToken="order-1",
        ),
        moto_reader={"main": ["MODIFY S", "INSERT O1", "MODIFY S"]},
        expect=["ok", "TransactionCanceledException"],
    ),
    Scenario(
        "the same unconditional transaction twice: both commit, the second a MODIFY to the same image",
        _seed(),
        _transactions(*[lambda t: [_put(t, t.main, "P", n=_n(1)), _put(t, t.other, "Q", n=_n(1))]] * 2),
        expect=["ok", "ok"],
    ),
    Scenario(
        "an update fails on its operand's type after a put: ValidationException, nothing written",
        _seed(("main", "B", {"n": {"S": "not a number"}})),
        _transactions(
            lambda t: [
                _put(t, t.main, "A", n=_n(1)),
                _update(t, t.main, "B", "SET n = n + :one", **PLUS_ONE),
            ]
        ),
        moto_reader={"main": ["INSERT A"]},
        expect=["ValidationException"],
    ),
    Scenario(
        "two parts name one item: ValidationException after two parts applied, nothing written",
        _seed(("main", "B", {"n": _n(1)})),
        _transactions(
            lambda t: [
                _put(t, t.main, "A", n=_n(1)),
                _update(t, t.main, "B", "SET n = n + :one", **PLUS_ONE),
                _delete(t, t.main, "A"),
            ]
        ),
        moto_reader={"main": ["INSERT A", "MODIFY B"]},
        expect=["ValidationException"],
    ),
    Scenario(
        "an item over moto's size limit after a put: ValidationException, nothing written",
        _seed(),
        _transactions(lambda t: [_put(t, t.main, "A", n=_n(1)), _put(t, t.main, "BIG", big={"S": "x" * 405_000})]),
        moto_reader={"main": ["INSERT A"]},
        expect=["ValidationException"],
    ),
    Scenario(
        "a key short of the range key, with no condition: ValidationException, nothing written",
        _seed(),
        _transactions(
            lambda t: [
                _put(t, t.main, "A", n=_n(1)),
                {"Delete": {"TableName": t.main, "Key": {"pk": {"S": "A2"}}}},
            ],
            lambda t: [
                _put(t, t.main, "A", n=_n(1)),
                {
                    "Update": {
                        "TableName": t.main,
                        "Key": {"pk": {"S": "A2"}},
                        "UpdateExpression": "SET n = :one",
                        **PLUS_ONE,
                    }
                },
            ],
        ),
        moto_reader={"main": ["INSERT A"]},
        expect=["ValidationException", "ValidationException"],
    ),
    Scenario(
        "a part on a table that does not exist: a cancellation reason, the put before it undone",
        _seed(),
        _transactions(lambda t: [_put(t, t.main, "A", n=_n(1)), _delete(t, "no-such-table", "A")]),
        moto_reader={"main": ["INSERT A"]},
        expect=["TransactionCanceledException"],
    ),
    Scenario(
        "refused before the backend: 101 parts, an unused name, and a condition that does not parse (moto: a 500)",
        _seed(),
        _transactions(
            lambda t: [_put(t, t.main, f"P{i}") for i in range(101)],
            lambda t: [_put(t, t.main, "A"), _put(t, t.main, "B", ConditionExpression="n >=")],
            lambda t: [
                _put(t, t.main, "A"),
                _put(
                    t,
                    t.main,
                    "B",
                    ConditionExpression="attribute_not_exists(pk)",
                    ExpressionAttributeNames={"#unused": "n"},
                ),
            ],
        ),
        expect=["ValidationException", "500", "ValidationException"],
    ),
]


@pytest.fixture(scope="module")
def observed(_emulator: Emulator) -> dict[tuple[bool, bool], list[dict]]:
    """Every scenario's observations, per (transactions patch, speedups patch); run once per module."""
    runs = {}
    try:
        for config in ((False, False), (True, False), (False, True), (True, True)):
            _emulator.use(*config)
            runs[config] = [_emulator.observe(scenario) for scenario in SCENARIOS]
    finally:
        _emulator.use(transactions=True, speedups=True)
    return runs


def test_the_journal_answers_writes_and_streams_as_moto_does_but_for_detached_readers(observed):
    shipped, journal = observed[False, False], observed[True, False]
    for scenario, moto_own, ours in zip(SCENARIOS, shipped, journal, strict=True):
        # The answers (codes, messages, cancellation reasons with their items, in part order) agree
        assert [answer[0] if answer[0] == "ok" else answer[1] for answer in ours["answers"]] == scenario.expect
        assert ours["answers"] == moto_own["answers"], scenario.name
        # And so do the tables as they end and each stream read from its start
        assert ours["items"] == moto_own["items"], scenario.name
        assert ours["item_counts"] == moto_own["item_counts"], scenario.name
        assert ours["stream"] == moto_own["stream"], scenario.name
        # A reader opened before the scenario reads, with the journal, exactly the stream since then
        for role in ("main", "other"):
            since = len(ours["stream"][role]) - len(ours["reader"][role])
            assert ours["reader"][role] == ours["stream"][role][since:], scenario.name
            assert _brief(ours["reader"][role])[-1] == f"INSERT {MARKER}", scenario.name
        # MOTO_DETACHES_READERS: on moto, after a rollback, a reader of a table the transaction named
        # reads the undone writes and never the marker; other tables' readers are not affected
        detached = scenario.moto_reader or {}
        for role in ("main", "other"):
            if role in detached:
                assert _brief(moto_own["reader"][role]) == detached[role], scenario.name
            else:
                assert moto_own["reader"][role] == ours["reader"][role], scenario.name


def test_the_scenarios_exercise_what_they_claim(observed):
    (answers_of_cancelled,) = [
        seen["answers"]
        for scenario, seen in zip(SCENARIOS, observed[True, True], strict=True)
        if scenario.name.startswith("several")
    ]
    reasons = answers_of_cancelled[0][3]
    assert [r["Code"] for r in reasons] == [
        "ConditionalCheckFailed",
        "None",
        "ConditionalCheckFailed",
        "None",
        "None",
        "ConditionalCheckFailed",
    ]
    stream_of_commit = observed[True, True][0]["stream"]["main"]
    assert [(r["eventName"], "OldImage" in r["dynamodb"], "NewImage" in r["dynamodb"]) for r in stream_of_commit] == [
        ("INSERT", False, True),
        ("INSERT", False, True),
        ("INSERT", False, True),
        ("MODIFY", True, True),
        ("REMOVE", True, False),
        ("INSERT", False, True),
    ]


def test_the_speedups_change_nothing_with_or_without_the_journal(observed):
    assert observed[True, True] == observed[True, False]
    assert observed[False, True] == observed[False, False]


def test_a_part_naming_two_operations_writes_nothing_where_moto_keeps_the_parts_before_it(emulator):
    # MOTO_KEEPS_PARTS_BEFORE_A_TWO_OPERATION_PART: botocore sends such a part (the shape is not a
    # union), moto's response layer lets it through and its backend raises before rolling back.
    def run(transactions: bool) -> tuple[list, list]:
        emulator.use(transactions=transactions, speedups=True)
        t = emulator.fresh_tables()
        parts = [_put(t, t.main, "A"), {**_put(t, t.main, "B"), **_delete(t, t.main, "C")}]
        answer = _outcome(emulator.db.transact_write_items, TransactItems=parts)
        return t.anonymise(answer), [item["pk"]["S"] for item in _scan(emulator.db, t.main)]

    moto_answer, moto_items = run(transactions=False)
    our_answer, our_items = run(transactions=True)
    assert (
        our_answer
        == moto_answer
        == [
            "error",
            "ValidationException",
            "TransactItems can only contain one of Check, Put, Update or Delete",
            None,
        ]
    )
    assert moto_items == ["A"]
    assert our_items == []


# -- the guard -------------------------------------------------------------------------------------
def test_the_pinned_moto_is_the_one_in_requirements_dev():
    (pin,) = re.findall(r"^moto(?:\[[^\]]*\])?==(\S+)", REQUIREMENTS_DEV.read_text(), flags=re.MULTILINE)
    assert pin == moto_pin.MOTO_VERSION
    assert moto_pin.installed_moto() == pin  # the venv holds the pin too


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.__name__.rsplit(".", 1)[-1])
def test_a_patch_refuses_another_moto_and_says_which(emulator, patch, monkeypatch):
    patch.uninstall()
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(moto_pin.MotoVersionMismatch) as refused:
        patch.install()
    message = str(refused.value)
    assert patch.__name__ in message
    assert "moto 5.2.5" in message
    assert "moto 5.3.0" in message
    assert "requirements-dev.txt" in message
    assert not patch.installed()


def _moto_own() -> dict[str, Any]:
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    return {
        "transact_write_items": DynamoDBBackend.__dict__["transact_write_items"],
        "parse": ConditionExpressionParser.__dict__["parse"],
        "make": UpdateExpressionParser.__dict__["make"],
        "__init__": Item.__dict__["__init__"],
    }


def test_uninstall_restores_what_moto_shipped_and_installing_twice_is_harmless(emulator):
    # Given moto as shipped (what these modules saved at import, before the server patched it)
    emulator.use(transactions=False, speedups=False)
    shipped = _moto_own()
    assert shipped["transact_write_items"].__module__ == "moto.dynamodb.models"
    assert shipped["parse"].__module__ == "moto.dynamodb.comparisons"
    assert isinstance(shipped["make"], classmethod)
    assert shipped["make"].__func__.__module__ == "moto.dynamodb.parsing.expressions"
    assert shipped["__init__"].__module__ == "moto.dynamodb.models.dynamo_type"
    # When each patch is installed twice, then uninstalled twice
    for patch in PATCHES:
        patch.install()
        patch.install()
        assert patch.installed()
    assert all(_moto_own()[name] is not shipped[name] for name in shipped)
    for patch in PATCHES:
        patch.uninstall()
        patch.uninstall()
        assert not patch.installed()
    # Then moto holds its very own functions again
    assert all(_moto_own()[name] is shipped[name] for name in shipped)
