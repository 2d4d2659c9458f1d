"""DESIGN.md's fact about the emulator, shown: moto's threaded server oversells a conditional
decrement when many clients race, and our serialised server (what `make dev` and every test use)
sells exactly the stock, as real DynamoDB does.

moto's `update_item` reads the item, checks the condition, computes the new value and writes it,
with no lock. Two requests interleaved inside that window both pass `available >= :one` on the
same value and one decrement is lost. How often the interleaving happens depends on the machine;
a short GIL switch interval (100 µs instead of 5 ms) makes the server threads interleave often
enough that a few seconds show it on any machine. Both servers run under the same interval, so
ours is held to the same pressure that breaks moto's.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

from infra.local.moto_server import BackgroundMotoServer
from infra.local.resources import table_definition

pytestmark = pytest.mark.load

CLIENTS = 100
STOCK = 300
MAX_ROUNDS = 5  # bounded: about 2 s a round
SWITCH_INTERVAL_S = 1e-4
KEY = {"pk": {"S": "PRODUCT#HOT-1"}, "sk": {"S": "STOCK#WH"}}


@dataclass
class Round:
    successes: int
    left: int
    errors: list[str]


@contextmanager
def frequent_thread_switches() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@contextmanager
def emulator_with_stock_table(serialised: bool) -> Iterator[tuple[list, str]]:
    """A moto server on a free port, a table made from infra/template.yaml, one client per racer."""
    with BackgroundMotoServer(serialised=serialised) as server:
        session = boto3.session.Session(region_name="us-east-1")
        # No retries: a retried decrement whose first response was lost would blur the count.
        config = Config(max_pool_connections=1, retries={"mode": "standard", "max_attempts": 1})
        clients = [session.client("dynamodb", endpoint_url=server.endpoint, config=config) for _ in range(CLIENTS)]
        table = f"stock-{uuid.uuid4().hex[:8]}"
        clients[0].create_table(**table_definition(table))
        yield clients, table


def race(clients: list, table: str, stock: int) -> Round:
    """Every client decrements `available` under `available >= 1` until the condition fails."""
    clients[0].put_item(TableName=table, Item={**KEY, "available": {"N": str(stock)}})
    counts = [0] * len(clients)
    errors: list[str] = []
    start = threading.Barrier(len(clients))

    def buy(index: int) -> None:
        client = clients[index]
        start.wait()
        while True:
            try:
                client.update_item(
                    TableName=table,
                    Key=KEY,
                    UpdateExpression="SET available = available - :one",
                    ConditionExpression="available >= :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
            except client.exceptions.ConditionalCheckFailedException:
                return  # sold out, as this client sees it
            except Exception as exc:  # anything else spoils the count; report it
                errors.append(repr(exc))
                return
            counts[index] += 1

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    left = int(clients[0].get_item(TableName=table, Key=KEY, ConsistentRead=True)["Item"]["available"]["N"])
    return Round(successes=sum(counts), left=left, errors=errors)


def test_moto_threaded_server_oversells_a_conditional_decrement():
    # Given moto's own threaded server and one stock item of STOCK units
    rounds: list[Round] = []
    deadline = time.monotonic() + 30
    with frequent_thread_switches(), emulator_with_stock_table(serialised=False) as (clients, table):
        # When 100 clients race to buy it, round after round until one shows the race (bounded)
        while len(rounds) < MAX_ROUNDS and time.monotonic() < deadline:
            rounds.append(race(clients, table, STOCK))
            assert rounds[-1].errors == []
            if rounds[-1].successes > STOCK:
                break
    # Then more units were sold than existed: conditional writes are not atomic there
    assert rounds[-1].successes > STOCK, f"no oversell in {len(rounds)} rounds: {rounds}"


def test_our_serialised_server_sells_exactly_the_stock():
    # Given our serialised server, under the same thread pressure
    with frequent_thread_switches(), emulator_with_stock_table(serialised=True) as (clients, table):
        # When 100 clients race to buy the same item, twice
        outcomes = [race(clients, table, STOCK) for _ in range(2)]
    # Then each round sold exactly the stock and left nothing, as DynamoDB would
    for outcome in outcomes:
        assert outcome.errors == []
        assert (outcome.successes, outcome.left) == (STOCK, 0)
