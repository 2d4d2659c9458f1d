"""The attributes every shard of a sharded counter has (`shared.data.shard_counter`). Never written
itself (its discriminator only keeps every item class named):
a counter's own item class (a coupon template's shards, a flash sale's) subclasses it with a
discriminator and its key."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute

from shared.data.table import BaseItem


class CounterShardItem(BaseItem, discriminator="CounterShard"):
    """One shard of a counter: remaining = initial + returned - ordered - taken >= 0, kept by every
    write under a condition.
    `ordered`: units taken as a part of the transaction that holds them (a claim, an order);
    `taken`: units taken by a single-item decrement before what holds them is written; it only
    grows, so it numbers those units (a take of q ending at `taken = e` owns e-q+1 .. e);
    `returned`: units given back."""

    shard = NumberAttribute()
    initial = NumberAttribute()
    remaining = NumberAttribute()
    ordered = NumberAttribute(default=0)
    taken = NumberAttribute(default=0)
    returned = NumberAttribute(default=0)

    @staticmethod
    def key(owner_id: str, shard: int) -> tuple[str, str]:
        raise NotImplementedError("a counter's item class names its keys")
