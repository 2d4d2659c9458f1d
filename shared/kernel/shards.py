"""Sharded counters: how many shard items a hot counter needs, how its units are split over them,
and where a caller starts (docs/flash-sales.md, "The ceiling and the shards"). Pure arithmetic,
shared by flash-sale stock and coupon templates, which are the same hot-item problem."""

from __future__ import annotations

import math
import zlib

PARTITION_WRITES_PER_S = 1_000  # DynamoDB: 1,000 WCU per partition; a shard decrement is 1 WCU
HEADROOM = 0.5  # uneven hashing, bursts, the shard writes of compensations and releases
MAX_SHARDS = 64  # a counter is created in one transaction with its shards (<= 100 items)


def shards_for_peak(peak_per_s: int, quantity: int, max_shards: int = MAX_SHARDS) -> int:
    """N = ceil(peak / (1,000 x HEADROOM)), at least 1, at most `max_shards` and never more shards
    than units (an empty shard only costs a caller a round trip)."""
    wanted = math.ceil(peak_per_s / (PARTITION_WRITES_PER_S * HEADROOM))
    return max(1, min(wanted, max_shards, quantity))


def split(quantity: int, shards: int) -> list[int]:
    """The quantity per shard: as even as it goes, the remainder on the first shards."""
    base, extra = divmod(quantity, shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]


def start_shard(key: str, shards: int) -> int:
    """The shard a caller (a buyer, an order) tries first: stable per key, spread evenly over keys."""
    return zlib.crc32(key.encode()) % shards


def shard_order(key: str, shards: int) -> list[int]:
    """Every shard once, starting at the key's own."""
    first = start_shard(key, shards)
    return [(first + step) % shards for step in range(shards)]
