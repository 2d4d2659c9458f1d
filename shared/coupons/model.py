"""Coupons (优惠券): templates, the coupons claimed from them, and the rules of using them. Pure
domain code; docs/coupons.md says the rules for people and the keys behind them.

A template's terms are copied into every coupon claimed from it (`Terms`), so editing a template
later (its text, its windows, stopping it) never changes a coupon already in a wallet. A coupon's
life is a state machine kept as data (`TRANSITIONS`); every move is a conditional write on the
status (and version) read, so two writers can never both win.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from shared.kernel.clock import iso
from shared.kernel.errors import (
    Conflict,
    CouponExpired,
    CouponInUse,
    CouponNotAvailable,
    CouponNotUsable,
    Ended,
    Forbidden,
    NotStarted,
    RuleViolation,
    ValidationFailed,
)
from shared.kernel.idempotency import IdempotentRequest, StoredResponse, derived_id
from shared.kernel.scope import Scope  # one scope rule for coupons and promotions

MAX_TOTAL = 10_000_000
MAX_PER_USER_LIMIT = 100
MAX_VALID_DAYS = 366
MAX_SCOPE_ENTRIES = 200
MAX_STORES = 500
MAX_TEXT = 500
DAY_MS = 24 * 3600 * 1000

# Offline codes: 12 characters of Crockford's base32 (no I, L, O, U), 60 bits from `secrets`.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12
QR_PREFIX = "RSCPN1:"  # what the store's scanner reads: prefix and code


class GuideOnly(Forbidden):
    """A customer claimed a guide-only template: only its guides issue it (docs/coupons.md, "Guides")."""

    code = "GUIDE_ONLY"


class NotGuideTemplate(RuleViolation):
    """A guide issued a template customers claim themselves (it has no guide quota)."""

    code = "NOT_GUIDE_TEMPLATE"


class NotYourMember(Forbidden):
    """The member named is not bound to the issuing guide (now)."""

    code = "NOT_YOUR_MEMBER"


class GuideQuotaReached(Conflict):
    """The guide has issued its quota of the template."""

    code = "GUIDE_QUOTA_REACHED"


class MemberLevelRequired(Forbidden):
    """The template names member levels and the claimant's current level is not one of them
    (docs/coupons.md, "Member levels")."""

    code = "MEMBER_LEVEL_REQUIRED"


class UnknownMemberLevel(RuleViolation):
    """A new template names a level the merchant's membership rules do not define."""

    code = "UNKNOWN_MEMBER_LEVEL"


@dataclass(frozen=True)
class LevelRule:
    """The member levels a template admits, by number, resolved from the names it gives against
    the merchant's level table as it is now (`names`, by level number, 0 the lowest).

    A member is admitted when its stored level is one of `numbers`; no member record yet counts as
    level 0 (enrolment makes level 0), and a stored level the merchant has since removed counts as
    the highest level left (as `MembershipRules.level` reads it, so the claim agrees with
    `GET /me/member`). A name the table no longer has admits nobody."""

    template_id: str
    names: tuple[str, ...]  # the template's, sorted: what the refusal names
    numbers: frozenset[int]
    levels_defined: int

    @classmethod
    def of(cls, template: Template, table: Sequence[str]) -> LevelRule:
        wanted = template.member_levels or frozenset()
        numbers = frozenset(n for n, name in enumerate(table) if name in wanted)
        return cls(template.template_id, tuple(sorted(wanted)), numbers, len(table))

    @property
    def admits_no_record(self) -> bool:
        return 0 in self.numbers

    @property
    def admits_removed_levels(self) -> bool:
        """Stored levels at or past `levels_defined` read as the top level: admitted with it."""
        return self.levels_defined - 1 in self.numbers

    def admits(self, stored_level: int | None) -> bool:
        if stored_level is None:
            return self.admits_no_record
        return min(max(stored_level, 0), self.levels_defined - 1) in self.numbers

    def refusal(self) -> MemberLevelRequired:
        return MemberLevelRequired(
            "this coupon is for members of other levels", template_id=self.template_id, member_levels=list(self.names)
        )


class Kind(StrEnum):
    FIXED = "fixed"  # cash off (立减)
    THRESHOLD = "threshold"  # 满 X 减 Y
    PERCENT = "percent"  # 折扣, optionally capped in fen
    SHIPPING = "shipping"  # free shipping, or shipping reduced by up to amount_fen


class Channel(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Status(StrEnum):
    AVAILABLE = "AVAILABLE"
    LOCKED = "LOCKED"  # held by one unpaid order
    USED = "USED"  # that order was paid
    REDEEMED_OFFLINE = "REDEEMED_OFFLINE"
    EXPIRED = "EXPIRED"


class Action(StrEnum):
    LOCK = "lock"  # an order takes it (in the order's transaction)
    USE = "use"  # the order is paid
    RETURN = "return"  # the order is cancelled or expires
    REFUND = "refund"  # the paid order is refunded in full (a partial refund keeps it USED)
    REDEEM = "redeem"  # redeemed in a store
    REVERSE = "reverse"  # an admin reverses an offline redemption
    EXPIRE = "expire"  # the sweeper: its use window has passed
    REVOKE = "revoke"  # a refunded paid membership takes back its unused welcome coupon


# Where each action leads. RETURN, REFUND and REVERSE lead back to AVAILABLE, which `next_status` turns
# into EXPIRED when the coupon's use window has passed meanwhile.
TRANSITIONS: Mapping[tuple[Status, Action], Status] = {
    (Status.AVAILABLE, Action.LOCK): Status.LOCKED,
    (Status.LOCKED, Action.USE): Status.USED,
    (Status.LOCKED, Action.RETURN): Status.AVAILABLE,
    (Status.USED, Action.REFUND): Status.AVAILABLE,
    (Status.AVAILABLE, Action.REDEEM): Status.REDEEMED_OFFLINE,
    (Status.REDEEMED_OFFLINE, Action.REVERSE): Status.AVAILABLE,
    (Status.AVAILABLE, Action.EXPIRE): Status.EXPIRED,
    (Status.AVAILABLE, Action.REVOKE): Status.EXPIRED,  # counted as expired unused in the tally
}
# Statuses a template's tally counts (every claimed coupon not in one of these is AVAILABLE).
TALLIED = (Status.LOCKED, Status.USED, Status.REDEEMED_OFFLINE, Status.EXPIRED)


@dataclass(frozen=True)
class Window:
    """[starts_ms, ends_ms): inside from its start, outside from its end."""

    starts_ms: int
    ends_ms: int

    def contains(self, now_ms: int) -> bool:
        return self.starts_ms <= now_ms < self.ends_ms


@dataclass(frozen=True)
class Benefit:
    """What the coupon takes off. `threshold_fen`: the eligible spend it needs (0: none)."""

    kind: Kind
    amount_fen: int | None = None  # fixed, threshold: the amount off; shipping: at most this (None: free)
    percent_off: int | None = None  # percent: 1..99 (20 is 8折)
    cap_fen: int | None = None  # percent: at most this
    threshold_fen: int = 0

    def saving(self, eligible_fen: int, shipping_fen: int = 0) -> int:
        """What the coupon takes off an order whose eligible merchandise is `eligible_fen`, never more
        than what it applies to (the merchandise, or for a shipping coupon the shipping), never < 0."""
        if eligible_fen < self.threshold_fen or (eligible_fen <= 0 and self.kind is not Kind.SHIPPING):
            return 0
        if self.kind is Kind.SHIPPING:
            off = shipping_fen if self.amount_fen is None else min(self.amount_fen, shipping_fen)
            return max(0, off)
        if self.kind is Kind.PERCENT:
            assert self.percent_off is not None
            off = eligible_fen * self.percent_off // 100  # rounds the saving down, in the merchant's favour
            if self.cap_fen is not None:
                off = min(off, self.cap_fen)
        else:
            off = self.amount_fen or 0
        return max(0, min(off, eligible_fen))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "amount_fen": self.amount_fen,
            "percent_off": self.percent_off,
            "cap_fen": self.cap_fen,
            "threshold_fen": self.threshold_fen,
        }

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Benefit:
        return cls(
            kind=Kind(raw["kind"]),
            amount_fen=raw.get("amount_fen"),
            percent_off=raw.get("percent_off"),
            cap_fen=raw.get("cap_fen"),
            threshold_fen=int(raw.get("threshold_fen") or 0),
        )


@dataclass(frozen=True)
class Terms:
    """What a coupon may do and where: copied from the template at the claim, never edited after."""

    benefit: Benefit
    scope: Scope = field(default_factory=Scope)
    stores: frozenset[str] | None = None  # None: every store
    channels: frozenset[Channel] = frozenset({Channel.ONLINE, Channel.OFFLINE})
    stackable_with_promotions: bool = True

    def allows_store(self, store_id: str) -> bool:
        return self.stores is None or store_id in self.stores

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.benefit.to_dict(),
            "scope": self.scope.to_dict(),
            "stores": None if self.stores is None else sorted(self.stores),
            "channels": sorted(str(c) for c in self.channels),
            "stackable_with_promotions": self.stackable_with_promotions,
        }

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Terms:
        stores = raw.get("stores")
        return cls(
            benefit=Benefit.of(raw),
            scope=Scope.of(raw.get("scope")),
            stores=None if stores is None else frozenset(stores),
            channels=frozenset(Channel(c) for c in raw["channels"]),
            stackable_with_promotions=bool(raw.get("stackable_with_promotions", True)),
        )


@dataclass(frozen=True)
class Validity:
    """The use window of a claimed coupon: the template's fixed window, or `days` from the claim
    (never past the template's `valid_to`, the end of the campaign)."""

    valid_from_ms: int
    valid_to_ms: int
    days: int | None = None

    def for_claim_at(self, claimed_at_ms: int) -> Window:
        if self.days is None:
            return Window(self.valid_from_ms, self.valid_to_ms)
        starts = max(claimed_at_ms, self.valid_from_ms)
        return Window(starts, min(claimed_at_ms + self.days * DAY_MS, self.valid_to_ms))


@dataclass(frozen=True)
class TemplateEdit:
    """What `PATCH /admin/coupon-templates/{id}` may change: text, windows, issuing. Never the
    quantity (its remaining units are on the shards, which an edit does not touch) nor the terms
    of coupons already claimed."""

    name: str | None = None
    description: str | None = None
    claim_from_ms: int | None = None
    claim_to_ms: int | None = None
    valid_from_ms: int | None = None
    valid_to_ms: int | None = None
    issuing: bool | None = None


@dataclass(frozen=True)
class Template:
    template_id: str
    name: str
    description: str
    terms: Terms
    total: int
    per_user_limit: int
    claim_window: Window
    validity: Validity
    shards: int
    member_levels: frozenset[str] | None = None  # level names that may claim (LevelRule); None: every level
    guide_quota: int | None = None  # guide-only: each guide issues at most this many; None: customers claim
    issuing: bool = True
    version: int = 0
    created_at_ms: int = 0

    @property
    def guide_only(self) -> bool:
        return self.guide_quota is not None

    @classmethod
    def plan(cls, draft: TemplateDraft, template_id: str, shards: int, now_ms: int) -> Template:
        """A new template, or ValidationFailed (422) naming every problem."""
        problems = draft.problems(now_ms)
        if problems:
            raise ValidationFailed("the coupon template is not valid", errors=problems)
        return cls(
            template_id=template_id,
            name=draft.name,
            description=draft.description,
            terms=draft.terms,
            total=draft.total,
            per_user_limit=draft.per_user_limit,
            claim_window=Window(draft.claim_from_ms, draft.claim_to_ms),
            validity=Validity(draft.valid_from_ms, draft.valid_to_ms, draft.valid_days),
            shards=shards,
            member_levels=draft.member_levels,
            guide_quota=draft.guide_quota,
            created_at_ms=now_ms,
        )

    def check_claim(self, now_ms: int) -> None:
        """What refuses a claim before anything is written."""
        if not self.issuing:
            raise Ended("this coupon is no longer issued", template_id=self.template_id, reason="stopped")
        if now_ms < self.claim_window.starts_ms:
            raise NotStarted(
                "claiming has not started", template_id=self.template_id, starts_at_ms=self.claim_window.starts_ms
            )
        if now_ms >= self.claim_window.ends_ms or now_ms >= self.validity.valid_to_ms:
            raise Ended("claiming has ended", template_id=self.template_id, reason="window")

    def edited(self, edit: TemplateEdit, now_ms: int) -> Template:
        """The template after `edit`, or ValidationFailed. The version goes up by one."""
        claim = Window(
            self.claim_window.starts_ms if edit.claim_from_ms is None else edit.claim_from_ms,
            self.claim_window.ends_ms if edit.claim_to_ms is None else edit.claim_to_ms,
        )
        validity = replace(
            self.validity,
            valid_from_ms=self.validity.valid_from_ms if edit.valid_from_ms is None else edit.valid_from_ms,
            valid_to_ms=self.validity.valid_to_ms if edit.valid_to_ms is None else edit.valid_to_ms,
        )
        problems = _window_problems(claim, validity, now_ms, new=False)
        if problems:
            raise ValidationFailed("the edit is not valid", errors=problems)
        return replace(
            self,
            name=self.name if edit.name is None else edit.name,
            description=self.description if edit.description is None else edit.description,
            claim_window=claim,
            validity=validity,
            issuing=self.issuing if edit.issuing is None else edit.issuing,
            version=self.version + 1,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "name": self.name,
            "description": self.description,
            **self.terms.to_dict(),
            "total": self.total,
            "per_user_limit": self.per_user_limit,
            "claim_from": iso(self.claim_window.starts_ms),
            "claim_to": iso(self.claim_window.ends_ms),
            "valid_from": iso(self.validity.valid_from_ms),
            "valid_to": iso(self.validity.valid_to_ms),
            "valid_days": self.validity.days,
            "member_levels": None if self.member_levels is None else sorted(self.member_levels),
            "guide_quota": self.guide_quota,
            "issuing": self.issuing,
            "shards": self.shards,
            "version": self.version,
        }


@dataclass(frozen=True)
class TemplateDraft:
    """A template as the admin asked for it, before it has an id and shards."""

    name: str
    description: str
    terms: Terms
    total: int
    per_user_limit: int
    claim_from_ms: int
    claim_to_ms: int
    valid_from_ms: int
    valid_to_ms: int
    valid_days: int | None = None
    member_levels: frozenset[str] | None = None
    guide_quota: int | None = None

    def problems(self, now_ms: int) -> list[dict[str, str]]:
        problems = _benefit_problems(self.terms.benefit)
        if not 1 <= self.total <= MAX_TOTAL:
            problems.append({"field": "total", "problem": f"must be 1..{MAX_TOTAL}"})
        if self.guide_quota is not None and not 1 <= self.guide_quota <= self.total:
            problems.append({"field": "guide_quota", "problem": "must be 1..total"})
        if not 1 <= self.per_user_limit <= MAX_PER_USER_LIMIT:
            problems.append({"field": "per_user_limit", "problem": f"must be 1..{MAX_PER_USER_LIMIT}"})
        if self.valid_days is not None and not 1 <= self.valid_days <= MAX_VALID_DAYS:
            problems.append({"field": "valid_days", "problem": f"must be 1..{MAX_VALID_DAYS}"})
        if not self.terms.channels:
            problems.append({"field": "channels", "problem": "name at least one of online, offline"})
        if self.member_levels is not None and not self.member_levels:
            problems.append({"field": "member_levels", "problem": "name at least one level, or leave it out for all"})
        if self.terms.stores is not None and not 1 <= len(self.terms.stores) <= MAX_STORES:
            problems.append({"field": "stores", "problem": f"list 1..{MAX_STORES} stores, or leave it out for all"})
        scope = self.terms.scope
        for name in ("skus", "categories", "exclude_skus", "exclude_categories"):
            if len(getattr(scope, name)) > MAX_SCOPE_ENTRIES:
                problems.append({"field": f"scope.{name}", "problem": f"at most {MAX_SCOPE_ENTRIES} entries"})
        claim = Window(self.claim_from_ms, self.claim_to_ms)
        validity = Validity(self.valid_from_ms, self.valid_to_ms, self.valid_days)
        return problems + _window_problems(claim, validity, now_ms, new=True)


def _benefit_problems(benefit: Benefit) -> list[dict[str, str]]:
    problems = _amount_problems(benefit)
    if benefit.kind is Kind.PERCENT:
        if benefit.percent_off is None or not 1 <= benefit.percent_off <= 99:
            problems.append({"field": "percent_off", "problem": "a percent coupon needs percent_off 1..99"})
    elif benefit.percent_off is not None or benefit.cap_fen is not None:
        problems.append({"field": "percent_off", "problem": "percent_off and cap_fen are for percent coupons"})
    if benefit.cap_fen is not None and benefit.cap_fen <= 0:
        problems.append({"field": "cap_fen", "problem": "must be > 0"})
    return problems


def _amount_problems(benefit: Benefit) -> list[dict[str, str]]:
    kind, amount = benefit.kind, benefit.amount_fen
    if kind in (Kind.FIXED, Kind.THRESHOLD) and not (amount or 0) > 0:
        return [{"field": "amount_fen", "problem": f"a {kind} coupon needs amount_fen > 0"}]
    if kind is Kind.THRESHOLD and benefit.threshold_fen <= 0:
        return [{"field": "threshold_fen", "problem": "a threshold coupon needs threshold_fen > 0"}]
    if kind is Kind.THRESHOLD and (amount or 0) > benefit.threshold_fen:
        return [{"field": "amount_fen", "problem": "must not exceed threshold_fen"}]
    if kind is Kind.PERCENT and amount is not None:
        return [{"field": "amount_fen", "problem": "a percent coupon takes percent_off (and cap_fen)"}]
    if kind is Kind.SHIPPING and amount is not None and amount <= 0:
        return [{"field": "amount_fen", "problem": "leave it out for free shipping, or give > 0"}]
    return []


def _window_problems(claim: Window, validity: Validity, now_ms: int, *, new: bool) -> list[dict[str, str]]:
    problems = []
    if validity.valid_to_ms <= validity.valid_from_ms:
        problems.append({"field": "valid_to", "problem": "must be after valid_from"})
    if new and validity.valid_to_ms <= now_ms:
        problems.append({"field": "valid_to", "problem": "must be in the future"})
    if claim.ends_ms <= claim.starts_ms:
        problems.append({"field": "claim_to", "problem": "must be after claim_from"})
    if claim.ends_ms > validity.valid_to_ms:
        problems.append(
            {"field": "claim_to", "problem": "must not be after valid_to (a claimed coupon must be usable)"}
        )
    return problems


@dataclass(frozen=True)
class Coupon:
    """A coupon in a customer's wallet, with the terms it was claimed under."""

    coupon_id: str
    template_id: str
    customer_id: str
    code: str
    name: str
    terms: Terms
    use_window: Window
    claimed_at_ms: int
    shard: int  # the template's shard it was claimed from; its tally is kept there too
    status: Status = Status.AVAILABLE
    version: int = 0
    order_id: str | None = None  # the order holding (LOCKED) or that used it (USED)
    redemption_id: str | None = None  # the offline redemption that holds it
    updated_at_ms: int = 0
    issued_by: str | None = None  # the guide who issued it (a guide-only template); None: claimed
    # The idempotency of the claim that made it (docs/coupons.md, "Idempotency"): the request's
    # fingerprint (as the store keeps it: shortened). Not part of the coupon's value; the answer is
    # not kept: `first_answer` rebuilds it from the coupon.
    request_hash: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def claimed(
        cls,
        template: Template,
        customer_id: str,
        coupon_id: str,
        shard: int,
        now_ms: int,
        issued_by: str | None = None,
    ) -> Coupon:
        return cls(
            coupon_id=coupon_id,
            template_id=template.template_id,
            customer_id=customer_id,
            code=new_code(),
            name=template.name,
            terms=template.terms,
            use_window=template.validity.for_claim_at(now_ms),
            claimed_at_ms=now_ms,
            shard=shard,
            updated_at_ms=now_ms,
            issued_by=issued_by,
        )

    def carrying(self, request: IdempotentRequest) -> Coupon:
        """This new coupon, carrying the claim that makes it (its id is `coupon_id_for(request)`)."""
        return replace(self, request_hash=request.fingerprint)

    def first_answer(self) -> StoredResponse:
        """What the claim (or the guide's issue) that made this coupon was answered: the coupon as
        claimed (AVAILABLE, version 0, held by nothing), seen at its claim time."""
        claimed = replace(
            self,
            status=Status.AVAILABLE,
            version=0,
            order_id=None,
            redemption_id=None,
            updated_at_ms=self.claimed_at_ms,
        )
        at = self.claimed_at_ms
        return StoredResponse(201, claimed.view(at) if self.issued_by is None else claimed.issued_view(at))

    def shown_status(self, now_ms: int) -> Status:
        """What a customer sees: an AVAILABLE coupon past its window is EXPIRED even before the
        sweeper has written it so."""
        if self.status is Status.AVAILABLE and now_ms >= self.use_window.ends_ms:
            return Status.EXPIRED
        return self.status

    def moved(self, action: Action, now_ms: int, **changes: Any) -> Coupon:
        return replace(
            self, status=next_status(self, action, now_ms), version=self.version + 1, updated_at_ms=now_ms, **changes
        )

    def check_usable(self, now_ms: int) -> None:
        """AVAILABLE and inside its use window, or the conflict that says why not."""
        shown = self.shown_status(now_ms)
        if shown is Status.LOCKED:
            raise CouponInUse("the coupon is held by another order", coupon_id=self.coupon_id, order_id=self.order_id)
        if shown is Status.EXPIRED:
            raise CouponExpired("the coupon has expired", coupon_id=self.coupon_id)
        if shown is not Status.AVAILABLE:
            raise CouponNotAvailable("the coupon has been used", coupon_id=self.coupon_id, status=str(shown))
        if now_ms < self.use_window.starts_ms:
            raise NotStarted(
                "the coupon cannot be used yet", coupon_id=self.coupon_id, starts_at_ms=self.use_window.starts_ms
            )

    def check_offline(self, store_id: str, now_ms: int, purchase_fen: int | None) -> None:
        """May this coupon be redeemed in `store_id` now (for a purchase of `purchase_fen`)?"""
        if Channel.OFFLINE not in self.terms.channels:
            raise CouponNotUsable(
                "the coupon is for online orders only", coupon_id=self.coupon_id, reason="online_only"
            )
        if not self.terms.allows_store(store_id):
            raise CouponNotUsable(
                "the coupon is not valid in this store", coupon_id=self.coupon_id, reason="store_not_allowed"
            )
        self.check_usable(now_ms)
        threshold = self.terms.benefit.threshold_fen
        if purchase_fen is not None and purchase_fen < threshold:
            raise CouponNotUsable(
                "the purchase is below the coupon's threshold",
                coupon_id=self.coupon_id,
                reason="below_threshold",
                threshold_fen=threshold,
                purchase_fen=purchase_fen,
            )

    def view(self, now_ms: int) -> dict[str, Any]:
        return {
            "coupon_id": self.coupon_id,
            "template_id": self.template_id,
            "name": self.name,
            "code": self.code,
            "qr_payload": qr_payload(self.code),
            "status": str(self.shown_status(now_ms)),
            **self.terms.to_dict(),
            "valid_from": iso(self.use_window.starts_ms),
            "valid_to": iso(self.use_window.ends_ms),
            "claimed_at": iso(self.claimed_at_ms),
            "order_id": self.order_id,
            "issued_by": self.issued_by,
        }

    def issued_view(self, now_ms: int) -> dict[str, Any]:
        """What the issuing guide is answered: the coupon without its offline code, which redeems
        it (the member finds the code in their wallet)."""
        shown = {k: v for k, v in self.view(now_ms).items() if k not in ("code", "qr_payload")}
        return {**shown, "customer_id": self.customer_id}


def next_status(coupon: Coupon, action: Action, now_ms: int) -> Status:
    """The status after `action`, by TRANSITIONS; a coupon coming back (RETURN, REFUND, REVERSE) outside
    its use window is EXPIRED rather than AVAILABLE."""
    to = TRANSITIONS.get((coupon.status, action))
    if to is None:
        if coupon.status is Status.LOCKED:
            raise CouponInUse("the coupon is held by an order", coupon_id=coupon.coupon_id, order_id=coupon.order_id)
        raise CouponNotAvailable(
            f"a {coupon.status} coupon cannot {action}", coupon_id=coupon.coupon_id, status=str(coupon.status)
        )
    if to is Status.AVAILABLE and now_ms >= coupon.use_window.ends_ms:
        return Status.EXPIRED
    return to


@dataclass(frozen=True)
class Tally:
    """A template's books: total = remaining + claimed; claimed = available + every tallied status."""

    total: int
    remaining: int
    claimed: int
    by_status: Mapping[Status, int]

    @property
    def available(self) -> int:
        return self.claimed - sum(self.by_status.get(s, 0) for s in TALLIED)

    @property
    def reconciles(self) -> bool:
        return self.remaining + self.claimed == self.total and self.available >= 0

    def to_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "remaining": self.remaining,
            "claimed": self.claimed,
            "available": self.available,
            "locked": self.by_status.get(Status.LOCKED, 0),
            "used": self.by_status.get(Status.USED, 0),
            "redeemed_offline": self.by_status.get(Status.REDEEMED_OFFLINE, 0),
            "expired": self.by_status.get(Status.EXPIRED, 0),
        }


def tally_moves(before: Status, after: Status) -> dict[Status, int]:
    """What a move from `before` to `after` adds to the template's tally (AVAILABLE is not tallied)."""
    moves: dict[Status, int] = {}
    if before in TALLIED:
        moves[before] = moves.get(before, 0) - 1
    if after in TALLIED:
        moves[after] = moves.get(after, 0) + 1
    return {status: n for status, n in moves.items() if n}


@dataclass(frozen=True)
class Redemption:
    """One offline redemption, kept for the audit: where, by whom, when, for what purchase; and
    its reversal, if an admin reversed it."""

    redemption_id: str
    coupon_id: str
    template_id: str
    customer_id: str
    store_id: str
    redeemed_by: str
    redeemed_by_role: str
    redeemed_at_ms: int
    purchase_fen: int | None = None
    reversed_at_ms: int | None = None
    reversed_by: str | None = None
    reversal_reason: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "redemption_id": self.redemption_id,
            "coupon_id": self.coupon_id,
            "template_id": self.template_id,
            "customer_id": self.customer_id,
            "store_id": self.store_id,
            "redeemed_by": self.redeemed_by,
            "redeemed_by_role": self.redeemed_by_role,
            "redeemed_at": iso(self.redeemed_at_ms),
            "purchase_fen": self.purchase_fen,
            "reversed_at": None if self.reversed_at_ms is None else iso(self.reversed_at_ms),
            "reversed_by": self.reversed_by,
            "reversal_reason": self.reversal_reason,
        }


@dataclass(frozen=True)
class CartItem:
    """A cart line as a coupon sees it: what it is (for the scope) and what it costs."""

    sku: str
    category: str | None
    amount_fen: int  # the line's merchandise (unit price x qty)


def eligible_amount(terms: Terms, items: Sequence[CartItem]) -> int:
    return sum(item.amount_fen for item in items if terms.scope.covers(item.sku, item.category))


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str:
    """A code as a customer or a scanner may give it: any case, dashes or spaces, the QR prefix,
    O for 0 and I or L for 1 (Crockford's reading rules)."""
    text = raw.strip()
    if text.upper().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX) :]
    text = text.upper().replace("-", "").replace(" ", "")
    return text.translate(str.maketrans("OIL", "011"))


def qr_payload(code: str) -> str:
    return f"{QR_PREFIX}{code}"


def display_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def new_template_id(now_ms: int) -> str:
    return f"ct{now_ms:012x}{secrets.token_hex(6)}"


def new_coupon_id(now_ms: int) -> str:
    return f"cp{now_ms:012x}{secrets.token_hex(8)}"


def coupon_id_for(request: IdempotentRequest, secret: bytes | None) -> str:
    """The id of the coupon a claim makes: the same for every replay of its Idempotency-Key, so the
    coupon's own conditional put is the idempotency check (docs/coupons.md, "Idempotency")."""
    return derived_id(request, secret, prefix="cp")


def new_redemption_id(now_ms: int) -> str:
    return f"rd{now_ms:012x}{secrets.token_hex(6)}"


def verification_code(key: bytes, store_id: str, step_s: int, now_ms: int, steps_back: int = 0) -> str:
    """A store's rotating 6-digit verification code (as TOTP does it: an HMAC of the time step),
    shown to the store's staff and typed by a customer redeeming a coupon themselves."""
    step = now_ms // (step_s * 1000) - steps_back
    digest = hmac.new(key, f"{store_id}|{step}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def verification_matches(key: bytes, store_id: str, step_s: int, now_ms: int, given: str) -> bool:
    """The current code, or the one before it (a customer typing as it changes)."""
    return any(
        hmac.compare_digest(given.encode(), verification_code(key, store_id, step_s, now_ms, back).encode())
        for back in (0, 1)
    )


def verification_valid_until_ms(step_s: int, now_ms: int) -> int:
    return (now_ms // (step_s * 1000) + 1) * step_s * 1000
