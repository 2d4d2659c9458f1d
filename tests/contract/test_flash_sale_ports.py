"""The flash-sale ports (shared.flash_sales.ports): one class of tests run against the in-memory
stores the unit tests use (tests/fakes/flash_sales.py) and against the DynamoDB stores on a moto
table from infra/template.yaml, so the fakes cannot drift from the stores: what each write does,
what a refused write raises, and that a refused write leaves nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

import pytest

from shared.flash_sales.model import (
    ClaimStatus,
    FlashSale,
    NewFlashSale,
    ReconcileMarks,
    SaleDefaults,
    ShardMark,
    ShardShort,
    Take,
    UnitClaim,
    UnitsClaimed,
    new_sale_id,
)
from shared.flash_sales.ports import PurchaseParts, SaleStore, ShardStore
from shared.kernel.clock import now_ms
from shared.kernel.errors import IdempotencyKeyReused, LimitReached, OutOfStock, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.ports import OrderingUnitOfWork
from tests.fakes.flash_sales import FlashTables, MemoryPurchaseParts, MemorySales, MemoryShards
from tests.fakes.ordering import MemoryUnitsOfWork, OrderingTables


class Product:
    sku, name, price_fen = "TEA-1", "龙井", 10_000


STOCKED = 100  # TEA-1's on_hand at WH: every sale holds its quantity out of it


@dataclass
class FlashPorts:
    sales: SaleStore
    shards: ShardStore
    parts: PurchaseParts
    unit_of_work: Callable[..., OrderingUnitOfWork]  # OrderingUnitOfWorkFactory
    busy: Callable[[FlashSale, int], AbstractContextManager[object]]  # the shard held by a transaction
    stock: Callable[[str, str], tuple[int, int, int]]  # (on_hand, reserved, available) at a location


@pytest.fixture(params=["memory", "dynamodb"])
def ports(request: pytest.FixtureRequest) -> FlashPorts:
    if request.param == "memory":
        ordering = OrderingTables()
        ordering.put_stock("TEA-1", "WH", STOCKED)
        tables = FlashTables(lock=ordering.lock, stock=ordering.stock)

        class Busy:
            def __init__(self, sale: FlashSale, shard: int) -> None:
                self.key = (sale.sale_id, shard)

            def __enter__(self) -> None:
                tables.busy.add(self.key)

            def __exit__(self, *exc: object) -> None:
                tables.busy.discard(self.key)

        parts = MemoryPurchaseParts(tables)
        units = MemoryUnitsOfWork(ordering)
        return FlashPorts(MemorySales(tables), MemoryShards(tables), parts, units, Busy, ordering.stock_of)
    request.getfixturevalue("table")  # a fresh moto table, bound as the app's
    from shared.data.items import StockItem

    pk, sk = StockItem.key("TEA-1", "WH")
    StockItem(pk, sk, sku="TEA-1", location="WH", on_hand=STOCKED, reserved=0, available=STOCKED).save()
    from infra.local.faults import FaultInjector, Kind
    from shared.data.stores.flash_sales import DynamoFlashSales, DynamoPurchaseParts, DynamoShards
    from shared.data.stores.ordering_uow import unit_of_work

    def busy(sale: FlashSale, shard: int) -> AbstractContextManager[object]:
        held = FaultInjector(
            rate=1.0,
            kinds=[Kind.CONFLICT],
            operations=["UpdateItem", "TransactWriteItems"],
            partitions=lambda pk: pk == f"FLASH#{sale.sale_id}#SHARD#{shard}",
        )
        return held.attached()

    def stock(sku: str, location: str) -> tuple[int, int, int]:
        item = StockItem.get(*StockItem.key(sku, location), consistent_read=True)
        return int(item.on_hand), int(item.reserved), int(item.available)

    return FlashPorts(DynamoFlashSales(), DynamoShards(), DynamoPurchaseParts(), unit_of_work, busy, stock)


def planned(quantity: int = 4, peak: int = 1000, per_user_limit: int = 2, sale_id: str | None = None) -> FlashSale:
    now = now_ms()
    wanted = NewFlashSale("TEA-1", 5000, quantity, per_user_limit, now - 1000, now + 3_600_000, 900, peak)
    return FlashSale.plan(sale_id or new_sale_id(now), Product(), wanted, SaleDefaults(), now)


def created(ports: FlashPorts, **changes: int) -> FlashSale:
    sale = planned(**changes)
    ports.sales.create(sale, IdempotentRequest.of("flash-sales:admin", None, {}), StoredResponse(201, {}), now_ms())
    return sale


def remaining(ports: FlashPorts, sale: FlashSale) -> list[int]:
    return [level.remaining for level in ports.shards.levels(sale)]


class TestSaleStore:
    def test_a_sale_is_created_with_its_units_split_over_its_shards(self, ports: FlashPorts):
        sale = created(ports, quantity=10, peak=1500)
        assert ports.sales.get(sale.sale_id) == sale
        assert remaining(ports, sale) == [4, 3, 3]
        assert [level.shard for level in ports.shards.levels(sale)] == [0, 1, 2]
        assert ports.shards.marks(sale.sale_id) == ReconcileMarks({}, 0)

    def test_a_sale_holds_its_quantity_at_its_location_or_is_not_created(self, ports: FlashPorts):
        sale = created(ports, quantity=10)
        assert ports.stock("TEA-1", "WH") == (STOCKED, 10, STOCKED - 10)
        with pytest.raises(OutOfStock) as refused:
            created(ports, quantity=STOCKED - 9)
        assert refused.value.details == {"sku": "TEA-1", "location": "WH"}
        assert ports.stock("TEA-1", "WH") == (STOCKED, 10, STOCKED - 10)
        with pytest.raises(OutOfStock):
            ports.sales.create(
                replace(planned(), location="S404"), IdempotentRequest.of("a", None, {}), StoredResponse(201, {}), 0
            )
        assert ports.sales.get(sale.sale_id) == sale

    def test_an_unknown_sale_is_none(self, ports: FlashPorts):
        assert ports.sales.get("fs000000000000000000000000") is None

    def test_a_replayed_key_answers_the_first_response_and_creates_nothing(self, ports: FlashPorts):
        request = IdempotentRequest.of("flash-sales:admin", "k-1", {"sku": "TEA-1"})
        first, second = planned(sale_id="fs-first"), planned(sale_id="fs-second")
        answer = ports.sales.create(first, request, StoredResponse(201, {"flash_sale_id": "fs-first"}), now_ms())
        again = ports.sales.create(second, request, StoredResponse(201, {"flash_sale_id": "fs-second"}), now_ms())
        assert answer == again == StoredResponse(201, {"flash_sale_id": "fs-first"})
        assert ports.sales.get("fs-second") is None
        with pytest.raises(IdempotencyKeyReused):
            other = IdempotentRequest.of("flash-sales:admin", "k-1", {"sku": "TEA-2"})
            ports.sales.create(planned(sale_id="fs-third"), other, StoredResponse(201, {}), now_ms())

    def test_sales_ending_at_or_after_a_time_are_found(self, ports: FlashPorts):
        sale = created(ports)
        assert sale.sale_id in [found.sale_id for found in ports.sales.ending_after(sale.ends_at_ms)]
        assert sale.sale_id not in [found.sale_id for found in ports.sales.ending_after(sale.ends_at_ms + 1)]


class TestShardStore:
    def test_a_take_numbers_the_units_it_takes(self, ports: FlashPorts):
        sale = created(ports, quantity=6, peak=500)
        assert ports.shards.take(sale.sale_id, 0, 2) == Take(shard=0, last_unit=2, qty=2)
        assert ports.shards.take(sale.sale_id, 0, 3) == Take(shard=0, last_unit=5, qty=3)
        level = ports.shards.levels(sale)[0]
        assert (level.remaining, level.taken, level.ordered) == (1, 5, 0)

    def test_a_take_of_more_than_the_shard_has_says_what_it_has_and_takes_nothing(self, ports: FlashPorts):
        sale = created(ports, quantity=2, peak=500)
        with pytest.raises(ShardShort) as short:
            ports.shards.take(sale.sale_id, 0, 3)
        assert short.value.remaining == 2 and remaining(ports, sale) == [2]

    def test_a_take_on_a_busy_shard_is_temporarily_unavailable(self, ports: FlashPorts):
        sale = created(ports, quantity=2, peak=500)
        with ports.busy(sale, 0), pytest.raises(TemporarilyUnavailable):
            ports.shards.take(sale.sale_id, 0, 1)
        assert remaining(ports, sale) == [2]

    def test_a_give_back_voids_the_claims_and_puts_the_units_back_once(self, ports: FlashPorts):
        sale = created(ports, quantity=4, peak=1000)
        takes = [ports.shards.take(sale.sale_id, 0, 1), ports.shards.take(sale.sale_id, 1, 2)]
        ports.shards.give_back(sale.sale_id, takes, now_ms())
        assert remaining(ports, sale) == [2, 2]
        assert [level.returned for level in ports.shards.levels(sale)] == [1, 2]
        assert ports.shards.claims_between(sale.sale_id, 1, 0, 2) == [UnitClaim(1, 2, ClaimStatus.VOID)]
        with pytest.raises(UnitsClaimed) as again:
            ports.shards.give_back(sale.sale_id, takes[:1], now_ms())
        assert again.value.claimed == {takes[0]: ClaimStatus.VOID} and remaining(ports, sale) == [2, 2]

    def test_a_give_back_that_meets_one_claimed_take_gives_back_nothing(self, ports: FlashPorts):
        sale = created(ports, quantity=4, peak=500)
        first, second = ports.shards.take(sale.sale_id, 0, 1), ports.shards.take(sale.sale_id, 0, 1)
        ports.shards.give_back(sale.sale_id, [first], now_ms())
        with pytest.raises(UnitsClaimed) as claimed:
            ports.shards.give_back(sale.sale_id, [first, second], now_ms())
        assert claimed.value.claimed == {first: ClaimStatus.VOID} and remaining(ports, sale) == [3]

    def test_a_settle_gives_what_the_shard_holds_back_to_the_location_once(self, ports: FlashPorts):
        sale = created(ports, quantity=4, peak=500)
        ports.shards.take(sale.sale_id, 0, 1)
        assert ports.shards.settle(sale, 0, 4) is False  # the shard holds 3: nothing written
        assert ports.stock("TEA-1", "WH") == (STOCKED, 4, STOCKED - 4)
        assert ports.shards.settle(sale, 0, 3) is True
        assert remaining(ports, sale) == [0]
        assert ports.stock("TEA-1", "WH") == (STOCKED, 1, STOCKED - 1)
        assert ports.shards.settle(sale, 0, 3) is False
        assert ports.stock("TEA-1", "WH") == (STOCKED, 1, STOCKED - 1)

    def test_claims_are_read_in_unit_order_within_the_bounds(self, ports: FlashPorts):
        sale = created(ports, quantity=10, peak=500)
        takes = [ports.shards.take(sale.sale_id, 0, qty) for qty in (1, 2, 1, 3)]
        ports.shards.give_back(sale.sale_id, [takes[3], takes[1]], now_ms())
        assert ports.shards.claims_between(sale.sale_id, 0, 0, 7) == [
            UnitClaim(2, 2, ClaimStatus.VOID),
            UnitClaim(5, 3, ClaimStatus.VOID),
        ]
        assert ports.shards.claims_between(sale.sale_id, 0, 2, 4) == []

    def test_marks_move_only_from_the_version_read(self, ports: FlashPorts):
        sale = created(ports)
        read = ports.shards.marks(sale.sale_id)
        moved = ReconcileMarks({0: ShardMark(0, 3, 1_000), 1: ShardMark(2, 2, 0)}, read.version)
        assert ports.shards.save_marks(sale.sale_id, moved)
        assert ports.shards.marks(sale.sale_id) == ReconcileMarks(moved.shards, read.version + 1)
        assert not ports.shards.save_marks(sale.sale_id, ReconcileMarks({}, read.version))
        assert ports.shards.marks(sale.sale_id).shards == moved.shards


class TestPurchaseParts:
    def test_a_take_in_an_order_moves_the_shard_with_the_order_and_numbers_nothing(self, ports: FlashPorts):
        sale = created(ports, quantity=4, peak=1000)
        uow = ports.unit_of_work()
        ports.parts.take_in_order(uow, sale.sale_id, 1, 2)
        ports.parts.count_purchase(uow, sale, "c-1", 2)
        uow.commit()
        level = ports.shards.levels(sale)[1]
        assert (level.remaining, level.ordered, level.taken) == (0, 2, 0)

    def test_a_shard_short_of_the_units_refuses_the_whole_unit_of_work(self, ports: FlashPorts):
        sale = created(ports, quantity=4, peak=1000)
        uow = ports.unit_of_work()
        ports.parts.take_in_order(uow, sale.sale_id, 0, 3)
        ports.parts.count_purchase(uow, sale, "c-1", 2)
        with pytest.raises(ShardShort) as short:
            uow.commit()
        assert short.value.remaining == 2 and remaining(ports, sale) == [2, 2]
        # And nothing else applied: the buyer may still buy the whole limit
        again = ports.unit_of_work()
        ports.parts.count_purchase(again, sale, "c-1", 2)
        again.commit()

    def test_the_buyer_count_stops_at_the_limit(self, ports: FlashPorts):
        sale = created(ports, per_user_limit=2)
        for qty in (1, 1):
            uow = ports.unit_of_work()
            ports.parts.count_purchase(uow, sale, "c-1", qty)
            uow.commit()
        over = ports.unit_of_work()
        ports.parts.take_in_order(over, sale.sale_id, 0, 1)
        ports.parts.count_purchase(over, sale, "c-1", 1)
        with pytest.raises(LimitReached):
            over.commit()
        assert remaining(ports, sale) == [2, 2]

    def test_the_whole_limit_at_once_is_only_for_a_buyer_who_holds_nothing(self, ports: FlashPorts):
        sale = created(ports, per_user_limit=2)
        first = ports.unit_of_work()
        ports.parts.count_purchase(first, sale, "c-1", 1)
        first.commit()
        whole = ports.unit_of_work()
        ports.parts.count_purchase(whole, sale, "c-1", 2)
        with pytest.raises(LimitReached):
            whole.commit()

    def test_an_order_cannot_claim_units_given_back_before(self, ports: FlashPorts):
        sale = created(ports)
        taken = ports.shards.take(sale.sale_id, 0, 1)
        ports.shards.give_back(sale.sale_id, [taken], now_ms())
        uow = ports.unit_of_work()
        ports.parts.count_purchase(uow, sale, "c-1", 1)
        ports.parts.claim(uow, sale.sale_id, taken, "o-1", now_ms())
        with pytest.raises(UnitsClaimed) as claimed:
            uow.commit()
        assert claimed.value.claimed == {taken: ClaimStatus.VOID}

    def test_units_an_order_claimed_cannot_be_given_back(self, ports: FlashPorts):
        sale = created(ports)
        taken = ports.shards.take(sale.sale_id, 0, 1)
        uow = ports.unit_of_work()
        ports.parts.claim(uow, sale.sale_id, taken, "o-1", now_ms())
        uow.commit()
        with pytest.raises(UnitsClaimed) as claimed:
            ports.shards.give_back(sale.sale_id, [taken], now_ms())
        assert claimed.value.claimed == {taken: ClaimStatus.ORDER}
        assert ports.shards.claims_between(sale.sale_id, 0, 0, 1) == [UnitClaim(1, 1, ClaimStatus.ORDER)]

    def test_a_release_puts_the_units_back_and_lets_the_buyer_buy_again(self, ports: FlashPorts):
        sale = created(ports, per_user_limit=1)
        bought = ports.unit_of_work()
        ports.parts.take_in_order(bought, sale.sale_id, 0, 1)
        ports.parts.count_purchase(bought, sale, "c-1", 1)
        bought.commit()
        released = ports.unit_of_work()
        ports.parts.release(released, sale.sale_id, 1, "c-1", 1)
        released.commit()
        assert remaining(ports, sale) == [1, 3] and ports.shards.levels(sale)[1].returned == 1
        again = ports.unit_of_work()
        ports.parts.count_purchase(again, sale, "c-1", 1)
        again.commit()

    def test_a_busy_shard_refuses_the_unit_of_work_and_is_named(self, ports: FlashPorts):
        sale = created(ports, quantity=4, peak=1000)
        uow = ports.unit_of_work(retry_conflicts=False)
        ports.parts.take_in_order(uow, sale.sale_id, 1, 1)
        ports.parts.count_purchase(uow, sale, "c-1", 1)
        with ports.busy(sale, 1), pytest.raises(TemporarilyUnavailable) as busy:
            uow.commit()
        assert ports.parts.busy_on_shard(busy.value, 1) and not ports.parts.busy_on_shard(busy.value, 0)
        assert remaining(ports, sale) == [2, 2]
