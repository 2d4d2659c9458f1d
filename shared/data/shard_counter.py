"""A sharded counter in DynamoDB: a hot quantity (a coupon template's coupons, a flash sale's units)
split over N shard items, each a partition of its own, so the counter takes N x 1,000 writes a
second instead of one partition's 1,000. The arithmetic (how many shards, the split, where a
caller starts) is `shared.kernel.shards`; this module is the writes and reads, one for every
counter (docs/coupons.md, "Claims"; docs/flash-sales.md, "The ceiling and the shards").

Every write keeps `remaining = initial + returned - ordered - taken >= 0` under a condition:

- `take_in(tx, shard, q)`: the decrement as a part of the caller's transaction (with the coupon or
  the order that holds the units): one round trip, atomic, nothing to give back. In DynamoDB,
  concurrent transactions on one item conflict (TransactionConflict), so a caller with a contended
  shard moves to another shard, or to `take`;
- `take(shard, q)`: ONE single-item conditional UpdateItem, never a transaction (plain updates do
  not conflict with each other); it numbers the units (`taken`) so that whoever holds them can
  claim them, and a reconciler can find units nobody claimed;
- `give_back(tx, shard, q)`: the increment, in the transaction that makes the give-back happen once.

Which shard a refused part was, and what it saw: `short_on(cancelled, shard)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.expressions.condition import Condition

from shared.data.connection import connection, table_name
from shared.data.items.shard_counter import CounterShardItem
from shared.data.transactions import TRANSIENT_CODES, Transaction, TransactionCancelled, translated, update_part
from shared.kernel.errors import TemporarilyUnavailable
from shared.kernel.shards import split

# (table, shard item class, key, qty, id of the owner's condition) -> (that condition, the part).
# A flash sale's purchases take the same quantity off the same few shards all day, and PynamoDB
# building the same expressions again was a sixth of the service's own CPU per flash order
# (docs/benchmarks.md, "The flash-order rate ratio on a quiet machine"). The condition is kept
# beside its part, so a new condition that reuses a dropped one's id is never given the old part;
# owners build theirs once (the flash sale's OPEN).
_TAKE_IN_PARTS: dict[tuple[Any, ...], tuple[Condition | None, dict[str, Any]]] = {}
TAKE_IN_PARTS_KEPT = 4096


class ShardShort(Exception):
    """The shard refused the take: fewer units than asked (`remaining` as the failed condition saw
    it), or the owner's own condition (`old`: the shard as it was, to tell which)."""

    def __init__(self, remaining: int, old: dict[str, Any] | None = None) -> None:
        super().__init__(f"shard has {remaining} units")
        self.remaining = remaining
        self.old = old or {}


@dataclass(frozen=True)
class ShardLevel:
    shard: int
    initial: int
    remaining: int
    taken: int
    returned: int
    ordered: int = 0


@dataclass(frozen=True)
class ShardedCounter:
    """The shards of one counter: `item` names the keys (`item.key(owner_id, n)`), `label` prefixes
    the transaction labels of its parts (`<label>:<n>`)."""

    item: type[CounterShardItem]
    owner_id: str
    shards: int
    label: str

    def key(self, shard: int) -> tuple[str, str]:
        return self.item.key(self.owner_id, shard)

    def part(self, shard: int) -> str:
        return f"{self.label}:{shard}"

    def create(self, tx: Transaction, quantity: int, now_ms: int, **attributes: Any) -> None:
        """Every shard, `quantity` split over them (`split`), each put only if it is new;
        `attributes` are the owner's own (e.g. the sale or template id)."""
        for shard, units in enumerate(split(quantity, self.shards)):
            pk, sk = self.key(shard)
            item = self.item(
                pk,
                sk,
                shard=shard,
                initial=units,
                remaining=units,
                ordered=0,
                taken=0,
                returned=0,
                created_at=now_ms,
                **attributes,
            )
            tx.put(item, self.part(shard), condition=self.item.pk.does_not_exist())

    def take_in(self, tx: Transaction, shard: int, qty: int, also: Condition | None = None) -> None:
        """`qty` units off `shard` as a part of `tx`; the part fails if the shard has fewer (or
        `also`, the owner's own condition on the shard, does not hold)."""
        memo = (table_name(), self.item, self.key(shard), qty, id(also))
        found = _TAKE_IN_PARTS.get(memo)
        if found is None or found[0] is not also:
            if len(_TAKE_IN_PARTS) >= TAKE_IN_PARTS_KEPT:
                _TAKE_IN_PARTS.clear()
            actions = [self.item.remaining.add(-qty), self.item.ordered.add(qty)]
            part = update_part(self.item, self.key(shard), actions, self._with(qty, also))
            found = _TAKE_IN_PARTS[memo] = (also, part)
        tx.add_update(found[1], self.part(shard))

    def _with(self, qty: int, also: Condition | None) -> Condition:
        enough: Condition = self.item.remaining >= qty
        return enough if also is None else enough & also

    def short_on(self, cancelled: TransactionCancelled, shard: int) -> int | None:
        """What the refused `take_in` part of `shard` saw remaining; None if that part passed."""
        label = self.part(shard)
        if label not in cancelled.failed:
            return None
        raw = cancelled.items.get(label) or {}
        return int(raw.get("remaining", {}).get("N", 0))

    def take(self, shard: int, qty: int, also: Condition | None = None) -> int:
        """`qty` units off `shard` by one conditional UpdateItem: the shard's `taken` after it (the
        units are numbers taken-qty+1 .. taken). ShardShort if it has fewer (or `also` does not
        hold); TemporarilyUnavailable if DynamoDB is busy (throttled, or a transaction holds it)."""
        hash_key, range_key = self.item._serialize_keys(*self.key(shard))
        kwargs = self.item._get_connection().get_operation_kwargs(
            hash_key=hash_key,
            range_key=range_key,
            condition=self._with(qty, also),
            actions=[self.item.remaining.add(-qty), self.item.taken.add(qty)],
            return_values="UPDATED_NEW",
            return_values_on_condition_failure="ALL_OLD",
        )
        try:
            # The botocore client itself (not PynamoDB's wrapper, which drops the failed item).
            response = connection().client.update_item(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                old = exc.response.get("Item") or {}
                raise ShardShort(int(old.get("remaining", {}).get("N", 0)), old) from exc
            if code in TRANSIENT_CODES:
                raise TemporarilyUnavailable("the shard is busy; retry", aws_code=code) from exc
            raise
        except BotoCoreError as exc:
            raise TemporarilyUnavailable("the database did not answer in time; retry") from exc
        return int(response["Attributes"]["taken"]["N"])

    def give_back(self, tx: Transaction, shard: int, qty: int) -> None:
        """`qty` units back onto `shard`, as a part of `tx`."""
        tx.update(
            self.item,
            self.key(shard),
            [self.item.remaining.add(qty), self.item.returned.add(qty)],
            self.part(shard),
            condition=self.item.pk.exists(),
        )

    def levels(self) -> list[ShardLevel]:
        """Every shard, read consistently (one BatchGetItem per 100 shards), in shard order."""
        keys = [self.key(shard) for shard in range(self.shards)]
        with translated():
            items = list(self.item.batch_get(keys, consistent_read=True))
        found = [
            ShardLevel(
                shard=int(i.shard),
                initial=int(i.initial),
                remaining=int(i.remaining),
                taken=int(i.taken or 0),
                returned=int(i.returned or 0),
                ordered=int(i.ordered or 0),
            )
            for i in items
            if isinstance(i, self.item)
        ]
        return sorted(found, key=lambda level: level.shard)
