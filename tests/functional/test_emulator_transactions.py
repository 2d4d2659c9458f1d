"""The emulator's TransactWriteItems (infra/local/moto_transactions.py): a cancelled transaction
leaves no trace, and the cost of one does not grow with the table."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def dynamodb(table: dict, moto_endpoint: str):
    return boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")


def _key(pk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": "X"}}


def _stream_records(table: dict, moto_endpoint: str) -> int:
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, region_name="us-east-1")
    shards = streams.describe_stream(StreamArn=table["stream_arn"])["StreamDescription"]["Shards"]
    total = 0
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=table["stream_arn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        total += len(streams.get_records(ShardIterator=iterator, Limit=1000)["Records"])
    return total


def test_a_cancelled_transaction_leaves_items_and_stream_as_they_were(table, dynamodb, moto_endpoint):
    # Given an existing item B and the stream's records so far
    name = table["table"]
    dynamodb.put_item(TableName=name, Item={**_key("B"), "n": {"N": "1"}})
    records_before = _stream_records(table, moto_endpoint)
    # When a transaction puts A, updates B, deletes B's neighbour and fails on its last condition
    parts = [
        {"Put": {"TableName": name, "Item": {**_key("A"), "n": {"N": "7"}}}},
        {
            "Update": {
                "TableName": name,
                "Key": _key("B"),
                "UpdateExpression": "SET n = n + :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {
            "Put": {
                "TableName": name,
                "Item": {**_key("C"), "n": {"N": "1"}},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ]
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=parts)
    # Then it is cancelled naming the failed part, A does not exist, B is unchanged, and no stream record was added
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert "Item" not in dynamodb.get_item(TableName=name, Key=_key("A"))
    assert dynamodb.get_item(TableName=name, Key=_key("B"))["Item"]["n"] == {"N": "1"}
    assert _stream_records(table, moto_endpoint) == records_before


def test_a_committed_transaction_applies_every_part(table, dynamodb):
    name = table["table"]
    dynamodb.put_item(TableName=name, Item={**_key("B"), "n": {"N": "1"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {**_key("A"), "n": {"N": "7"}}}},
            {
                "Update": {
                    "TableName": name,
                    "Key": _key("B"),
                    "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": name,
                    "Key": _key("Z"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
    )
    assert dynamodb.get_item(TableName=name, Key=_key("A"))["Item"]["n"] == {"N": "7"}
    assert dynamodb.get_item(TableName=name, Key=_key("B"))["Item"]["n"] == {"N": "2"}
    assert "Item" not in dynamodb.get_item(TableName=name, Key=_key("Z"))


def test_a_transaction_costs_the_same_on_a_big_table(table, dynamodb):
    # Given a table of 3,000 items (moto's own deep copy made one transaction cost ~0.5 s here)
    name = table["table"]
    for start in range(0, 3000, 25):  # BatchWriteItem's most: 120 requests instead of 3,000
        items = [
            {"PutRequest": {"Item": {**_key(f"F{i}"), "body": {"S": "x" * 200}}}} for i in range(start, start + 25)
        ]
        assert not dynamodb.batch_write_item(RequestItems={name: items})["UnprocessedItems"]
    # When 50 five-part transactions run
    started = time.perf_counter()
    for i in range(50):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {**_key(f"T{i}-{j}"), "n": {"N": "1"}}}} for j in range(5)
            ]
        )
    # Then they take milliseconds each, not a copy of the table each
    assert time.perf_counter() - started < 5.0
