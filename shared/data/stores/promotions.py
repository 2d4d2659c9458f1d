"""Promotions in DynamoDB (see PromotionItem for keys; docs/pricing.md, "Where checkout finds the
promotions").

`current()` is one Query of gsi1 `PROMOTIONS` from now on (the promotions not yet ended). Checkout
reads it on every quote and order, so it is kept per process for `CACHE_S` seconds, like the
locations list: placing an order stays one BatchGetItem and one transaction, and a gift's product
and stock join that BatchGetItem because the promotions are known before it. A PUT in this process
drops the cached list at once; another process sees it within `CACHE_S`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition

from shared.data.connection import table_name
from shared.data.items.promotions import PROMOTIONS_PARTITION, PromotionItem
from shared.data.transactions import condition_failed, translated
from shared.kernel.clock import SYSTEM, Clock
from shared.kernel.errors import ConcurrentUpdate
from shared.promotions.model import Promotion

CACHE_S = 10.0


@dataclass(frozen=True)
class _Cached:
    clock: Clock  # an entry counts only for the clock whose monotonic seconds `until` is on
    until: float
    promotions: list[Promotion]  # not ended when read: callers filter by their own `now`


# Per process and table: stores are built per request, the list outlives them.
_cache: dict[str, _Cached] = {}


def forget_cached() -> None:
    """Drop every cached list (tests and the local stage, after writing promotions directly)."""
    _cache.clear()


class DynamoPromotions:
    def __init__(self, clock: Clock = SYSTEM) -> None:
        self.clock = clock

    def get(self, promotion_id: str) -> Promotion | None:
        with translated():
            try:
                item = PromotionItem.get(*PromotionItem.key(promotion_id), consistent_read=True)
            except PromotionItem.DoesNotExist:
                return None
        return promotion_of(item)

    def put(self, promotion: Promotion, expected_version: int | None) -> None:
        pk, sk = PromotionItem.key(promotion.promotion_id)
        item = PromotionItem(
            pk,
            sk,
            promotion_id=promotion.promotion_id,
            record=promotion.to_record(),
            starts_at=promotion.starts_ms,
            ends_at=promotion.ends_ms,
            version=promotion.version,
            updated_at=promotion.updated_at_ms,
            gsi1pk=PROMOTIONS_PARTITION,
            gsi1sk=PromotionItem.index_key(promotion.ends_ms, promotion.promotion_id),
            created_at=promotion.updated_at_ms,
        )
        condition: Condition = PromotionItem.pk.does_not_exist()
        if expected_version is not None:
            condition = PromotionItem.version == expected_version
        with translated():
            try:
                item.save(condition=condition)
            except PutError as exc:
                if condition_failed(exc):
                    raise ConcurrentUpdate(
                        "the promotion changed while saving", promotion_id=promotion.promotion_id
                    ) from exc
                raise
        _cache.pop(table_name(), None)

    def current(self, now_ms: int) -> list[Promotion]:
        key = table_name()
        cached = _cache.get(key)
        if cached is not None and cached.clock is self.clock and cached.until > self.clock.monotonic():
            return cached.promotions
        after = PromotionItem.index_key(now_ms, "")
        with translated():
            found = PromotionItem.gsi1.query(PROMOTIONS_PARTITION, PromotionItem.gsi1sk > after)
            promotions = [promotion_of(item) for item in found if isinstance(item, PromotionItem)]
        promotions.sort(key=lambda p: p.promotion_id)
        _cache[key] = _Cached(self.clock, self.clock.monotonic() + CACHE_S, promotions)
        return promotions


def promotion_of(item: PromotionItem) -> Promotion:
    return Promotion.of_record(
        item.promotion_id,
        item.record,
        int(item.starts_at),
        int(item.ends_at),
        int(item.version),
        int(item.updated_at),
    )
