"""Many buyers at once against the serialised local server, through the service layer: a flash
sale never sells a unit twice, never lets a buyer past the limit, and every buyer gets a definite
answer, also with throttling, transaction conflicts and lost responses injected on the hot items."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.local.faults import FaultInjector, Kind
from shared.data.stores.flash_sales import DynamoShards
from shared.flash_sales.service import FlashSales, FlashSaleSettings
from shared.kernel.errors import LimitReached, OutOfStock, SoldOut, TemporarilyUnavailable
from tests.functional.flash_support import books, buy, flash_service, given_sale
from tests.functional.orders_support import given_catalogue

pytestmark = pytest.mark.load

BUYERS = 200
ATTEMPTS = 3
UNITS = 40


def crowd(flash: FlashSales, sale, buyers: int = BUYERS, attempts: int = ATTEMPTS, wave: int = 0) -> Counter[str]:
    """Every buyer tries `attempts` times, each attempt with its own Idempotency-Key; a 503 is
    retried with the same key (as a client should)."""

    def one_buyer(i: int) -> list[str]:
        answers = []
        for attempt in range(attempts):
            answers.append(attempt_with_retries(flash, sale, f"b-{i}", f"b-{i}-{wave}-{attempt}"))
        return answers

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = [answer for answers in pool.map(one_buyer, range(buyers)) for answer in answers]
    return Counter(results)


def attempt_with_retries(flash: FlashSales, sale, customer: str, key: str, retries: int = 3) -> str:
    for _ in range(retries + 1):
        try:
            buy(flash, sale, customer, key=key)
            return "201"
        except SoldOut:
            return "SOLD_OUT"
        except OutOfStock:
            return "OUT_OF_STOCK"
        except LimitReached:
            return "LIMIT_REACHED"
        except TemporarilyUnavailable:
            continue
    return "503"


def flash_sales(contended_s: float = 10.0) -> FlashSales:
    """The service on the system clock (the crowd's threads run in real time), with a reconciler
    that judges units as soon as it has seen them."""
    return flash_service(settings=FlashSaleSettings(settle_s=0, contended_s=contended_s))


def settle(flash: FlashSales) -> None:
    """Let the reconciler give back whatever a lost response left unclaimed (settle time 0: the
    first run notes the shards' counts, the second judges them)."""
    flash.reconcile()
    flash.reconcile()


def test_a_crowd_buys_exactly_the_units_there_are(table):
    # Given 40 units with a limit of one per buyer
    given_catalogue({("TEA-1", "WH"): 100_000})  # a sale holds its quantity out of WH
    flash = flash_sales()
    sale = given_sale(flash, quantity=UNITS, per_user_limit=1, peak=4000)
    # When 200 buyers try three times each, all at once
    answers = crowd(flash, sale)
    # Then exactly 40 orders exist, one per winning buyer, and the shards are empty
    state = books(sale)
    assert answers["201"] == UNITS and state.live_orders == UNITS
    assert state.on_shards == 0 and state.oversold == 0 and state.over_limit == 0
    assert state.balanced and state.unclaimed == 0
    assert set(answers) <= {"201", "SOLD_OUT", "LIMIT_REACHED"}


def test_the_same_crowd_with_faults_on_the_hot_items(table):
    # Given 10% throttling, conflicts and lost responses on every flash-sale item and order transaction
    given_catalogue({("TEA-1", "WH"): 100_000})  # a sale holds its quantity out of WH
    flash = flash_sales()
    sale = given_sale(flash, quantity=UNITS, per_user_limit=1, peak=4000)
    faults = FaultInjector(
        rate=0.10,
        seed=4,
        kinds=[Kind.THROTTLING, Kind.THROUGHPUT, Kind.CONFLICT, Kind.TIMEOUT_UNSENT, Kind.TIMEOUT_APPLIED],
        operations=["UpdateItem", "TransactWriteItems"],
        partitions=lambda pk: pk.startswith(("FLASH#", "ORDER#")),
    )
    # When the crowd buys, the reconciler repairs what lost responses left, and the crowd tries again
    with faults.attached():
        answers = crowd(flash, sale)
        settle(flash)
        answers += crowd(flash, sale, attempts=1, wave=1)
    settle(flash)
    # Then faults happened, every answer is a definite one, nothing is oversold, nobody is over
    # the limit, and every unit is in an order or back on a shard
    assert faults.total > 20, faults.report()
    assert set(answers) <= {"201", "SOLD_OUT", "LIMIT_REACHED", "OUT_OF_STOCK", "503"}
    state = books(sale)
    assert state.oversold == 0 and state.over_limit == 0
    assert state.balanced and state.unclaimed == 0
    assert state.live_orders == answers["201"]
    assert state.live_orders + state.on_shards == UNITS


@pytest.mark.parametrize("rate", [0.05, 0.20])
def test_conflicts_on_the_shards_move_buyers_between_the_two_paths_and_lose_nothing(table, rate):
    # Given transaction conflicts on the shards at 5% / 20% of the calls that touch one, and a
    # process that goes back to the one-transaction path a moment after each conflict
    given_catalogue({("TEA-1", "WH"): 100_000})  # a sale holds its quantity out of WH
    flash = flash_sales(contended_s=0.05)
    sale = given_sale(flash, quantity=UNITS, per_user_limit=1, peak=4000)
    held = FaultInjector(
        rate=rate,
        seed=7,
        kinds=[Kind.CONFLICT],
        operations=["UpdateItem", "TransactWriteItems"],
        partitions=lambda pk: "#SHARD#" in pk,
    )
    with held.attached():
        answers = crowd(flash, sale)
    # Then both paths sold units, every answer is definite, and the books balance to the unit
    levels = DynamoShards().levels(sale)
    assert held.total > 0, held.report()
    assert sum(level.ordered for level in levels) > 0 and sum(level.taken for level in levels) > 0
    assert set(answers) <= {"201", "SOLD_OUT", "LIMIT_REACHED", "OUT_OF_STOCK", "503"}
    state = books(sale)
    assert answers["201"] == state.live_orders == UNITS
    assert state.on_shards == 0 and state.oversold == 0 and state.over_limit == 0
    assert state.balanced and state.unclaimed == 0
