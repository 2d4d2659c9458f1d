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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.expressions.condition import Condition

from shared.data.connection import connection
from shared.data.items import (
    FlashBuyerItem,
    FlashClaimItem,
    FlashReconcileItem,
    FlashSaleItem,
    FlashShardItem,
)
from shared.data.items.flash_sales import SALES_PARTITION
from shared.data.table import BaseItem
from shared.data.transactions import TRANSIENT_CODES, Transaction, TransactionCancelled, translated
from shared.flash_sales.model import FlashSale, Take
from shared.kernel.errors import TemporarilyUnavailable
from shared.kernel.shards import split

LIMIT_LABEL = "flash-limit"
CLAIM_PREFIX = "flash-claim:"
SHARD_PREFIX = "flash-shard:"
STATE_LABEL = "flash-reconcile"
CLAIM_RETENTION = timedelta(days=60)


class ShardShort(Exception):
    """The shard has fewer units than asked (`remaining` as the failed condition saw it)."""

    def __init__(self, remaining: int) -> None:
        super().__init__(f"shard has {remaining} units")
        self.remaining = remaining


@dataclass(frozen=True)
class ShardLevel:
    shard: int
    initial: int
    remaining: int
    taken: int
    returned: int
    ordered: int = 0


@dataclass(frozen=True)
class Claim:
    first_unit: int
    qty: int
    status: str


# -- the sale ----------------------------------------------------------------------------------
def create(tx: Transaction, sale: FlashSale, now_ms: int) -> None:
    """The sale, its shards and the reconciler's marks, in the caller's transaction."""
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
        created_at=now_ms,
        gsi1pk=SALES_PARTITION,
        gsi1sk=f"{sale.ends_at_ms:013d}#{sale.sale_id}",
    )
    tx.put(item, "flash-sale", condition=FlashSaleItem.pk.does_not_exist())
    for shard, units in enumerate(split(sale.quantity, sale.shards)):
        shard_pk, shard_sk = FlashShardItem.key(sale.sale_id, shard)
        shard_item = FlashShardItem(
            shard_pk,
            shard_sk,
            sale_id=sale.sale_id,
            shard=shard,
            initial=units,
            remaining=units,
            ordered=0,
            taken=0,
            returned=0,
            created_at=now_ms,
        )
        tx.put(shard_item, f"{SHARD_PREFIX}{shard}", condition=FlashShardItem.pk.does_not_exist())
    state_pk, state_sk = FlashReconcileItem.key(sale.sale_id)
    tx.put(FlashReconcileItem(state_pk, state_sk, marks={}, version=0, created_at=now_ms), STATE_LABEL)


def get(sale_id: str) -> FlashSale | None:
    with translated():
        try:
            item = FlashSaleItem.get(*FlashSaleItem.key(sale_id), consistent_read=True)
        except FlashSaleItem.DoesNotExist:
            return None
    return _sale_of(item)


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
    )


def sales_ending_after(after_ms: int) -> Iterator[FlashSale]:
    """Sales that end after `after_ms` (live, future and recently ended ones), by end time."""
    with translated():
        found = FlashSaleItem.gsi1.query(SALES_PARTITION, FlashSaleItem.gsi1sk > f"{after_ms:013d}")
        for item in found:
            if isinstance(item, FlashSaleItem):
                yield _sale_of(item)


def levels(sale: FlashSale) -> list[ShardLevel]:
    """Every shard, read consistently (one BatchGetItem per 100 shards)."""
    keys = [FlashShardItem.key(sale.sale_id, shard) for shard in range(sale.shards)]
    with translated():
        items = list(FlashShardItem.batch_get(keys, consistent_read=True))
    found = [
        ShardLevel(int(i.shard), int(i.initial), int(i.remaining), int(i.taken), int(i.returned), int(i.ordered or 0))
        for i in items
        if isinstance(i, FlashShardItem)
    ]
    return sorted(found, key=lambda level: level.shard)


# -- the hot path ------------------------------------------------------------------------------
def take_in_order(tx: Transaction, sale_id: str, shard: int, qty: int) -> None:
    """The shard's decrement as a part of the order's transaction (the uncontended path). If the
    shard has fewer than qty, that part fails and `left_on` tells what it had."""
    tx.update(
        FlashShardItem,
        FlashShardItem.key(sale_id, shard),
        [FlashShardItem.remaining.add(-qty), FlashShardItem.ordered.add(qty)],
        f"{SHARD_PREFIX}{shard}",
        condition=FlashShardItem.remaining >= qty,
    )


def left_on(cancelled: TransactionCancelled, label: str) -> int | None:
    """What the shard part `label` of a cancelled transaction saw remaining; None if it passed."""
    if label not in cancelled.failed:
        return None
    raw = cancelled.items.get(label) or {}
    return int(raw.get("remaining", {}).get("N", 0))


def take(sale_id: str, shard: int, qty: int) -> Take:
    """Take `qty` units from one shard: one conditional UpdateItem. ShardShort if it has fewer;
    TemporarilyUnavailable if DynamoDB is busy (throttled, or a transaction holds the shard)."""
    kwargs = _operation(
        FlashShardItem,
        FlashShardItem.key(sale_id, shard),
        condition=FlashShardItem.remaining >= qty,
        actions=[FlashShardItem.remaining.add(-qty), FlashShardItem.taken.add(qty)],
        return_values="UPDATED_NEW",
        return_values_on_condition_failure="ALL_OLD",
    )
    try:
        # The botocore client itself (not PynamoDB's wrapper, which drops the failed item).
        response = connection().client.update_item(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            old = exc.response.get("Item") or {}
            raise ShardShort(int(old.get("remaining", {}).get("N", 0))) from exc
        raise _busy(exc) from exc
    except BotoCoreError as exc:
        raise TemporarilyUnavailable("the database did not answer in time; retry") from exc
    return Take(shard=shard, last_unit=int(response["Attributes"]["taken"]["N"]), qty=qty)


def _busy(exc: ClientError) -> Exception:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in TRANSIENT_CODES:
        return TemporarilyUnavailable("the shard is busy; retry", aws_code=code)
    return exc


def _operation(item_cls: type[BaseItem], key: tuple[str, str], **kwargs: Any) -> dict[str, Any]:
    hash_key, range_key = item_cls._serialize_keys(key[0], key[1])
    return item_cls._get_connection().get_operation_kwargs(hash_key=hash_key, range_key=range_key, **kwargs)


# -- parts of the order's transaction ----------------------------------------------------------
def count_purchase(tx: Transaction, sale: FlashSale, customer_id: str, qty: int) -> None:
    """The buyer's count goes up by qty unless that passes the limit (LIMIT_LABEL fails)."""
    condition: Condition = FlashBuyerItem.bought.does_not_exist() | (FlashBuyerItem.bought <= sale.per_user_limit - qty)
    if qty == sale.per_user_limit:
        # Buying the whole limit (every purchase when the limit is 1, the usual flash sale) is only
        # allowed to a buyer who holds nothing, so the count becomes exactly qty: a Put under the
        # same condition says so without reading. DynamoDB charges a Put and an Update alike; the
        # emulator validates an update expression twice when it creates the item, which made this
        # one part two thirds of the order's transaction (docs/flash-sales.md, "Performance").
        tx.put(FlashBuyerItem(*FlashBuyerItem.key(sale.sale_id, customer_id), bought=qty), LIMIT_LABEL, condition)
        return
    tx.update(
        FlashBuyerItem,
        FlashBuyerItem.key(sale.sale_id, customer_id),
        # The first purchase creates the item, so it names its class too (scans and reads find it).
        [FlashBuyerItem.bought.add(qty), FlashBuyerItem.entity.set(FlashBuyerItem)],
        LIMIT_LABEL,
        condition=condition,
    )


def claim(tx: Transaction, sale_id: str, taken: Take, order_id: str | None, now_ms: int) -> None:
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
        status="ORDER" if order_id else "VOID",
        order_id=order_id,
        gsi1pk=gsi1pk,
        gsi1sk=gsi1sk,
        created_at=now_ms,
        ttl=CLAIM_RETENTION,
    )
    tx.put(item, f"{CLAIM_PREFIX}{taken.shard}:{taken.first_unit}", condition=FlashClaimItem.pk.does_not_exist())


def give_back_units(tx: Transaction, sale_id: str, shard: int, qty: int) -> None:
    tx.update(
        FlashShardItem,
        FlashShardItem.key(sale_id, shard),
        [FlashShardItem.remaining.add(qty), FlashShardItem.returned.add(qty)],
        f"{SHARD_PREFIX}{shard}",
        condition=FlashShardItem.pk.exists(),
    )


def uncount_purchase(tx: Transaction, sale_id: str, customer_id: str, qty: int) -> None:
    tx.update(
        FlashBuyerItem,
        FlashBuyerItem.key(sale_id, customer_id),
        [FlashBuyerItem.bought.add(-qty)],
        LIMIT_LABEL,
        condition=FlashBuyerItem.bought >= qty,
    )


def claim_labels(cancelled: TransactionCancelled) -> list[str]:
    return [label for label in cancelled.failed if label.startswith(CLAIM_PREFIX)]


def voided(cancelled: TransactionCancelled, label: str) -> bool:
    """Did the failed claim `label` fail because the units were VOID (given back) already?"""
    raw = cancelled.items.get(label) or {}
    return raw.get("status", {}).get("S") == "VOID"


# -- reconciliation ----------------------------------------------------------------------------
def claims_between(sale_id: str, shard: int, after_unit: int, through_unit: int) -> list[Claim]:
    """Claims whose first unit is in (after_unit, through_unit], in order."""
    gsi1pk, low = FlashClaimItem.index_key(sale_id, shard, after_unit + 1)
    _, high = FlashClaimItem.index_key(sale_id, shard, through_unit)
    with translated():
        found = FlashClaimItem.gsi1.query(gsi1pk, FlashClaimItem.gsi1sk.between(low, high))
        return [
            Claim(int(item.first_unit), int(item.qty), item.status)
            for item in found
            if isinstance(item, FlashClaimItem)
        ]


def marks(sale_id: str) -> tuple[dict[str, list[int]], int]:
    with translated():
        try:
            item = FlashReconcileItem.get(*FlashReconcileItem.key(sale_id), consistent_read=True)
        except FlashReconcileItem.DoesNotExist:
            return {}, -1
    return dict(item.marks or {}), int(item.version)


def save_marks(tx: Transaction, sale_id: str, new_marks: dict[str, list[int]], version: int) -> None:
    """Conditional on the version read, so two reconcilers never both advance a mark."""
    pk, sk = FlashReconcileItem.key(sale_id)
    item = FlashReconcileItem(pk, sk, marks=json.loads(json.dumps(new_marks)), version=version + 1)
    condition = FlashReconcileItem.version == version if version >= 0 else FlashReconcileItem.pk.does_not_exist()
    tx.put(item, STATE_LABEL, condition=condition)


def units_of(takes: Iterable[Take]) -> int:
    return sum(taken.qty for taken in takes)
