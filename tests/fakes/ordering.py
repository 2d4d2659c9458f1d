"""In-memory ordering ports (shared.ordering.ports): the reads, the unit of work and the checkout
reads, over one `OrderingTables`.

They keep the rules `shared.data.stores.ordering_uow` and `shared.data.stores.orders` keep: every
part is conditional, a commit applies every part or none, and a refused part raises the same
domain error in the same order of precedence (a replayed idempotency key first, then the order's
condition, then other capabilities' parts, then stock, payment, refund).
tests/contract/test_ordering_ports.py runs one class of tests against both.

Faults: `OrderingTables.unavailable` > 0 makes that many commits answer TemporarilyUnavailable
(nothing applied), as DynamoDB does when it stays busy past the retry budget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.catalog.model import Product
from shared.inventory.locations import Location
from shared.kernel.clock import FakeClock, iso
from shared.kernel.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InvalidTransition,
    OutOfStock,
    TemporarilyUnavailable,
)
from shared.kernel.events import DomainEvent
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering import announcements
from shared.ordering.checkout import Checkout
from shared.ordering.fulfilment import Address
from shared.ordering.lifecycle import OrderLifecycle
from shared.ordering.model import Order, Status
from shared.ordering.placement import OrderPlacement
from shared.ordering.ports import CheckoutData, OrderingUnitOfWork, PaymentAlreadyRecorded, PaymentRecord, Refund
from shared.ordering.pricing import PricingRules
from shared.ordering.refunds import OrderRefunds

MAX_PARTS = 100  # DynamoDB: a transaction holds at most 100 items


class RefusedPart(Exception):
    """A condition the services never expect to fail (the DynamoDB unit of work lets its
    TransactionCancelled propagate): a bug, or a broken invariant in the data."""

    def __init__(self, label: str) -> None:
        super().__init__(f"transaction part refused: {label}")
        self.label = label


@dataclass
class StockRow:
    on_hand: int
    reserved: int = 0
    available: int = 0

    def levels(self) -> tuple[int, int, int]:
        return self.on_hand, self.reserved, self.available


@dataclass
class OrderingTables:
    """What the DynamoDB table holds for ordering, in memory."""

    orders: dict[str, Order] = field(default_factory=dict)
    stock: dict[tuple[str, str], StockRow] = field(default_factory=dict)
    payments: dict[str, PaymentRecord] = field(default_factory=dict)
    clashing_payments: dict[tuple[str, str], PaymentRecord] = field(default_factory=dict)  # (txn, order)
    refunds: dict[tuple[str, str], Refund] = field(default_factory=dict)
    responses: dict[tuple[str, str], tuple[str, StoredResponse]] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)
    unavailable: int = 0
    commits: int = 0  # transactions applied
    # One transaction at a time: DynamoDB applies each one atomically.
    lock: threading.RLock = field(default_factory=threading.RLock)

    def put_stock(self, sku: str, location: str, on_hand: int) -> None:
        self.stock[(sku, location)] = StockRow(on_hand, 0, on_hand)

    def stock_of(self, sku: str, location: str) -> tuple[int, int, int]:
        return self.stock[(sku, location)].levels()

    def events_of(self, order_id: str) -> list[str]:
        return sorted(str(event.type) for event in self.events if event.aggregate_id == order_id)


# -- reads -------------------------------------------------------------------------------------
class MemoryOrderReads:
    def __init__(self, tables: OrderingTables) -> None:
        self.tables = tables

    def get(self, order_id: str) -> Order | None:
        return self.tables.orders.get(order_id)

    def due_orders(self, now_ms: int) -> Iterator[Order]:
        with self.tables.lock:
            due = [
                order
                for order in self.tables.orders.values()
                if order.status is Status.PENDING_PAYMENT and order.expires_at_ms <= now_ms
            ]
        yield from sorted(due, key=lambda order: (order.expires_at_ms, order.order_id))

    def list_for_customer(
        self, customer_id: str, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[Order], dict[str, Any] | None]:
        with self.tables.lock:
            mine = [order for order in self.tables.orders.values() if order.customer_id == customer_id]
        mine.sort(key=lambda order: (iso(order.created_at_ms), order.order_id), reverse=True)
        if cursor is not None:
            after = (cursor["created_at"], cursor["order_id"])
            mine = [order for order in mine if (iso(order.created_at_ms), order.order_id) < after]
        page = mine[:limit]
        if len(page) < limit:
            return page, None
        last = page[-1]  # as DynamoDB: a full page has a cursor, even when nothing follows
        return page, {"created_at": iso(last.created_at_ms), "order_id": last.order_id}

    def refunds_of(self, order_id: str) -> list[Refund]:
        with self.tables.lock:
            found = [dict(refund) for (oid, _), refund in self.tables.refunds.items() if oid == order_id]
        return sorted(found, key=lambda refund: (refund["created_at"], refund["refund_id"]))  # as the store

    def get_refund(self, order_id: str, refund_id: str) -> Refund | None:
        refund = self.tables.refunds.get((order_id, refund_id))
        return None if refund is None else dict(refund)

    def get_payment(self, transaction_id: str) -> PaymentRecord | None:
        return self.tables.payments.get(transaction_id)

    def payments_needing_refund(
        self, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[PaymentRecord], dict[str, Any] | None]:
        def position(p: PaymentRecord) -> str:  # gsi1sk of the DynamoDB store
            return f"{iso(p.recorded_at_ms)}#{p.transaction_id}#{p.order_id}"

        with self.tables.lock:
            recorded = [*self.tables.payments.values(), *self.tables.clashing_payments.values()]
        due = sorted((p for p in recorded if p.status == "NEEDS_REFUND"), key=position, reverse=True)
        if cursor is not None:
            due = [p for p in due if position(p) < cursor["position"]]
        page = due[:limit]
        if len(page) < limit:
            return page, None
        return page, {"position": position(page[-1])}  # as DynamoDB: a full page has a cursor

    def replay(self, request: IdempotentRequest) -> StoredResponse | None:
        return _stored(self.tables, request)

    def replay_refund(self, order_id: str, refund_id: str, request: IdempotentRequest) -> StoredResponse | None:
        return _stored(self.tables, request)  # as for orders: every key's answer beside the refunds

    def replay_placed(self, request: IdempotentRequest) -> StoredResponse | None:
        return _stored(self.tables, request)  # the fake keeps every key's answer beside the orders


def _stored(tables: OrderingTables, request: IdempotentRequest) -> StoredResponse | None:
    first = tables.responses.get((request.scope, request.key))
    if first is None:
        return None
    if first[0] != request.fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request body", idempotency_key=request.key
        )
    return replace(first[1], replayed=True)


# -- the unit of work --------------------------------------------------------------------------
Check = Callable[[], Exception | None]  # the error a refused condition means, or None
Apply = Callable[[], None]


@dataclass
class _Part:
    item: tuple[str, ...]  # one part per item, as DynamoDB requires
    check: Check
    apply: Apply
    rank: int  # which refusal wins when several parts are refused


ORDER, OTHER, RESERVATION, STOCK, PAYMENT, REFUND, EVENT = range(7)


class MemoryOrderingUnitOfWork:
    def __init__(self, tables: OrderingTables, *, retry_conflicts: bool = True) -> None:
        self.tables = tables
        self.retry_conflicts = retry_conflicts
        self._parts: list[_Part] = []
        self._committed = False

    # -- parts -----------------------------------------------------------------------------
    def add_order(self, order: Order) -> None:
        t = self.tables

        def check() -> Exception | None:
            if order.order_id in t.orders:
                return ConcurrentUpdate("the order changed since it was read", order_id=order.order_id)
            return None

        def apply() -> None:
            t.orders[order.order_id] = order
            # The relay derives the new order's events from its INSERT (the order is the outbox).
            t.events.extend(announcements.announced(None, order))

        self._add(("order", order.order_id), check, apply, ORDER)

    def replace_order(self, before: Order, after: Order) -> None:
        t = self.tables

        def check() -> Exception | None:
            stored = t.orders.get(before.order_id)
            if stored is None or stored.status is not before.status or stored.version != before.version:
                return ConcurrentUpdate("the order changed since it was read", order_id=before.order_id)
            return None

        def apply() -> None:
            stored = t.orders[after.order_id]
            t.orders[after.order_id] = after
            t.events.extend(announcements.announced(stored, after))  # as the relay derives them

        self._add(("order", before.order_id), check, apply, ORDER)

    def reserve_stock(self, sku: str, location: str, qty: int) -> None:
        def check() -> Exception | None:
            row = self.tables.stock.get((sku, location))
            if row is None or row.available < qty:
                return OutOfStock("not enough stock", sku=sku, location=location)
            return None

        def apply() -> None:
            row = self.tables.stock[(sku, location)]
            row.available -= qty
            row.reserved += qty

        self._add(("stock", sku, location), check, apply, RESERVATION)

    def commit_stock(self, sku: str, location: str, qty: int) -> None:
        def apply() -> None:
            row = self.tables.stock[(sku, location)]
            row.on_hand -= qty
            row.reserved -= qty

        self._add(("stock", sku, location), self._reserved_at_least(sku, location, qty), apply, STOCK)

    def release_stock(self, sku: str, location: str, qty: int) -> None:
        def apply() -> None:
            row = self.tables.stock[(sku, location)]
            row.available += qty
            row.reserved -= qty

        self._add(("stock", sku, location), self._reserved_at_least(sku, location, qty), apply, STOCK)

    def restock(self, sku: str, location: str, qty: int) -> None:
        def check() -> Exception | None:
            return RefusedPart(f"stock:{sku}:{location}") if (sku, location) not in self.tables.stock else None

        def apply() -> None:
            row = self.tables.stock[(sku, location)]
            row.available += qty
            row.on_hand += qty

        self._add(("stock", sku, location), check, apply, STOCK)

    def emit(self, event: DomainEvent) -> None:
        self._add(("event", event.event_id), lambda: None, lambda: self.tables.events.append(event), EVENT)

    def record_payment(self, payment: PaymentRecord) -> None:
        t = self.tables

        def check() -> Exception | None:
            exists = payment.transaction_id in t.payments
            return PaymentAlreadyRecorded("this payment was recorded before") if exists else None

        def apply() -> None:
            t.payments[payment.transaction_id] = payment
            self._derive_payment_event(payment)

        self._add(("payment", payment.transaction_id), check, apply, PAYMENT)

    def _derive_payment_event(self, payment: PaymentRecord) -> None:
        """The relay derives PaymentNeedsRefund from a NEEDS_REFUND payment's INSERT."""
        flagged = announcements.payment_needs_refund(payment)
        if flagged is not None:
            self.tables.events.append(flagged)

    def record_clashing_payment(self, payment: PaymentRecord) -> None:
        t = self.tables
        key = (payment.transaction_id, payment.order_id)

        def check() -> Exception | None:
            exists = key in t.clashing_payments
            return PaymentAlreadyRecorded("this payment was recorded before") if exists else None

        def apply() -> None:
            t.clashing_payments[key] = payment
            self._derive_payment_event(payment)

        self._add(("payment", *key), check, apply, PAYMENT)

    def add_refund(self, refund: Refund, now_ms: int, carrying: IdempotentRequest | None = None) -> None:
        key = (refund["order_id"], refund["refund_id"])
        stored: Refund = {
            "refund_id": refund["refund_id"],
            "order_id": refund["order_id"],
            "customer_id": refund["customer_id"],
            "status": refund["status"],
            "lines": [dict(line) for line in refund["lines"]],
            "amount_fen": refund["amount_fen"],
            "reason": refund["reason"],
            "restock": refund.get("restock"),
            "created_at": iso(now_ms),
        }

        def check() -> Exception | None:
            return RefusedPart(f"refund:{refund['refund_id']}") if key in self.tables.refunds else None

        self._add(("refund", *key), check, lambda: self.tables.refunds.__setitem__(key, stored), REFUND)

    def decide_refund(self, refund: Refund, status: str, restock: bool) -> None:
        key = (refund["order_id"], refund["refund_id"])

        def check() -> Exception | None:
            stored = self.tables.refunds.get(key)
            if stored is None or stored["status"] != "REQUESTED":
                return InvalidTransition("refund was decided concurrently", refund_id=refund["refund_id"])
            return None

        def apply() -> None:
            self.tables.refunds[key] = {
                **self.tables.refunds[key],
                "status": status,
                "restock": "yes" if restock else "no",
                **({"lines": refund["lines"], "amount_fen": refund["amount_fen"]} if status == "ISSUED" else {}),
            }
            if status == "ISSUED" and "order_part" in refund:
                # The relay derives RefundIssued from the refund's decision (the store keeps the
                # order part and the time on the item; this fake's refunds show what the API reads).
                carried = {"order_part": refund["order_part"], "decided_at_ms": refund["decided_at_ms"]}
                self.tables.events.append(announcements.refund_issued({**self.tables.refunds[key], **carried}))

        self._add(("refund", *key), check, apply, REFUND)

    def add_part(self, item: tuple[str, ...], check: Check, apply: Apply) -> None:
        """For the fakes of other capabilities whose parts join this transaction (a flash sale's
        shard, buyer count, claims): `check` returns the error its refusal means, or None."""
        self._add(item, check, apply, OTHER)

    def _reserved_at_least(self, sku: str, location: str, qty: int) -> Check:
        def check() -> Exception | None:
            row = self.tables.stock.get((sku, location))
            return RefusedPart(f"stock:{sku}:{location}") if row is None or row.reserved < qty else None

        return check

    def _add(self, item: tuple[str, ...], check: Check, apply: Apply, rank: int) -> None:
        if any(part.item == item for part in self._parts):
            raise ValueError(f"a transaction touches an item once: {item}")  # DynamoDB: ValidationException
        self._parts.append(_Part(item, check, apply, rank))

    # -- commit ----------------------------------------------------------------------------
    def commit(self) -> None:
        with self.tables.lock:
            self._start(len(self._parts))
            self._apply_all()

    def commit_once(self, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
        key = (request.scope, request.key)
        with self.tables.lock:
            self._start(len(self._parts) + 1)  # and the idempotency record
            stored = _stored(self.tables, request)
            if stored is not None:
                return stored  # the key was used: nothing else applies
            self._apply_all()
            self.tables.responses[key] = (request.fingerprint, response)
            return response

    def _start(self, parts: int) -> None:
        if self._committed:
            raise RuntimeError("a unit of work is committed once")
        self._committed = True
        if parts > MAX_PARTS:
            raise ValueError("a DynamoDB transaction holds at most 100 items")
        if self.tables.unavailable > 0:
            self.tables.unavailable -= 1
            raise TemporarilyUnavailable("the database is busy; retry")

    def _apply_all(self) -> None:
        refused = [(part.rank, index, error) for index, part in enumerate(self._parts) if (error := part.check())]
        if refused:
            raise min(refused, key=lambda found: found[:2])[2]
        for part in self._parts:
            part.apply()
        self.tables.commits += 1


class MemoryUnitsOfWork:
    """The `OrderingUnitOfWorkFactory` over one set of tables; `made` keeps every unit of work
    handed out, so a test can see how many transactions a use case wrote."""

    def __init__(self, tables: OrderingTables) -> None:
        self.tables = tables
        self.made: list[MemoryOrderingUnitOfWork] = []

    def __call__(self, *, retry_conflicts: bool = True) -> MemoryOrderingUnitOfWork:
        uow = MemoryOrderingUnitOfWork(self.tables, retry_conflicts=retry_conflicts)
        self.made.append(uow)
        return uow


# -- checkout reads ----------------------------------------------------------------------------
@dataclass
class MemoryCheckoutReads:
    """`CheckoutReader` over the same stock: products, members and locations as given."""

    tables: OrderingTables
    products: dict[str, Product] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    locations: dict[str, Location] = field(default_factory=dict)

    def __call__(self, skus: Sequence[str], customer_sub: str, locations: Sequence[str] | None) -> CheckoutData:
        if locations is None:
            wanted = [place.location_id for place in self.locations.values() if place.is_store]
        else:
            wanted = list(dict.fromkeys(locations))
        availability = {
            (sku, location): self.tables.stock[(sku, location)].available
            for sku in skus
            for location in wanted
            if (sku, location) in self.tables.stock
        }
        return CheckoutData(
            products={sku: self.products[sku] for sku in skus if sku in self.products},
            is_member=customer_sub in self.members,
            availability=availability,
            locations={lid: self.locations[lid] for lid in wanted if lid in self.locations},
        )


# -- saved addresses ---------------------------------------------------------------------------
@dataclass
class MemorySavedAddresses:
    """`SavedAddresses`: the customers' default addresses, by customer id."""

    saved: dict[str, Address] = field(default_factory=dict)

    def get(self, customer_id: str) -> Address | None:
        return self.saved.get(customer_id)

    def put(self, customer_id: str, address: Address, now_ms: int) -> None:
        self.saved[customer_id] = address


# -- a flash sale's units, as far as ordering sees them -----------------------------------------
@dataclass
class MemoryFlashReleaser:
    """`FlashUnitReleaser`: counts the units each sale got back, as a part of the order's unit of
    work (so they come back only if the cancellation or expiry commits)."""

    returned: dict[str, int] = field(default_factory=dict)

    def release(self, uow: OrderingUnitOfWork, order: Order) -> None:
        assert isinstance(uow, MemoryOrderingUnitOfWork) and order.flash_sale_id is not None
        sale_id = order.flash_sale_id
        qty = sum(line.qty for line in order.lines)

        def apply() -> None:
            self.returned[sale_id] = self.returned.get(sale_id, 0) + qty

        uow.add_part(("flash", sale_id, order.order_id), lambda: None, apply)

    paid: dict[str, int] = field(default_factory=dict)

    def commit(self, uow: OrderingUnitOfWork, order: Order) -> None:
        """Counts the paid units per sale (these fakes hold no sale's stock: tests/fakes/flash_sales.py does)."""
        assert isinstance(uow, MemoryOrderingUnitOfWork) and order.flash_sale_id is not None
        sale_id = order.flash_sale_id
        qty = sum(line.qty for line in order.lines)

        def apply() -> None:
            self.paid[sale_id] = self.paid.get(sale_id, 0) + qty

        uow.add_part(("flash-paid", sale_id, order.order_id), lambda: None, apply)

    def stock_location(self, order: Order) -> str:
        return "WH"


# -- the services on the fakes -----------------------------------------------------------------
@dataclass
class OrderingOnFakes:
    """The ordering services as bootstrap wires them, on one set of in-memory tables and a clock
    that moves only when told to."""

    tables: OrderingTables
    clock: FakeClock
    units: MemoryUnitsOfWork
    reads: MemoryOrderReads
    checkout_reads: MemoryCheckoutReads
    releaser: MemoryFlashReleaser
    placement: OrderPlacement
    lifecycle: OrderLifecycle
    refunds: OrderRefunds


def ordering_on_fakes(
    products: Sequence[Product] = (),
    stock: dict[tuple[str, str], int] | None = None,
    locations: Sequence[Location] = (),
    rules: PricingRules | None = None,
    payment_window_s: int = 900,
    now_ms: int = 1_767_225_600_000,
) -> OrderingOnFakes:
    tables = OrderingTables()
    for (sku, location), on_hand in (stock or {}).items():
        tables.put_stock(sku, location, on_hand)
    clock = FakeClock(now_ms)
    units = MemoryUnitsOfWork(tables)
    reads = MemoryOrderReads(tables)
    checkout_reads = MemoryCheckoutReads(
        tables, {p.sku: p for p in products}, set(), {place.location_id: place for place in locations}
    )
    releaser = MemoryFlashReleaser()
    checkout = Checkout(read=checkout_reads, rules=rules or PricingRules(), payment_window_s=payment_window_s)
    return OrderingOnFakes(
        tables=tables,
        clock=clock,
        units=units,
        reads=reads,
        checkout_reads=checkout_reads,
        releaser=releaser,
        placement=OrderPlacement(units, reads, checkout, clock),
        lifecycle=OrderLifecycle(units, reads, releaser, clock),
        refunds=OrderRefunds(units, reads, clock),
    )
