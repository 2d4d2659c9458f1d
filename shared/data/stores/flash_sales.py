"""Flash sales in DynamoDB (keys on the item classes in items/flash_sales.py).

A purchase takes its units from a shard in one of two ways (docs/flash-sales.md says when each):

- `take_in_order`: the shard's decrement is a part of the order's own transaction. One round
  trip, atomic with the order, nothing to give back or reconcile. In DynamoDB concurrent
  transactions that touch one item fail with TransactionConflictException, so this is the path
  while the shard is not contended;
- `take`: ONE single-item conditional UpdateItem on the shard, never a transaction, and the rest
  of the order written afterwards in one transaction on items that are not hot (the contended
  path: a plain update does not conflict with other plain updates, and runs at the partition's
  full rate). Its units are numbered (`taken`) and claimed, so a give-back happens once and the
  reconciler finds units whose request died.

Writes to a shard that must be atomic with something else (giving units back with the VOID claim
that makes the give-back happen once, or with an order's cancellation) are transactions that
include the shard; a single-item decrement that meets one gets TransactionConflictException, which
is definite (nothing applied): the buyer moves on to the next shard.
"""

from __future__ import annotations

import json
import weakref
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import Condition

from shared.data.connection import table_name
from shared.data.items import (
    FlashBuyerItem,
    FlashClaimItem,
    FlashReconcileItem,
    FlashSaleItem,
    FlashShardItem,
)
from shared.data.items.flash_sales import SALES_PARTITION
from shared.data.shard_counter import ShardedCounter
from shared.data.shard_counter import ShardShort as CounterRefused
from shared.data.stores import idempotency as idempotency_store
from shared.data.stores import stock as stock_store
from shared.data.stores.ordering_uow import DynamoOrderingUnitOfWork
from shared.data.transactions import (
    CONFLICT_CODES,
    Transaction,
    TransactionCancelled,
    put_part,
    translated,
)
from shared.flash_sales.model import (
    STOCK_LOCATION,
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
from shared.kernel.errors import Ended, LimitReached, OutOfStock, SaleCancelled, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.ports import OrderingUnitOfWork

LIMIT_LABEL = "flash-limit"
CLAIM_PREFIX = "flash-claim:"
SHARD_PREFIX = "flash-shard:"
STATE_LABEL = "flash-reconcile"
SALE_LABEL = "flash-sale"
CLAIM_RETENTION = timedelta(days=60)
# A shard held by another transaction, or throttled: the sale is contended (docs/flash-sales.md).
HOT_SHARD_CODES = CONFLICT_CODES | {"ProvisionedThroughputExceeded", "ThrottlingError"}


def shard_label(shard: int) -> str:
    return f"{SHARD_PREFIX}{shard}"


def shards_of(sale_id: str, shards: int = 0) -> ShardedCounter:
    """The sale's units as the sharded counter coupons use too (its parts labelled `flash-shard:<n>`)."""
    return ShardedCounter(FlashShardItem, sale_id, shards, SHARD_PREFIX.rstrip(":"))


def claim_label(taken: Take) -> str:
    return f"{CLAIM_PREFIX}{taken.shard}:{taken.first_unit}"


# -- the sale ----------------------------------------------------------------------------------
class DynamoFlashSales:
    """`shared.flash_sales.ports.SaleStore`."""

    def create(
        self, sale: FlashSale, request: IdempotentRequest, response: StoredResponse, now_ms: int
    ) -> StoredResponse:
        tx = Transaction()
        _add_sale(tx, sale, now_ms)
        # The units are held out of the location's stock in the same write (docs/flash-sales.md, "Stock").
        stock_store.reserve(tx, sale.sku, sale.location, sale.quantity)
        try:
            return idempotency_store.commit(tx, request, response)
        except TransactionCancelled as cancelled:
            if stock_store.label(sale.sku, sale.location) in cancelled.failed:
                raise OutOfStock(
                    "not enough stock for the flash sale", sku=sale.sku, location=sale.location
                ) from cancelled
            raise

    def get(self, sale_id: str) -> FlashSale | None:
        with translated():
            try:
                item = FlashSaleItem.get(*FlashSaleItem.key(sale_id), consistent_read=True)
            except FlashSaleItem.DoesNotExist:
                return None
        return _sale_of(item)

    def cancel(self, sale: FlashSale, now_ms: int) -> FlashSale:
        """The sale's `cancelled_at` and every shard's `closed` in ONE transaction (at most 65
        items), conditional on the sale being neither cancelled nor ended."""
        tx = Transaction()
        tx.update(
            FlashSaleItem,
            FlashSaleItem.key(sale.sale_id),
            [FlashSaleItem.cancelled_at.set(now_ms)],
            SALE_LABEL,
            condition=FlashSaleItem.cancelled_at.does_not_exist() & (FlashSaleItem.ends_at > now_ms),
        )
        for shard in range(sale.shards):
            tx.update(
                FlashShardItem,
                FlashShardItem.key(sale.sale_id, shard),
                [FlashShardItem.closed.set(True)],
                shard_label(shard),
                condition=FlashShardItem.pk.exists(),
            )
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if SALE_LABEL not in cancelled.failed:
                raise TemporarilyUnavailable("the flash sale could not be cancelled; retry") from cancelled
            stored = self.get(sale.sale_id)
            if stored is not None and stored.cancelled_at_ms is not None:
                return stored  # cancelled first by another request: its answer
            raise Ended("the flash sale has ended", flash_sale_id=sale.sale_id) from cancelled
        return replace(sale, cancelled_at_ms=now_ms)

    def ending_after(self, after_ms: int) -> Iterator[FlashSale]:
        with translated():
            found = FlashSaleItem.gsi1.query(SALES_PARTITION, FlashSaleItem.gsi1sk > f"{after_ms:013d}")
            for item in found:
                if isinstance(item, FlashSaleItem):
                    yield _sale_of(item)


def _add_sale(tx: Transaction, sale: FlashSale, now_ms: int) -> None:
    """The sale, its shards and the reconciler's marks, in one transaction."""
    pk, sk = FlashSaleItem.key(sale.sale_id)
    item = FlashSaleItem(
        pk,
        sk,
        sale_id=sale.sale_id,
        sku=sale.sku,
        price_fen=sale.price_fen,
        quantity=sale.quantity,
        per_user_limit=sale.per_user_limit,
        starts_at=sale.starts_at_ms,
        ends_at=sale.ends_at_ms,
        payment_window_s=sale.payment_window_s,
        shards=sale.shards,
        product_name=sale.product_name,
        list_price_fen=sale.list_price_fen,
        location=sale.location,
        created_at=now_ms,
        gsi1pk=SALES_PARTITION,
        gsi1sk=f"{sale.ends_at_ms:013d}#{sale.sale_id}",
    )
    tx.put(item, SALE_LABEL, condition=FlashSaleItem.pk.does_not_exist())
    shards_of(sale.sale_id, sale.shards).create(tx, sale.quantity, now_ms, sale_id=sale.sale_id)
    state_pk, state_sk = FlashReconcileItem.key(sale.sale_id)
    tx.put(FlashReconcileItem(state_pk, state_sk, marks={}, version=0, created_at=now_ms), STATE_LABEL)


def _sale_of(item: FlashSaleItem) -> FlashSale:
    return FlashSale(
        sale_id=item.sale_id,
        sku=item.sku,
        price_fen=int(item.price_fen),
        quantity=int(item.quantity),
        per_user_limit=int(item.per_user_limit),
        starts_at_ms=int(item.starts_at),
        ends_at_ms=int(item.ends_at),
        payment_window_s=int(item.payment_window_s),
        shards=int(item.shards),
        product_name=item.product_name,
        list_price_fen=int(item.list_price_fen),
        location=item.location or STOCK_LOCATION,
        holds_stock=item.location is not None,
        cancelled_at_ms=None if item.cancelled_at is None else int(item.cancelled_at),
    )


# -- the shards outside orders -----------------------------------------------------------------
class DynamoShards:
    """`shared.flash_sales.ports.ShardStore`."""

    def take(self, sale_id: str, shard: int, qty: int) -> Take:
        try:
            last = shards_of(sale_id).take(shard, qty, also=OPEN)
        except CounterRefused as refused:
            raise _refusal(refused.old, sale_id) from refused
        return Take(shard=shard, last_unit=last, qty=qty)

    def levels(self, sale: FlashSale) -> list[ShardLevel]:
        """One consistent BatchGetItem per 100 shards."""
        keys = [FlashShardItem.key(sale.sale_id, shard) for shard in range(sale.shards)]
        with translated():
            items = list(FlashShardItem.batch_get(keys, consistent_read=True))
        found = [
            ShardLevel(
                int(i.shard),
                int(i.initial),
                int(i.remaining),
                int(i.taken),
                int(i.returned),
                int(i.ordered or 0),
                bool(i.closed),
            )
            for i in items
            if isinstance(i, FlashShardItem)
        ]
        return sorted(found, key=lambda level: level.shard)

    def give_back(self, sale_id: str, takes: Sequence[Take], now_ms: int) -> None:
        tx = Transaction()
        by_shard: dict[int, int] = defaultdict(int)
        for taken in takes:
            _claim(tx, sale_id, taken, None, now_ms)
            by_shard[taken.shard] += taken.qty
        for shard, qty in sorted(by_shard.items()):
            _give_back_units(tx, sale_id, shard, qty)
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            raise UnitsClaimed(
                {
                    taken: _claim_status(cancelled, claim_label(taken))
                    for taken in takes
                    if claim_label(taken) in cancelled.failed
                }
            ) from cancelled

    def settle(self, sale: FlashSale, shard: int, qty: int) -> bool:
        tx = Transaction()
        tx.update(
            FlashShardItem,
            FlashShardItem.key(sale.sale_id, shard),
            [FlashShardItem.remaining.add(-qty), FlashShardItem.settled.add(qty)],
            shard_label(shard),
            condition=FlashShardItem.remaining == qty,
        )
        stock_store.release(tx, sale.sku, sale.location, qty)
        try:
            tx.commit()
        except TransactionCancelled:
            return False
        return True

    def claims_between(self, sale_id: str, shard: int, after_unit: int, through_unit: int) -> list[UnitClaim]:
        gsi1pk, low = FlashClaimItem.index_key(sale_id, shard, after_unit + 1)
        _, high = FlashClaimItem.index_key(sale_id, shard, through_unit)
        with translated():
            found = FlashClaimItem.gsi1.query(gsi1pk, FlashClaimItem.gsi1sk.between(low, high))
            return [
                UnitClaim(int(item.first_unit), int(item.qty), ClaimStatus(item.status))
                for item in found
                if isinstance(item, FlashClaimItem)
            ]

    def marks(self, sale_id: str) -> ReconcileMarks:
        with translated():
            try:
                item = FlashReconcileItem.get(*FlashReconcileItem.key(sale_id), consistent_read=True)
            except FlashReconcileItem.DoesNotExist:
                return ReconcileMarks({}, -1)
        stored = dict(item.marks or {})
        return ReconcileMarks({int(shard): ShardMark(*mark) for shard, mark in stored.items()}, int(item.version))

    def save_marks(self, sale_id: str, marks: ReconcileMarks) -> bool:
        """Conditional on the version read, so two reconcilers never both advance a mark."""
        pk, sk = FlashReconcileItem.key(sale_id)
        stored = {str(shard): [m.checked, m.pending, m.seen_at_ms] for shard, m in sorted(marks.shards.items())}
        item = FlashReconcileItem(pk, sk, marks=json.loads(json.dumps(stored)), version=marks.version + 1)
        version = marks.version
        condition = FlashReconcileItem.version == version if version >= 0 else FlashReconcileItem.pk.does_not_exist()
        tx = Transaction()
        tx.put(item, STATE_LABEL, condition=condition)
        try:
            tx.commit()
        except TransactionCancelled:
            return False
        return True


# A purchase's decrement, beside the counter's own `remaining >= qty`: the sale was not cancelled.
OPEN: Condition = FlashShardItem.closed.does_not_exist()


def _refusal(old: dict[str, Any], sale_id: str) -> Exception:
    """Why a purchase's decrement was refused, from the shard as it was (ALL_OLD)."""
    if old.get("closed", {}).get("BOOL"):
        return SaleCancelled("the flash sale was cancelled", flash_sale_id=sale_id)
    return ShardShort(int(old.get("remaining", {}).get("N", 0)))


def _claim_status(cancelled: TransactionCancelled, label: str) -> ClaimStatus:
    """How the claim that made part `label` fail holds the units (VOID: given back already)."""
    raw = cancelled.items.get(label) or {}
    return ClaimStatus.VOID if raw.get("status", {}).get("S") == "VOID" else ClaimStatus.ORDER


# -- parts of an order's transaction -----------------------------------------------------------
@dataclass
class _PartsOfOneOrder:
    """The flash parts one unit of work carries, to name the one that refused it."""

    limit: FlashSale | None = None
    sale_id: str = ""
    shards: list[int] = field(default_factory=list)
    claims: list[Take] = field(default_factory=list)

    def translate(self, cancelled: TransactionCancelled) -> None:
        failed = cancelled.failed
        if self.limit is not None and LIMIT_LABEL in failed:
            raise LimitReached(
                "this buyer has bought the most this sale allows",
                flash_sale_id=self.limit.sale_id,
                per_user_limit=self.limit.per_user_limit,
            ) from cancelled
        for shard in self.shards:
            if shard_label(shard) in failed:
                raise _refusal(cancelled.items.get(shard_label(shard)) or {}, self.sale_id) from cancelled
        claimed = {t: _claim_status(cancelled, claim_label(t)) for t in self.claims if claim_label(t) in failed}
        if claimed:
            raise UnitsClaimed(claimed) from cancelled
        if failed:
            raise TemporarilyUnavailable("the order could not be written; retry") from cancelled


# (table, sale, limit) -> the Put of a buyer's first count as PynamoDB builds it, for a stand-in
# buyer. Every purchase of a sale with a limit of 1 writes this part and only the buyer's key
# differs: PynamoDB building the item and its condition took 35 us of the service's CPU per flash
# order, copying the part with the buyer's key 1.9 us (docs/benchmarks.md, "The flash-order rate
# ratio: where the emulator's time goes").
_FIRST_COUNT_PARTS: dict[tuple[str, str, int], dict[str, Any]] = {}
FIRST_COUNT_PARTS_KEPT = 4096


def within_limit(sale: FlashSale, qty: int) -> Condition:
    """The buyer's count may take `qty` more: none yet, or at most the limit less `qty`."""
    return FlashBuyerItem.bought.does_not_exist() | (FlashBuyerItem.bought <= sale.per_user_limit - qty)


def first_count_part(sale: FlashSale, customer_id: str) -> dict[str, Any]:
    """The Put of `customer_id`'s count at the whole limit under `within_limit` (which names no
    buyer): PynamoDB's part for the sale, with this buyer's key in the item."""
    memo = (table_name(), sale.sale_id, sale.per_user_limit)
    template = _FIRST_COUNT_PARTS.get(memo)
    if template is None:
        if len(_FIRST_COUNT_PARTS) >= FIRST_COUNT_PARTS_KEPT:
            _FIRST_COUNT_PARTS.clear()
        limit = sale.per_user_limit
        stand_in = FlashBuyerItem(*FlashBuyerItem.key(sale.sale_id, ""), bought=limit)
        template = _FIRST_COUNT_PARTS[memo] = put_part(stand_in, within_limit(sale, limit))
    pk = FlashBuyerItem.key(sale.sale_id, customer_id)[0]
    part = dict(template)
    part["Item"] = {**template["Item"], FlashBuyerItem.pk.attr_name: {FlashBuyerItem.pk.attr_type: pk}}
    return part


class DynamoPurchaseParts:
    """`shared.flash_sales.ports.PurchaseParts`: parts of the ordering unit of work's DynamoDB
    transaction, with a translation of their refusals into the errors the port names."""

    def __init__(self) -> None:
        self._parts: weakref.WeakKeyDictionary[DynamoOrderingUnitOfWork, _PartsOfOneOrder] = weakref.WeakKeyDictionary()

    def take_in_order(self, uow: OrderingUnitOfWork, sale_id: str, shard: int, qty: int) -> None:
        shards_of(sale_id).take_in(_tx(uow), shard, qty, also=OPEN)
        parts = self._of(uow)
        parts.sale_id = sale_id
        parts.shards.append(shard)

    def count_purchase(self, uow: OrderingUnitOfWork, sale: FlashSale, customer_id: str, qty: int) -> None:
        tx = _tx(uow)
        self._of(uow).limit = sale
        if qty == sale.per_user_limit:
            # Buying the whole limit (every purchase when the limit is 1, the usual flash sale) is
            # only allowed to a buyer who holds nothing, so the count becomes exactly qty: a Put under
            # the same condition says so without reading. DynamoDB charges a Put and an Update alike;
            # the emulator validates an update expression twice when it creates the item, which made
            # this one part two thirds of the order's transaction (docs/flash-sales.md, "Performance").
            tx.add_put(first_count_part(sale, customer_id), LIMIT_LABEL)
            return
        tx.update(
            FlashBuyerItem,
            FlashBuyerItem.key(sale.sale_id, customer_id),
            # The first purchase creates the item, so it names its class too (scans and reads find it).
            [FlashBuyerItem.bought.add(qty), FlashBuyerItem.entity.set(FlashBuyerItem)],
            LIMIT_LABEL,
            condition=within_limit(sale, qty),
        )

    def claim(self, uow: OrderingUnitOfWork, sale_id: str, taken: Take, order_id: str, now_ms: int) -> None:
        _claim(_tx(uow), sale_id, taken, order_id, now_ms)
        self._of(uow).claims.append(taken)

    def release(self, uow: OrderingUnitOfWork, sale_id: str, shard: int, customer_id: str, qty: int) -> None:
        tx = _tx(uow)
        _give_back_units(tx, sale_id, shard, qty)
        tx.update(
            FlashBuyerItem,
            FlashBuyerItem.key(sale_id, customer_id),
            [FlashBuyerItem.bought.add(-qty)],
            LIMIT_LABEL,
            condition=FlashBuyerItem.bought >= qty,
        )

    def busy_on_shard(self, busy: TemporarilyUnavailable, shard: int) -> bool:
        return busy.details.get("reasons", {}).get(shard_label(shard)) in HOT_SHARD_CODES

    def _of(self, uow: OrderingUnitOfWork) -> _PartsOfOneOrder:
        assert isinstance(uow, DynamoOrderingUnitOfWork)  # _tx checked it
        parts = self._parts.get(uow)
        if parts is None:
            parts = self._parts[uow] = _PartsOfOneOrder()
            uow.translate(parts.translate)
        return parts


def _tx(uow: OrderingUnitOfWork) -> Transaction:
    if not isinstance(uow, DynamoOrderingUnitOfWork):
        raise TypeError(f"DynamoDB flash-sale parts join a DynamoDB unit of work, not {type(uow).__name__}")
    return uow.tx


def _claim(tx: Transaction, sale_id: str, taken: Take, order_id: str | None, now_ms: int) -> None:
    """The claim of `taken`'s units: by the order, or VOID (they go back). Fails if the units
    were claimed already, so an order and a give-back of the same units never both win."""
    pk, sk = FlashClaimItem.key(sale_id, taken.shard, taken.first_unit)
    gsi1pk, gsi1sk = FlashClaimItem.index_key(sale_id, taken.shard, taken.first_unit)
    item = FlashClaimItem(
        pk,
        sk,
        sale_id=sale_id,
        shard=taken.shard,
        first_unit=taken.first_unit,
        qty=taken.qty,
        status=str(ClaimStatus.ORDER if order_id else ClaimStatus.VOID),
        order_id=order_id,
        gsi1pk=gsi1pk,
        gsi1sk=gsi1sk,
        created_at=now_ms,
        # Absolute, from the caller's clock: a timedelta would have PynamoDB read the wall clock.
        ttl=datetime.fromtimestamp(now_ms / 1000, tz=UTC) + CLAIM_RETENTION,
    )
    tx.put(item, claim_label(taken), condition=FlashClaimItem.pk.does_not_exist())


def _give_back_units(tx: Transaction, sale_id: str, shard: int, qty: int) -> None:
    shards_of(sale_id).give_back(tx, shard, qty)
