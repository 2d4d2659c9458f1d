"""Giving units back and the reconciler, on the in-memory stores: every unit the contended path
takes ends up claimed exactly once, by an order or by a VOID claim that puts it back on a shard
(docs/flash-sales.md, "Every unit is claimed exactly once")."""

from __future__ import annotations

import pytest

from shared.flash_sales.give_back import UnitReturns
from shared.flash_sales.model import ClaimStatus, FlashSale, NewFlashSale, SaleDefaults, Take, UnitClaim
from shared.flash_sales.reconcile import Reconciler
from shared.kernel.clock import FakeClock
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from tests.fakes.flash_sales import FlashTables, MemorySales, MemoryShards

PRODUCT_PRICE_FEN = 10_000


class Product:
    sku, name, price_fen = "TEA-1", "龙井", PRODUCT_PRICE_FEN


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tables() -> FlashTables:
    return FlashTables()


def given_sale(tables: FlashTables, clock: FakeClock, quantity: int = 2, peak: int = 500) -> FlashSale:
    now = clock.now_ms()
    wanted = NewFlashSale("TEA-1", 5000, quantity, 1, now - 1000, now + 3_600_000, 900, peak)
    sale = FlashSale.plan(f"fs-{len(tables.sales)}", Product(), wanted, SaleDefaults(), now)
    MemorySales(tables).create(sale, IdempotentRequest.of("test", None, {}), StoredResponse(201, {}), now)
    return sale


def on_shards(tables: FlashTables, sale: FlashSale) -> int:
    return sum(level.remaining for level in MemoryShards(tables).levels(sale))


def test_units_given_back_are_on_their_shard_once_and_claimed_void(tables, clock):
    sale = given_sale(tables, clock)
    shards = MemoryShards(tables)
    taken = shards.take(sale.sale_id, 0, 1)
    outcome = UnitReturns(shards, clock).give_back(sale, [taken])
    assert outcome.returned == [taken] and on_shards(tables, sale) == 2
    # Giving the same units back again finds them voided: nothing moves twice
    again = UnitReturns(shards, clock).give_back(sale, [taken])
    assert again.voided_before == [taken] and again.returned == [] and on_shards(tables, sale) == 2


def test_units_an_order_claimed_are_not_given_back(tables, clock):
    # Given a take its order claimed (the order's transaction applied, its answer was lost)
    sale = given_sale(tables, clock)
    shards = MemoryShards(tables)
    mine, other = shards.take(sale.sale_id, 0, 1), shards.take(sale.sale_id, 0, 1)
    tables.claims[(sale.sale_id, 0, mine.first_unit)] = (UnitClaim(mine.first_unit, 1, ClaimStatus.ORDER), "o-1")
    # When both are given back, the claimed one stays with its order and the other goes back
    outcome = UnitReturns(shards, clock).give_back(sale, [mine, other])
    assert outcome.claimed_by_order == [mine] and outcome.returned == [other]
    assert on_shards(tables, sale) == 1


def test_a_busy_shard_leaves_the_units_to_the_reconciler(tables, clock):
    sale = given_sale(tables, clock)
    shards = MemoryShards(tables)
    taken = shards.take(sale.sale_id, 0, 1)
    tables.busy.add((sale.sale_id, 0))
    outcome = UnitReturns(shards, clock).give_back(sale, [taken])
    assert outcome.unsettled == [taken] and on_shards(tables, sale) == 1


def test_an_unclaimed_unit_is_judged_only_after_the_settle_time_then_given_back(tables, clock):
    # Given a purchase that took a unit and died before writing its order
    sale = given_sale(tables, clock)
    shards = MemoryShards(tables)
    lost = shards.take(sale.sale_id, 0, 1)
    reconciler = Reconciler(MemorySales(tables), shards, clock, settle_s=15)
    # When the reconciler sees it, it waits the settle time before judging
    assert reconciler.run() == 0
    clock.advance(14.999)
    assert reconciler.run() == 0 and on_shards(tables, sale) == 1
    clock.advance(0.001)
    assert reconciler.run() == 1
    # Then the unit is back, claimed VOID, so the dead purchase could never claim it now
    assert on_shards(tables, sale) == 2
    assert tables.claim_of(sale.sale_id, lost) == UnitClaim(lost.first_unit, 1, ClaimStatus.VOID)
    # And later runs find nothing more
    clock.advance(60)
    assert reconciler.run() == 0 and reconciler.run() == 0 and on_shards(tables, sale) == 2


def test_units_claimed_by_orders_are_left_alone_and_only_the_gaps_go_back(tables, clock):
    sale = given_sale(tables, clock, quantity=10, peak=500)
    shards = MemoryShards(tables)
    takes = [shards.take(sale.sale_id, 0, 2), shards.take(sale.sale_id, 0, 1), shards.take(sale.sale_id, 0, 3)]
    for taken in (takes[0], takes[2]):
        tables.claims[(sale.sale_id, 0, taken.first_unit)] = (
            UnitClaim(taken.first_unit, taken.qty, ClaimStatus.ORDER),
            "o",
        )
    reconciler = Reconciler(MemorySales(tables), shards, clock, settle_s=0)
    reconciler.run()
    assert reconciler.run() == 1
    assert on_shards(tables, sale) == 5 and tables.claim_of(sale.sale_id, takes[1]) is not None


def test_units_the_reconciler_could_not_give_back_are_tried_again_on_the_next_run(tables, clock):
    sale = given_sale(tables, clock)
    shards = MemoryShards(tables)
    reconciler = Reconciler(MemorySales(tables), shards, clock, settle_s=0)
    taken = shards.take(sale.sale_id, 0, 1)
    reconciler.run()  # seen
    tables.busy.add((sale.sale_id, 0))
    assert reconciler.run() == 0  # could not settle now: the marks stay where they were
    tables.busy.clear()
    assert reconciler.run() == 1 and tables.claim_of(sale.sale_id, taken) is not None


def test_two_reconcilers_never_both_move_the_marks(tables, clock):
    sale = given_sale(tables, clock)
    shards = MemoryShards(tables)
    marks = shards.marks(sale.sale_id)
    assert shards.save_marks(sale.sale_id, marks)
    assert not shards.save_marks(sale.sale_id, marks)  # the version moved on


def test_a_sale_not_started_is_not_reconciled(tables, clock):
    now = clock.now_ms()
    wanted = NewFlashSale("TEA-1", 5000, 2, 1, now + 60_000, now + 120_000, 900, 500)
    sale = FlashSale.plan("fs-later", Product(), wanted, SaleDefaults(), now)
    MemorySales(tables).create(sale, IdempotentRequest.of("t", None, {}), StoredResponse(201, {}), now)
    MemoryShards(tables).take(sale.sale_id, 0, 1)
    reconciler = Reconciler(MemorySales(tables), MemoryShards(tables), clock, settle_s=0)
    assert reconciler.run() == 0 and reconciler.run() == 0


def test_takes_number_the_units_of_their_shard(tables, clock):
    sale = given_sale(tables, clock, quantity=8, peak=1000)
    shards = MemoryShards(tables)
    assert shards.take(sale.sale_id, 1, 2) == Take(shard=1, last_unit=2, qty=2)
    assert shards.take(sale.sale_id, 1, 1).first_unit == 3
