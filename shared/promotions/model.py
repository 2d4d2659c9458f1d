"""Promotions (促销): what a promotion is, the rules a merchant's definition must keep, and what it
takes off a cart. Pure domain code; docs/pricing.md says the rules for people, and the order in
which the checkout applies them.

A `Promotion` is also what the order's pricing asks of a promotion (`shared.ordering.model.OrderPromotion`,
met structurally: this module imports only the kernel).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from shared.kernel.clock import iso
from shared.kernel.errors import ValidationFailed
from shared.kernel.scope import Scope
from shared.kernel.values import MAX_AMOUNT_FEN, MAX_PRICE_FEN, MAX_QUANTITY

PROMOTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_TIERS = 10
MAX_SCOPE_ENTRIES = 200
MAX_GIFT_QTY = 99
DAY_MS = 24 * 3600 * 1000
MAX_WINDOW_MS = 3660 * DAY_MS  # ten years: a window longer than that is a typing mistake


class Kind(StrEnum):
    SPEND_THRESHOLD = "spend_threshold"  # 满减 / 满折 by amount
    QUANTITY_THRESHOLD = "quantity_threshold"  # 满件减 / 满件折 by item count
    LIMITED_PRICE = "limited_price"  # 限时价: a final price per SKU
    GIFT = "gift"  # 满赠: a gift line priced at 0


THRESHOLD_KINDS = frozenset({Kind.SPEND_THRESHOLD, Kind.QUANTITY_THRESHOLD})


@dataclass(frozen=True)
class Tier:
    """One step of a threshold or gift promotion: reached at `threshold_fen` of covered merchandise
    (spend) or `min_qty` covered units (quantity); takes `off_fen` or `percent_off` (20 is 8折) off,
    or gives `gift_qty` of `gift_sku`."""

    threshold_fen: int = 0
    min_qty: int = 0
    off_fen: int | None = None
    percent_off: int | None = None
    gift_sku: str | None = None
    gift_qty: int = 0

    def reached(self, amount_fen: int, qty: int) -> bool:
        return amount_fen >= self.threshold_fen and qty >= self.min_qty

    def to_dict(self) -> dict[str, Any]:
        fields = {
            "threshold_fen": self.threshold_fen or None,
            "min_qty": self.min_qty or None,
            "off_fen": self.off_fen,
            "percent_off": self.percent_off,
            "gift_sku": self.gift_sku,
            "gift_qty": self.gift_qty or None,
        }
        return {k: v for k, v in fields.items() if v is not None}

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Tier:
        return cls(
            threshold_fen=int(raw.get("threshold_fen") or 0),
            min_qty=int(raw.get("min_qty") or 0),
            off_fen=None if raw.get("off_fen") is None else int(raw["off_fen"]),
            percent_off=None if raw.get("percent_off") is None else int(raw["percent_off"]),
            gift_sku=raw.get("gift_sku"),
            gift_qty=int(raw.get("gift_qty") or 0),
        )


@dataclass(frozen=True)
class Promotion:
    """A promotion as the merchant defined it. [starts_ms, ends_ms): running from its start, over at
    its end. `version` goes up by one with every replacement (the PUT's conditional write)."""

    promotion_id: str
    kind: Kind
    starts_ms: int
    ends_ms: int
    tiers: tuple[Tier, ...] = ()
    repeat: bool = False
    scope: Scope = field(default_factory=Scope)
    price_fen: int | None = None
    name: str = ""
    version: int = 1
    updated_at_ms: int = 0

    @classmethod
    def plan(cls, draft: Promotion, version: int, now_ms: int) -> Promotion:
        """`draft` as version `version`, or ValidationFailed (422) naming every problem."""
        problems = promotion_problems(draft)
        if problems:
            raise ValidationFailed("the promotion is not valid", errors=problems)
        return replace(draft, version=version, updated_at_ms=now_ms)

    # -- what the order's pricing asks (shared.ordering.model.OrderPromotion) ----------------------
    @property
    def is_threshold(self) -> bool:
        return self.kind in THRESHOLD_KINDS

    @property
    def is_gift(self) -> bool:
        return self.kind is Kind.GIFT

    @property
    def gift_skus(self) -> frozenset[str]:
        return frozenset(t.gift_sku for t in self.tiers if t.gift_sku is not None)

    def is_running(self, now_ms: int) -> bool:
        return self.starts_ms <= now_ms < self.ends_ms

    def covers(self, sku: str, category: str | None) -> bool:
        return self.scope.covers(sku, category)

    def limited_price(self, sku: str, category: str | None) -> int | None:
        """The final unit price this promotion gives `sku`, or None."""
        if self.kind is not Kind.LIMITED_PRICE or not self.covers(sku, category):
            return None
        return self.price_fen

    def saving(self, amount_fen: int, qty: int) -> int:
        """What a threshold promotion takes off covered merchandise of `amount_fen` in `qty` units:
        the highest tier reached (its amount, or its percent rounded down, in the merchant's
        favour); with `repeat`, the top tier's amount for every time its threshold fits (每满 X 减 Y).
        Never more than `amount_fen`, never below 0."""
        if not self.is_threshold:
            return 0
        tier = self._top_reached(amount_fen, qty)
        if tier is None or amount_fen <= 0:
            return 0
        if tier.percent_off is not None:
            off = amount_fen * tier.percent_off // 100
        else:
            off = tier.off_fen or 0
            if self.repeat and tier is self.tiers[-1]:
                times = amount_fen // tier.threshold_fen if tier.threshold_fen else qty // max(tier.min_qty, 1)
                off *= times
        return max(0, min(off, amount_fen))

    def gift(self, amount_fen: int, qty: int) -> tuple[str, int] | None:
        """The gift (SKU, units) of the highest tier reached, or None."""
        if not self.is_gift:
            return None
        tier = self._top_reached(amount_fen, qty)
        if tier is None or tier.gift_sku is None or (amount_fen <= 0 and qty <= 0):
            return None
        return tier.gift_sku, tier.gift_qty

    def gift_tiers(self, sku: str) -> tuple[tuple[int, int, int], ...]:
        """(threshold_fen, min_qty, units of `sku` it gives) of every tier, ascending."""
        return tuple((t.threshold_fen, t.min_qty, t.gift_qty if t.gift_sku == sku else 0) for t in self.tiers)

    def _top_reached(self, amount_fen: int, qty: int) -> Tier | None:
        reached = [tier for tier in self.tiers if tier.reached(amount_fen, qty)]
        return reached[-1] if reached else None

    # -- views and records ------------------------------------------------------------------------
    def status(self, now_ms: int) -> str:
        if now_ms < self.starts_ms:
            return "scheduled"
        return "running" if now_ms < self.ends_ms else "ended"

    def view(self, now_ms: int) -> dict[str, Any]:
        view: dict[str, Any] = {
            "promotion_id": self.promotion_id,
            "kind": str(self.kind),
            "name": self.name,
            "tiers": [t.to_dict() for t in self.tiers],
            "repeat": self.repeat,
            "scope": self.scope.to_dict(),
            "price_fen": self.price_fen,
            "starts_at": iso(self.starts_ms),
            "ends_at": iso(self.ends_ms),
            "status": self.status(now_ms),
            "version": self.version,
        }
        return view

    def to_record(self) -> dict[str, Any]:
        """The promotion as the data layer keeps it (JSON)."""
        return {
            "kind": str(self.kind),
            "name": self.name,
            "tiers": [t.to_dict() for t in self.tiers],
            "repeat": self.repeat,
            "scope": self.scope.to_dict(),
            "price_fen": self.price_fen,
        }

    @classmethod
    def of_record(
        cls, promotion_id: str, record: Mapping[str, Any], starts_ms: int, ends_ms: int, version: int, updated_ms: int
    ) -> Promotion:
        return cls(
            promotion_id=promotion_id,
            kind=Kind(record["kind"]),
            starts_ms=starts_ms,
            ends_ms=ends_ms,
            tiers=tuple(Tier.of(t) for t in record.get("tiers") or ()),
            repeat=bool(record.get("repeat")),
            scope=Scope.of(record.get("scope")),
            price_fen=None if record.get("price_fen") is None else int(record["price_fen"]),
            name=str(record.get("name") or ""),
            version=version,
            updated_at_ms=updated_ms,
        )


# -- the rules a definition keeps (422 VALIDATION_FAILED with every problem) ---------------------
Problems = list[dict[str, str]]


def promotion_problems(p: Promotion) -> Problems:
    problems: Problems = []
    if not PROMOTION_ID.fullmatch(p.promotion_id):
        problems.append(
            {"field": "id", "problem": "1..64 letters, digits, '_' or '-', starting with a letter or digit"}
        )
    if p.ends_ms <= p.starts_ms:
        problems.append({"field": "ends_at", "problem": "must be after starts_at"})
    elif p.ends_ms - p.starts_ms > MAX_WINDOW_MS:
        problems.append({"field": "ends_at", "problem": "a promotion runs for at most 3,660 days"})
    for name in ("skus", "categories", "exclude_skus", "exclude_categories"):
        if len(getattr(p.scope, name)) > MAX_SCOPE_ENTRIES:
            problems.append({"field": f"scope.{name}", "problem": f"at most {MAX_SCOPE_ENTRIES} entries"})
    if p.kind is Kind.LIMITED_PRICE:
        return problems + _limited_price_problems(p)
    if p.price_fen is not None:
        problems.append({"field": "price_fen", "problem": "price_fen is for limited_price promotions"})
    if not 1 <= len(p.tiers) <= MAX_TIERS:
        return [*problems, {"field": "tiers", "problem": f"give 1..{MAX_TIERS} tiers"}]
    if p.kind is Kind.GIFT:
        return problems + _gift_problems(p)
    return problems + _threshold_problems(p)


def _limited_price_problems(p: Promotion) -> Problems:
    problems: Problems = []
    if p.price_fen is None or not 1 <= p.price_fen <= MAX_PRICE_FEN:
        problems.append(
            {"field": "price_fen", "problem": f"a limited_price promotion needs price_fen 1..{MAX_PRICE_FEN}"}
        )
    if p.tiers or p.repeat:
        problems.append({"field": "tiers", "problem": "a limited_price promotion has no tiers and no repeat"})
    if not p.scope.skus or p.scope.categories:
        problems.append({"field": "scope.skus", "problem": "a limited price is per SKU: list the SKUs (no categories)"})
    return problems


def _threshold_problems(p: Promotion) -> Problems:
    by_spend = p.kind is Kind.SPEND_THRESHOLD
    problems: Problems = []
    for i, tier in enumerate(p.tiers):
        where = f"tiers.{i}"
        if tier.gift_sku is not None or tier.gift_qty:
            problems.append({"field": where, "problem": "gift_sku and gift_qty are for gift promotions"})
        problems += _measure_problems(tier, by_spend, where) + _benefit_problems(tier, by_spend, where)
    if problems:
        return problems
    if len({t.percent_off is None for t in p.tiers}) > 1:
        return [{"field": "tiers", "problem": "every tier takes an amount off, or every tier a percent"}]
    if p.repeat and p.tiers[-1].off_fen is None:
        return [{"field": "repeat", "problem": "only an amount off repeats (每满 X 减 Y)"}]
    savings = [t.off_fen or t.percent_off or 0 for t in p.tiers]
    if any(b <= a for a, b in itertools.pairwise(savings)):
        problems.append({"field": "tiers", "problem": "each tier must take off more than the one below it"})
    return problems + _ascending(p.tiers, by_spend)


def _benefit_problems(tier: Tier, by_spend: bool, where: str) -> Problems:
    if (tier.off_fen is None) == (tier.percent_off is None):
        return [{"field": where, "problem": "give exactly one of off_fen and percent_off"}]
    if tier.off_fen is not None:
        if not 1 <= tier.off_fen <= MAX_AMOUNT_FEN:
            return [{"field": f"{where}.off_fen", "problem": "must be > 0"}]
        if by_spend and tier.off_fen > tier.threshold_fen:
            # Otherwise the reduction could exceed the merchandise that reached the tier.
            return [{"field": f"{where}.off_fen", "problem": "must not exceed its threshold_fen"}]
    elif tier.percent_off is not None and not 1 <= tier.percent_off <= 99:
        return [{"field": f"{where}.percent_off", "problem": "must be 1..99 (20 is 8折)"}]
    return []


def _gift_problems(p: Promotion) -> Problems:
    problems: Problems = []
    if p.repeat:
        problems.append({"field": "repeat", "problem": "a gift promotion does not repeat"})
    by_spend = p.tiers[0].threshold_fen > 0
    for i, tier in enumerate(p.tiers):
        where = f"tiers.{i}"
        if tier.off_fen is not None or tier.percent_off is not None:
            problems.append({"field": where, "problem": "off_fen and percent_off are for threshold promotions"})
        problems += _measure_problems(tier, by_spend, where)
        if tier.gift_sku is None or not SKU.fullmatch(tier.gift_sku):
            problems.append({"field": f"{where}.gift_sku", "problem": "a gift tier needs the gift's SKU"})
        if not 1 <= tier.gift_qty <= MAX_GIFT_QTY:
            problems.append({"field": f"{where}.gift_qty", "problem": f"must be 1..{MAX_GIFT_QTY}"})
    return problems or _ascending(p.tiers, by_spend)


def _measure_problems(tier: Tier, by_spend: bool, where: str) -> Problems:
    if by_spend:
        if tier.min_qty:
            return [{"field": f"{where}.min_qty", "problem": "a tier by amount has threshold_fen, not min_qty"}]
        if not 1 <= tier.threshold_fen <= MAX_AMOUNT_FEN:
            return [{"field": f"{where}.threshold_fen", "problem": "must be > 0"}]
        return []
    if tier.threshold_fen:
        return [{"field": f"{where}.threshold_fen", "problem": "a tier by item count has min_qty, not threshold_fen"}]
    if not 1 <= tier.min_qty <= MAX_QUANTITY * 100:
        return [{"field": f"{where}.min_qty", "problem": "must be > 0"}]
    return []


def _ascending(tiers: Sequence[Tier], by_spend: bool) -> Problems:
    steps = [t.threshold_fen if by_spend else t.min_qty for t in tiers]
    if any(b <= a for a, b in itertools.pairwise(steps)):
        name = "threshold_fen" if by_spend else "min_qty"
        return [{"field": "tiers", "problem": f"tiers must be in strictly ascending {name}"}]
    return []
