"""In-memory flash-sale stores (shared.flash_sales.ports): the sale store, the shards and the flash
parts of an order's unit of work, over one `FlashTables`.

They keep the rules `shared.data.stores.flash_sales` keeps (conditions, claims, what a refused
write raises, in the same order); tests/contract/test_flash_sale_ports.py runs one class of tests
against both. Faults: `FlashTables.busy` names shards whose writes answer TemporarilyUnavailable
(held by another transaction) until removed.

The flash parts join the ordering fake's unit of work (tests/fakes/ordering.py) the way the
DynamoDB parts join the DynamoDB one; give both fakes one lock (`FlashTables(lock=...)`), as one
DynamoDB table applies one write at a time to an item.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from shared.catalog.model import Product
from shared.flash_sales.model import (
    ClaimStatus,
    FlashSale,
    ReconcileMarks,
    ShardLevel,
    ShardMark,
    ShardShort,
    Take,
    UnitClaim,
    UnitsClaimed,
)
from shared.flash_sales.service import FlashSales, FlashSaleSettings
from shared.inventory.locations import WAREHOUSE, Location
from shared.kernel.clock import FakeClock
from shared.kernel.errors import (
    Ended,
    IdempotencyKeyReused,
    LimitReached,
    OutOfStock,
    SaleCancelled,
    TemporarilyUnavailable,
)
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.shards import split
from shared.ordering.addresses import NO_SAVED_ADDRESSES, SavedAddresses
from shared.ordering.lifecycle import OrderLifecycle
from shared.ordering.model import Order, Status
from shared.ordering.ports import OrderingUnitOfWork
from shared.ordering.pricing import PricingRules
from shared.ordering.refunds import OrderRefunds
from tests.fakes.ordering import MemoryOrderingUnitOfWork, OrderingOnFakes, RefusedPart, StockRow, ordering_on_fakes


@dataclass
class Shard:
    initial: int
    remaining: int
    taken: int = 0
    returned: int = 0
    ordered: int = 0
    settled: int = 0  # units given back to the sale's location after the end
    closed: bool = False  # its sale was cancelled: purchases take nothing from it


@dataclass
class FlashTables:
    """What the DynamoDB table holds for flash sales, in memory."""

    sales: dict[str, FlashSale] = field(default_factory=dict)
    shards: dict[tuple[str, int], Shard] = field(default_factory=dict)
    bought: dict[tuple[str, str], int] = field(default_factory=dict)
    claims: dict[tuple[str, int, int], tuple[UnitClaim, str | None]] = field(default_factory=dict)
    marks: dict[str, ReconcileMarks] = field(default_factory=dict)
    responses: dict[tuple[str, str], tuple[str, StoredResponse]] = field(default_factory=dict)
    busy: set[tuple[str, int]] = field(default_factory=set)
    # One write at a time, as DynamoDB applies each item write (and transaction) atomically.
    lock: threading.RLock = field(default_factory=threading.RLock)
    calls: list[str] = field(default_factory=list)  # every call outside an order's unit of work, in order
    # The ordering fake's stock rows (OrderingTables.stock), when the fakes model stock: a sale then
    # holds its units out of its location's stock as DynamoFlashSales does. None: no stock modelled.
    stock: dict[tuple[str, str], StockRow] | None = None

    def level(self, sale_id: str, shard: int) -> ShardLevel:
        held = self.shards[(sale_id, shard)]
        return ShardLevel(shard, held.initial, held.remaining, held.taken, held.returned, held.ordered, held.closed)

    def check_not_busy(self, sale_id: str, shard: int) -> None:
        if (sale_id, shard) in self.busy:
            raise TemporarilyUnavailable("the shard is busy; retry", shard=shard)

    def claim_of(self, sale_id: str, taken: Take) -> UnitClaim | None:
        found = self.claims.get((sale_id, taken.shard, taken.first_unit))
        return found[0] if found else None


class MemorySales:
    def __init__(self, tables: FlashTables) -> None:
        self.tables = tables

    def create(
        self, sale: FlashSale, request: IdempotentRequest, response: StoredResponse, now_ms: int
    ) -> StoredResponse:
        with self.tables.lock:
            self.tables.calls.append("create")
            first = self.tables.responses.get((request.scope, request.key))
            if first is not None:
                if first[0] != request.fingerprint:
                    raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
                return first[1]
            stock = self.tables.stock
            if stock is not None:
                row = stock.get((sale.sku, sale.location))
                if row is None or row.available < sale.quantity:
                    raise OutOfStock("not enough stock for the flash sale", sku=sale.sku, location=sale.location)
                row.available -= sale.quantity
                row.reserved += sale.quantity
            self.tables.sales[sale.sale_id] = sale
            for shard, units in enumerate(split(sale.quantity, sale.shards)):
                self.tables.shards[(sale.sale_id, shard)] = Shard(initial=units, remaining=units)
            self.tables.marks[sale.sale_id] = ReconcileMarks({}, 0)
            self.tables.responses[(request.scope, request.key)] = (request.fingerprint, response)
            return response

    def get(self, sale_id: str) -> FlashSale | None:
        return self.tables.sales.get(sale_id)

    def cancel(self, sale: FlashSale, now_ms: int) -> FlashSale:
        with self.tables.lock:
            self.tables.calls.append("cancel")
            stored = self.tables.sales[sale.sale_id]
            if stored.cancelled_at_ms is not None:
                return stored
            if now_ms >= stored.ends_at_ms:
                raise Ended("the flash sale has ended", flash_sale_id=sale.sale_id)
            cancelled = self.tables.sales[sale.sale_id] = replace(stored, cancelled_at_ms=now_ms)
            for shard in range(sale.shards):
                self.tables.shards[(sale.sale_id, shard)].closed = True
            return cancelled

    def ending_after(self, after_ms: int) -> Iterator[FlashSale]:
        found = [sale for sale in self.tables.sales.values() if sale.ends_at_ms >= after_ms]
        yield from sorted(found, key=lambda sale: (sale.ends_at_ms, sale.sale_id))


class MemoryShards:
    def __init__(self, tables: FlashTables) -> None:
        self.tables = tables

    def take(self, sale_id: str, shard: int, qty: int) -> Take:
        with self.tables.lock:
            self.tables.calls.append("take")
            self.tables.check_not_busy(sale_id, shard)
            held = self.tables.shards[(sale_id, shard)]
            if held.closed:
                raise SaleCancelled("the flash sale was cancelled", flash_sale_id=sale_id)
            if held.remaining < qty:
                raise ShardShort(held.remaining)
            held.remaining -= qty
            held.taken += qty
            return Take(shard=shard, last_unit=held.taken, qty=qty)

    def levels(self, sale: FlashSale) -> list[ShardLevel]:
        with self.tables.lock:
            self.tables.calls.append("levels")
            return [
                self.tables.level(sale.sale_id, shard)
                for shard in range(sale.shards)
                if (sale.sale_id, shard) in self.tables.shards
            ]

    def give_back(self, sale_id: str, takes: Sequence[Take], now_ms: int) -> None:
        with self.tables.lock:
            self.tables.calls.append("give_back")
            claimed = {t: c.status for t in takes if (c := self.tables.claim_of(sale_id, t)) is not None}
            if claimed:
                raise UnitsClaimed(claimed)
            by_shard: dict[int, int] = defaultdict(int)
            for taken in takes:
                by_shard[taken.shard] += taken.qty
            for shard in by_shard:
                self.tables.check_not_busy(sale_id, shard)
            for taken in takes:
                self.tables.claims[(sale_id, taken.shard, taken.first_unit)] = (
                    UnitClaim(taken.first_unit, taken.qty, ClaimStatus.VOID),
                    None,
                )
            for shard, qty in by_shard.items():
                held = self.tables.shards[(sale_id, shard)]
                held.remaining += qty
                held.returned += qty

    def settle(self, sale: FlashSale, shard: int, qty: int) -> bool:
        with self.tables.lock:
            self.tables.calls.append("settle")
            self.tables.check_not_busy(sale.sale_id, shard)
            held = self.tables.shards.get((sale.sale_id, shard))
            if held is None or held.remaining != qty or qty <= 0:
                return False
            if self.tables.stock is not None:
                row = self.tables.stock.get((sale.sku, sale.location))
                if row is None or row.reserved < qty:
                    return False
                row.reserved -= qty
                row.available += qty
            held.remaining -= qty
            held.settled += qty
            return True

    def claims_between(self, sale_id: str, shard: int, after_unit: int, through_unit: int) -> list[UnitClaim]:
        with self.tables.lock:
            found = [
                claim
                for (sale, on_shard, first), (claim, _) in self.tables.claims.items()
                if sale == sale_id and on_shard == shard and after_unit < first <= through_unit
            ]
        return sorted(found, key=lambda claim: claim.first_unit)

    def marks(self, sale_id: str) -> ReconcileMarks:
        return self.tables.marks.get(sale_id, ReconcileMarks({}, -1))

    def save_marks(self, sale_id: str, marks: ReconcileMarks) -> bool:
        with self.tables.lock:
            if self.marks(sale_id).version != marks.version:
                return False
            self.tables.marks[sale_id] = replace(marks, shards=dict(marks.shards), version=marks.version + 1)
            return True


# -- parts of an order's unit of work ----------------------------------------------------------
class MemoryPurchaseParts:
    """The flash parts of the ordering fake's unit of work (`MemoryOrderingUnitOfWork.add_part`),
    so they apply with the order or not at all, after its replay and order checks, as the DynamoDB
    translation names them. Among themselves a refusal is named in the order the parts were added
    (the purchase adds the buyer's count first: LimitReached before a shard's ShardShort); a shard
    another transaction holds refuses only when no condition did, as in DynamoDB."""

    def __init__(self, tables: FlashTables) -> None:
        self.tables = tables

    def take_in_order(self, uow: OrderingUnitOfWork, sale_id: str, shard: int, qty: int) -> None:
        def check() -> Exception | None:
            held = self.tables.shards[(sale_id, shard)]
            if held.closed:
                return SaleCancelled("the flash sale was cancelled", flash_sale_id=sale_id)
            if held.remaining < qty:
                return ShardShort(held.remaining)
            if (sale_id, shard) in self.tables.busy:
                return TemporarilyUnavailable("too many concurrent writers; retry", shard=shard)
            return None

        def apply() -> None:
            held = self.tables.shards[(sale_id, shard)]
            held.remaining -= qty
            held.ordered += qty

        _joined(uow).add_part(("flash-shard", sale_id, str(shard)), check, apply)

    def count_purchase(self, uow: OrderingUnitOfWork, sale: FlashSale, customer_id: str, qty: int) -> None:
        key = (sale.sale_id, customer_id)

        def check() -> Exception | None:
            if self.tables.bought.get(key, 0) > sale.per_user_limit - qty:
                return LimitReached(
                    "this buyer has bought the most this sale allows",
                    flash_sale_id=sale.sale_id,
                    per_user_limit=sale.per_user_limit,
                )
            return None

        def apply() -> None:
            self.tables.bought[key] = self.tables.bought.get(key, 0) + qty

        _joined(uow).add_part(("flash-buyer", *key), check, apply)

    def claim(self, uow: OrderingUnitOfWork, sale_id: str, taken: Take, order_id: str, now_ms: int) -> None:
        def check() -> Exception | None:
            held = self.tables.claim_of(sale_id, taken)
            return UnitsClaimed({taken: held.status}) if held is not None else None

        def apply() -> None:
            claim = UnitClaim(taken.first_unit, taken.qty, ClaimStatus.ORDER)
            self.tables.claims[(sale_id, taken.shard, taken.first_unit)] = (claim, order_id)

        _joined(uow).add_part(("flash-claim", sale_id, str(taken.shard), str(taken.first_unit)), check, apply)

    def release(self, uow: OrderingUnitOfWork, sale_id: str, shard: int, customer_id: str, qty: int) -> None:
        key = (sale_id, customer_id)

        def give_back() -> None:
            held = self.tables.shards[(sale_id, shard)]
            held.remaining += qty
            held.returned += qty

        def uncount() -> None:
            self.tables.bought[key] -= qty

        def holds_them() -> Exception | None:
            return RefusedPart(f"flash-buyer:{customer_id}") if self.tables.bought.get(key, 0) < qty else None

        joined = _joined(uow)
        joined.add_part(("flash-shard", sale_id, str(shard)), lambda: None, give_back)
        joined.add_part(("flash-buyer", *key), holds_them, uncount)

    def busy_on_shard(self, busy: TemporarilyUnavailable, shard: int) -> bool:
        return busy.details.get("shard") == shard


def _joined(uow: OrderingUnitOfWork) -> MemoryOrderingUnitOfWork:
    if not isinstance(uow, MemoryOrderingUnitOfWork):
        raise TypeError(f"in-memory flash-sale parts join a MemoryOrderingUnitOfWork, not {type(uow).__name__}")
    return uow


# -- the service on the fakes ------------------------------------------------------------------
@dataclass
class MemoryProducts:
    products: dict[str, Product] = field(default_factory=dict)

    def get(self, sku: str) -> Product | None:
        return self.products.get(sku)


@dataclass
class MemoryStores:
    stores: list[Location] = field(default_factory=list)

    def list(self) -> list[Location]:
        return list(self.stores)


@dataclass
class FlashOnFakes:
    """The flash-sale service as bootstrap wires it, on in-memory tables and the ordering fakes,
    with an order lifecycle that gives flash units back through it; one FakeClock for all."""

    tables: FlashTables
    ordering: OrderingOnFakes
    flash: FlashSales
    lifecycle: OrderLifecycle
    refunds: OrderRefunds

    @property
    def clock(self) -> FakeClock:
        return self.ordering.clock

    @property
    def transactions(self) -> int:
        """Units of work (order transactions) handed out so far."""
        return len(self.ordering.units.made)

    def on_shards(self, sale: FlashSale) -> int:
        return sum(held.remaining for (sale_id, _), held in self.tables.shards.items() if sale_id == sale.sale_id)

    def settled(self, sale: FlashSale) -> int:
        """Units given back to the sale's location after it ended."""
        return sum(held.settled for (sale_id, _), held in self.tables.shards.items() if sale_id == sale.sale_id)

    def stock(self, sku: str, location: str) -> tuple[int, int, int]:
        """(on_hand, reserved, available) at the location; on_hand = reserved + available always."""
        return self.ordering.tables.stock_of(sku, location)

    def live_orders(self, sale: FlashSale) -> list[Order]:
        return [
            order
            for order in self.ordering.tables.orders.values()
            if order.flash_sale_id == sale.sale_id and order.status != Status.CANCELLED
        ]

    def balanced(self, sale: FlashSale) -> bool:
        """Every unit is on a shard or in a live order, once; every buyer's count is its units."""
        held: dict[str, int] = defaultdict(int)
        for order in self.live_orders(sale):
            held[order.customer_id] += sum(line.qty for line in order.lines)
        bought = {customer: n for (sale_id, customer), n in self.tables.bought.items() if sale_id == sale.sale_id and n}
        units = self.on_shards(sale) + self.settled(sale) + sum(held.values())
        return units == sale.quantity and bought == dict(held)


def flash_on_fakes(
    products: Sequence[Product] = (),
    stores: Sequence[Location] = (),
    settings: FlashSaleSettings | None = None,
    now_ms: int = 1_767_225_600_000,
    addresses: SavedAddresses = NO_SAVED_ADDRESSES,
    stock: dict[tuple[str, str], int] | None = None,
) -> FlashOnFakes:
    """`stock`: on_hand per (sku, location); by default each product has plenty at WH."""
    if stock is None:
        stock = {(product.sku, WAREHOUSE): 1_000_000 for product in products}
    ordering = ordering_on_fakes(products=products, locations=stores, now_ms=now_ms, stock=stock)
    tables = FlashTables(lock=ordering.tables.lock, stock=ordering.tables.stock)
    flash = FlashSales(
        sales=MemorySales(tables),
        shards=MemoryShards(tables),
        parts=MemoryPurchaseParts(tables),
        orders=ordering.placement,
        replays=ordering.reads,
        products=MemoryProducts({product.sku: product for product in products}),
        stores=MemoryStores(list(stores)),
        rules=PricingRules(),
        settings=settings or FlashSaleSettings(),
        clock=ordering.clock,
        addresses=addresses,
    )
    lifecycle = OrderLifecycle(ordering.units, ordering.reads, flash.releaser, ordering.clock)
    refunds = OrderRefunds(ordering.units, ordering.reads, ordering.clock, flash=flash.releaser)
    return FlashOnFakes(tables, ordering, flash, lifecycle, refunds)


__all__ = [
    "FlashOnFakes",
    "FlashTables",
    "MemoryProducts",
    "MemoryPurchaseParts",
    "MemorySales",
    "MemoryShards",
    "MemoryStores",
    "Shard",
    "ShardMark",
]
