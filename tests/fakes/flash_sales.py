"""In-memory flash-sale stores (shared.flash_sales.ports): the sale store, the shards and the flash
parts of an order's unit of work, over one `FlashTables`.

They keep the rules `shared.data.stores.flash_sales` keeps (conditions, claims, what a refused
write raises, in the same order); tests/contract/test_flash_sale_ports.py runs one class of tests
against both. Faults: `FlashTables.busy` names shards whose writes answer TemporarilyUnavailable
(held by another transaction) until removed.

The flash parts join an ordering unit of work the way the DynamoDB parts join the DynamoDB one:
`FlashUnitOfWork` wraps any ordering unit of work (the ordering fake's, or `BareUnitOfWork`) and
applies its flash parts with it, all or nothing, under the tables' lock.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

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
from shared.kernel.errors import IdempotencyKeyReused, LimitReached, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.shards import split
from shared.ordering.ports import OrderingUnitOfWork


@dataclass
class Shard:
    initial: int
    remaining: int
    taken: int = 0
    returned: int = 0
    ordered: int = 0


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
    writes: list[str] = field(default_factory=list)  # the kind of every write sent, in order

    def level(self, sale_id: str, shard: int) -> ShardLevel:
        held = self.shards[(sale_id, shard)]
        return ShardLevel(shard, held.initial, held.remaining, held.taken, held.returned, held.ordered)

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
            self.tables.writes.append("create")
            first = self.tables.responses.get((request.scope, request.key))
            if first is not None:
                if first[0] != request.fingerprint:
                    raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
                return first[1]
            self.tables.sales[sale.sale_id] = sale
            for shard, units in enumerate(split(sale.quantity, sale.shards)):
                self.tables.shards[(sale.sale_id, shard)] = Shard(initial=units, remaining=units)
            self.tables.marks[sale.sale_id] = ReconcileMarks({}, 0)
            self.tables.responses[(request.scope, request.key)] = (request.fingerprint, response)
            return response

    def get(self, sale_id: str) -> FlashSale | None:
        return self.tables.sales.get(sale_id)

    def ending_after(self, after_ms: int) -> Iterator[FlashSale]:
        found = [sale for sale in self.tables.sales.values() if sale.ends_at_ms >= after_ms]
        yield from sorted(found, key=lambda sale: (sale.ends_at_ms, sale.sale_id))


class MemoryShards:
    def __init__(self, tables: FlashTables) -> None:
        self.tables = tables

    def take(self, sale_id: str, shard: int, qty: int) -> Take:
        with self.tables.lock:
            self.tables.writes.append("take")
            self.tables.check_not_busy(sale_id, shard)
            held = self.tables.shards[(sale_id, shard)]
            if held.remaining < qty:
                raise ShardShort(held.remaining)
            held.remaining -= qty
            held.taken += qty
            return Take(shard=shard, last_unit=held.taken, qty=qty)

    def levels(self, sale: FlashSale) -> list[ShardLevel]:
        with self.tables.lock:
            return [
                self.tables.level(sale.sale_id, shard)
                for shard in range(sale.shards)
                if (sale.sale_id, shard) in self.tables.shards
            ]

    def give_back(self, sale_id: str, takes: Sequence[Take], now_ms: int) -> None:
        with self.tables.lock:
            self.tables.writes.append("give_back")
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
class BareUnitOfWork:
    """An ordering unit of work that holds no ordering parts (for tests of the flash parts alone)."""

    def __init__(self, *, retry_conflicts: bool = True) -> None:
        self.committed = False

    def commit(self) -> None:
        self.committed = True

    def commit_once(self, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
        self.committed = True
        return response


@dataclass
class _Part:
    order: int  # which refusal is named first, as the DynamoDB translation names it: limit, shard, claim
    check: Callable[[], None]  # raises what the part's refused condition means
    apply: Callable[[], None]
    shard: int | None = None  # the shard item the part writes, if any


class FlashUnitOfWork:
    """`inner` (an OrderingUnitOfWork) with the flash parts of `MemoryPurchaseParts` joined: at
    commit, under the tables' lock, the flash conditions are checked (a refused one raises, nothing
    applied), then a shard another transaction holds refuses it all (TemporarilyUnavailable), then
    `inner` commits, and only if it applied (not a replayed key) the flash parts apply."""

    def __init__(self, inner: Any, tables: FlashTables) -> None:
        self._inner = inner
        self._tables = tables
        self._parts: list[_Part] = []
        self.sale_id: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # the ordering parts: add_order, emit, ...

    def join(self, part: _Part, sale_id: str) -> None:
        self._parts.append(part)
        self.sale_id = sale_id

    def commit(self) -> None:
        with self._tables.lock:
            self._check()
            self._inner.commit()
            self._apply()

    def commit_once(self, request: IdempotentRequest, response: StoredResponse) -> StoredResponse:
        with self._tables.lock:
            self._check()
            stored = self._inner.commit_once(request, response)
            if stored is response:
                self._apply()
            return stored

    def _check(self) -> None:
        self._tables.writes.append("transaction")
        for part in sorted(self._parts, key=lambda p: p.order):
            part.check()
        for part in self._parts:
            if part.shard is not None and self.sale_id is not None:
                self._tables.check_not_busy(self.sale_id, part.shard)

    def _apply(self) -> None:
        for part in self._parts:
            part.apply()


class MemoryPurchaseParts:
    def __init__(self, tables: FlashTables) -> None:
        self.tables = tables

    def unit_of_work(self, inner: Callable[..., Any] = BareUnitOfWork) -> Callable[..., FlashUnitOfWork]:
        """An OrderingUnitOfWorkFactory whose units of work take these parts, around `inner`'s."""

        def factory(*, retry_conflicts: bool = True) -> FlashUnitOfWork:
            return FlashUnitOfWork(inner(retry_conflicts=retry_conflicts), self.tables)

        return factory

    def take_in_order(self, uow: OrderingUnitOfWork, sale_id: str, shard: int, qty: int) -> None:
        def check() -> None:
            held = self.tables.shards[(sale_id, shard)]
            if held.remaining < qty:
                raise ShardShort(held.remaining)

        def apply() -> None:
            held = self.tables.shards[(sale_id, shard)]
            held.remaining -= qty
            held.ordered += qty

        _joined(uow).join(_Part(1, check, apply, shard), sale_id)

    def count_purchase(self, uow: OrderingUnitOfWork, sale: FlashSale, customer_id: str, qty: int) -> None:
        key = (sale.sale_id, customer_id)

        def check() -> None:
            if self.tables.bought.get(key, 0) > sale.per_user_limit - qty:
                raise LimitReached(
                    "this buyer has bought the most this sale allows",
                    flash_sale_id=sale.sale_id,
                    per_user_limit=sale.per_user_limit,
                )

        def apply() -> None:
            self.tables.bought[key] = self.tables.bought.get(key, 0) + qty

        _joined(uow).join(_Part(0, check, apply), sale.sale_id)

    def claim(self, uow: OrderingUnitOfWork, sale_id: str, taken: Take, order_id: str, now_ms: int) -> None:
        def check() -> None:
            held = self.tables.claim_of(sale_id, taken)
            if held is not None:
                raise UnitsClaimed({taken: held.status})

        def apply() -> None:
            claim = UnitClaim(taken.first_unit, taken.qty, ClaimStatus.ORDER)
            self.tables.claims[(sale_id, taken.shard, taken.first_unit)] = (claim, order_id)

        _joined(uow).join(_Part(2, check, apply), sale_id)

    def release(self, uow: OrderingUnitOfWork, sale_id: str, shard: int, customer_id: str, qty: int) -> None:
        key = (sale_id, customer_id)

        def check() -> None:
            if self.tables.bought.get(key, 0) < qty:
                raise AssertionError(f"buyer {customer_id} holds fewer than {qty} units")  # never expected

        def apply() -> None:
            held = self.tables.shards[(sale_id, shard)]
            held.remaining += qty
            held.returned += qty
            self.tables.bought[key] -= qty

        _joined(uow).join(_Part(3, check, apply, shard), sale_id)

    def busy_on_shard(self, busy: TemporarilyUnavailable, shard: int) -> bool:
        return busy.details.get("shard") == shard


def _joined(uow: OrderingUnitOfWork) -> FlashUnitOfWork:
    if not isinstance(uow, FlashUnitOfWork):
        raise TypeError(f"in-memory flash-sale parts join a FlashUnitOfWork, not {type(uow).__name__}")
    return uow


__all__ = [
    "BareUnitOfWork",
    "FlashTables",
    "FlashUnitOfWork",
    "MemoryPurchaseParts",
    "MemorySales",
    "MemoryShards",
    "Shard",
    "ShardMark",
]
