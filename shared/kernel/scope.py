"""What a coupon or a promotion applies to (docs/coupons.md, docs/pricing.md): one rule for both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """Everything, or the listed SKUs and categories; exclusions win."""

    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    exclude_skus: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()

    def covers(self, sku: str, category: str | None) -> bool:
        if sku in self.exclude_skus or (category is not None and category in self.exclude_categories):
            return False
        if not self.skus and not self.categories:
            return True
        return sku in self.skus or (category is not None and category in self.categories)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "skus": sorted(self.skus),
            "categories": sorted(self.categories),
            "exclude_skus": sorted(self.exclude_skus),
            "exclude_categories": sorted(self.exclude_categories),
        }

    @classmethod
    def of(cls, raw: Mapping[str, Iterable[str]] | None) -> Scope:
        raw = raw or {}
        return cls(**{name: frozenset(raw.get(name) or ()) for name in cls.__dataclass_fields__})
