"""Paid membership (付费会员, issue 14 item 3; docs/membership.md "Paid membership"): the merchant's
plans and the day arithmetic of the terms a customer buys.

- A **plan** (`PUT /admin/membership-plans/{plan_id}`) is a tier (name and rank: a higher rank is a
  higher tier), a price in fen for so many days, the member benefits (member prices and/or a
  discount in basis points), the welcome coupon templates, the rebate for the bound guide and the
  full-refund window. Each save is the next version, conditional on the one read (409 otherwise).
- A **term** is one purchase: the plan's terms copied when it was bought, and where it lies on the
  customer's timeline as segments `[start, end)` in epoch ms (an upgrade splits the running term).
  `after_purchase` is the whole rule: a renewal (same or lower rank) starts at the later of now and
  the end of everything bought; an upgrade (a higher rank than the running term) starts now, and
  every part of the terms still to come moves back by the upgrade's days, so the lower tier's
  remaining days follow the higher one. Days bought = days of membership, and no two segments
  overlap (tests/unit/test_paid_membership.py, a hypothesis property).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from shared.kernel.clock import iso
from shared.kernel.errors import ConcurrentUpdate, NotFound

DAY_MS = 86_400_000
PLAN_SKU_PREFIX = "MEMBERSHIP-"  # the order line of a membership purchase: sku MEMBERSHIP-<plan_id>


@dataclass(frozen=True)
class Plan:
    plan_id: str
    tier: str
    rank: int
    price_fen: int
    days: int
    member_price: bool = True
    discount_bp: int = 0
    welcome_coupon_template_ids: tuple[str, ...] = ()
    referral_rebate_fen: int = 0
    refund_full_within_days: int = 0
    active: bool = True  # False: kept for the terms that name it, not for sale
    version: int = 0

    @property
    def sku(self) -> str:
        return f"{PLAN_SKU_PREFIX}{self.plan_id}"

    def body(self) -> dict[str, Any]:
        """What is stored and copied onto an order (everything but the id and version)."""
        return {
            "tier": self.tier,
            "rank": self.rank,
            "price_fen": self.price_fen,
            "days": self.days,
            "member_price": self.member_price,
            "discount_bp": self.discount_bp,
            "welcome_coupon_template_ids": list(self.welcome_coupon_template_ids),
            "referral_rebate_fen": self.referral_rebate_fen,
            "refund_full_within_days": self.refund_full_within_days,
            "active": self.active,
        }

    def view(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, **self.body(), "version": self.version}

    @classmethod
    def of(cls, plan_id: str, body: dict[str, Any], version: int) -> Plan:
        return cls(
            plan_id=plan_id,
            tier=str(body["tier"]),
            rank=int(body["rank"]),
            price_fen=int(body["price_fen"]),
            days=int(body["days"]),
            member_price=bool(body.get("member_price", True)),
            discount_bp=int(body.get("discount_bp", 0)),
            welcome_coupon_template_ids=tuple(body.get("welcome_coupon_template_ids", ())),
            referral_rebate_fen=int(body.get("referral_rebate_fen", 0)),
            refund_full_within_days=int(body.get("refund_full_within_days", 0)),
            active=bool(body.get("active", True)),
            version=version,
        )


class PlanStore(Protocol):
    def get(self, plan_id: str) -> Plan | None: ...

    def list(self) -> list[Plan]: ...

    def save(self, plan: Plan) -> None:
        """Put `plan` if the stored version is `plan.version - 1` (absent for 1); ConcurrentUpdate otherwise."""


class MembershipPlans:
    """`/admin/membership-plans`: save (the next version, conditional), one, all."""

    def __init__(self, plans: PlanStore) -> None:
        self._plans = plans

    def save(self, proposed: Plan, expected_version: int | None = None) -> tuple[bool, dict[str, Any]]:
        """Store `proposed` as the version after the stored one. `expected_version` (the version the
        admin read; 0 for a new plan): ConcurrentUpdate (409) if the stored one is another. Returns
        (created, the plan saved)."""
        current = self._plans.get(proposed.plan_id)
        stored_version = current.version if current is not None else 0
        if expected_version is not None and expected_version != stored_version:
            raise ConcurrentUpdate(
                "the plan changed since it was read", plan_id=proposed.plan_id, version=stored_version
            )
        saved = replace(proposed, version=stored_version + 1)
        self._plans.save(saved)
        return current is None, saved.view()

    def show(self, plan_id: str) -> dict[str, Any]:
        plan = self._plans.get(plan_id)
        if plan is None:
            raise NotFound("no such membership plan", plan_id=plan_id)
        return plan.view()

    def all(self) -> list[dict[str, Any]]:
        return [plan.view() for plan in sorted(self._plans.list(), key=lambda p: (p.rank, p.plan_id))]


# -- terms -------------------------------------------------------------------------------------
class TermKind(StrEnum):
    NEW = "new"  # nothing running when bought
    RENEWAL = "renewal"  # same or lower rank than the running term: after everything bought
    UPGRADE = "upgrade"  # a higher rank than the running term: from now, the rest moves back


@dataclass(frozen=True)
class Term:
    """One purchase of a plan (the record the reports count: bought_at, store, guide, kind)."""

    order_id: str
    plan_id: str
    tier: str
    rank: int
    days: int
    bought_at_ms: int
    kind: TermKind
    segments: tuple[tuple[int, int], ...]  # [start, end) ms, in order, not overlapping
    discount_bp: int = 0
    member_price: bool = True
    store_id: str | None = None
    guide_id: str | None = None
    revoked_at_ms: int | None = None  # a refund ended it (`shorten`)

    @property
    def start_ms(self) -> int:
        return self.segments[0][0]

    @property
    def end_ms(self) -> int:
        return self.segments[-1][1]

    @property
    def length_ms(self) -> int:
        return sum(end - start for start, end in self.segments)

    def covers(self, at_ms: int) -> bool:
        return any(start <= at_ms < end for start, end in self.segments)

    def view(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "plan_id": self.plan_id,
            "tier": self.tier,
            "rank": self.rank,
            "days": self.days,
            "kind": self.kind.value,
            "bought_at": iso(self.bought_at_ms),
            "start": iso(self.start_ms),
            "end": iso(self.end_ms),
            "store_id": self.store_id,
            "guide_id": self.guide_id,
        }


def running(terms: Sequence[Term], now_ms: int) -> Term | None:
    """The term in force at `now_ms` (its segment covers now), if any."""
    return next((term for term in terms if term.covers(now_ms)), None)


def membership_end(terms: Sequence[Term]) -> int | None:
    """When the membership ends: the end of the last segment of any term (None: never bought)."""
    return max((term.end_ms for term in terms if term.segments), default=None)


def after_purchase(terms: Sequence[Term], bought: Term, now_ms: int) -> tuple[tuple[Term, ...], Term]:
    """The customer's terms after buying `bought` (its `days`, `rank`; `segments` and `kind` are
    decided here) at `now_ms`, and the bought term as placed. Terms wholly in the past are kept as
    they are."""
    length = bought.days * DAY_MS
    current = running(terms, now_ms)
    end = membership_end(terms)
    if current is None and (end is None or end <= now_ms):
        placed = replace(bought, kind=TermKind.NEW, segments=((now_ms, now_ms + length),))
        return (*terms, placed), placed
    if current is None or bought.rank <= current.rank:
        start = max(now_ms, end or now_ms)
        placed = replace(bought, kind=TermKind.RENEWAL, segments=((start, start + length),))
        return (*terms, placed), placed
    placed = replace(bought, kind=TermKind.UPGRADE, segments=((now_ms, now_ms + length),))
    return (*(_moved_back(term, now_ms, length) for term in terms), placed), placed


def _moved_back(term: Term, now_ms: int, by_ms: int) -> Term:
    """`term` with every part after `now_ms` moved back by `by_ms` (a segment running at now splits)."""
    segments: list[tuple[int, int]] = []
    for start, end in term.segments:
        if end <= now_ms:
            segments.append((start, end))
        elif start >= now_ms:
            segments.append((start + by_ms, end + by_ms))
        else:
            segments += [(start, now_ms), (now_ms + by_ms, end + by_ms)]
    return replace(term, segments=tuple(segments))


def shortened(terms: Sequence[Term], order_id: str, now_ms: int) -> tuple[Term, ...]:
    """The hook a refund calls: the term bought by `order_id` ends at `now_ms` (what it has not yet
    run is removed), and every later part of the other terms moves forward by what was removed, so
    no gap is left. Terms wholly in the past stay."""
    target = next((term for term in terms if term.order_id == order_id), None)
    if target is None or target.revoked_at_ms is not None:
        return tuple(terms)
    kept = tuple((start, min(end, now_ms)) for start, end in target.segments if start < now_ms)
    out: list[Term] = []
    for term in terms:
        if term is target:
            out.append(replace(term, segments=kept or ((now_ms, now_ms),), revoked_at_ms=now_ms))
            continue
        segments = []
        for start, end in term.segments:
            if start >= target.start_ms and start >= now_ms:
                # after the revoked term's start: as many ms earlier as the revoked term lost
                # before this segment (only its parts that lay before this segment count)
                before = sum(
                    max(0, min(e, start) - max(s, now_ms)) for s, e in target.segments if s < start and e > now_ms
                )
                segments.append((start - before, end - before))
            else:
                segments.append((start, end))
        out.append(replace(term, segments=tuple(segments)))
    return tuple(out)
