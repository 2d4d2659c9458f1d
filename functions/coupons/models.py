"""Request models of the coupon API (API.md, "Coupons"; the fields beyond it are in docs/openapi.yaml).
Shapes and ranges here; the rules that tie fields together (a threshold coupon needs its
threshold, windows in order) are the domain's (`shared.coupons.model`), also 422."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from shared.coupons.model import Benefit, Channel, Kind, Scope, TemplateDraft, TemplateEdit, Terms
from shared.kernel.errors import MalformedRequest
from shared.kernel.values import Fen, LocationId
from shared.web.requests import ScopeIn

TEMPLATE_ID = re.compile(r"ct[0-9a-f]{24}")  # shared.coupons.model.new_template_id
REDEMPTION_ID = re.compile(r"rd[0-9a-f]{24}")

Category = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=500)]
Title = Annotated[str, Field(min_length=1, max_length=100)]

KIND_NAMES = {"fixed": "立减券", "threshold": "满减券", "percent": "折扣券", "shipping": "运费券"}


def ms(when: AwareDatetime) -> int:
    return int(when.timestamp() * 1000)


class CouponTemplateIn(BaseModel):
    """`claim_from` / `claim_to` default to `valid_from` / `valid_to`; `valid_days` makes each coupon
    valid for N days from its claim (never past `valid_to`); `stores` left out: every store."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["fixed", "percent", "threshold", "shipping"]
    name: Title | None = None
    description: Text | None = None
    amount_fen: Fen | None = None
    percent_off: Annotated[StrictInt, Field(ge=1, le=99)] | None = None
    cap_fen: Fen | None = None
    threshold_fen: Fen | None = None
    scope: ScopeIn | None = None
    stores: Annotated[list[LocationId], Field(min_length=1, max_length=500)] | None = None
    total: Annotated[StrictInt, Field(ge=1, le=10_000_000)]
    per_user_limit: Annotated[StrictInt, Field(ge=1, le=100)]
    claim_from: AwareDatetime | None = None
    claim_to: AwareDatetime | None = None
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    valid_days: Annotated[StrictInt, Field(ge=1, le=366)] | None = None
    channels: Annotated[list[Literal["online", "offline"]], Field(min_length=1, max_length=2)]
    member_levels: Annotated[list[Title], Field(min_length=1, max_length=20)] | None = None
    stackable_with_promotions: StrictBool = True
    expected_peak_per_s: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
    guide_quota: Annotated[StrictInt, Field(ge=1, le=10_000_000)] | None = None

    def to_draft(self) -> TemplateDraft:
        scope = self.scope or ScopeIn()
        terms = Terms(
            benefit=Benefit(
                kind=Kind(self.kind),
                amount_fen=self.amount_fen,
                percent_off=self.percent_off,
                cap_fen=self.cap_fen,
                threshold_fen=self.threshold_fen or 0,
            ),
            scope=Scope.of(scope.model_dump()),
            stores=None if self.stores is None else frozenset(self.stores),
            channels=frozenset(Channel(c) for c in self.channels),
            stackable_with_promotions=self.stackable_with_promotions,
        )
        return TemplateDraft(
            name=self.name or KIND_NAMES[self.kind],
            description=self.description or "",
            terms=terms,
            total=self.total,
            per_user_limit=self.per_user_limit,
            claim_from_ms=ms(self.claim_from or self.valid_from),
            claim_to_ms=ms(self.claim_to or self.valid_to),
            valid_from_ms=ms(self.valid_from),
            valid_to_ms=ms(self.valid_to),
            valid_days=self.valid_days,
            member_levels=None if self.member_levels is None else frozenset(self.member_levels),
            guide_quota=self.guide_quota,
        )


class CouponTemplateEditIn(BaseModel):
    """Text, windows, or `issuing: false` to stop issuing. Never the quantity or the terms."""

    model_config = ConfigDict(extra="forbid")

    name: Title | None = None
    description: Text | None = None
    claim_from: AwareDatetime | None = None
    claim_to: AwareDatetime | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    issuing: StrictBool | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> CouponTemplateEditIn:
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        return self

    def to_edit(self) -> TemplateEdit:
        return TemplateEdit(
            name=self.name,
            description=self.description,
            claim_from_ms=None if self.claim_from is None else ms(self.claim_from),
            claim_to_ms=None if self.claim_to is None else ms(self.claim_to),
            valid_from_ms=None if self.valid_from is None else ms(self.valid_from),
            valid_to_ms=None if self.valid_to is None else ms(self.valid_to),
            issuing=self.issuing,
        )


class CouponRedemptionIn(BaseModel):
    """`code`: as shown or scanned (the QR payload, dashes, any case). `verification_code`: the
    store's current code, required when a customer redeems their own coupon."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9: -]+$")
    purchase_fen: Fen | None = None
    verification_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")


class GuideIssueIn(BaseModel):
    """The member a guide issues a coupon to (their customer id, the token `sub` they sign in with)."""

    model_config = ConfigDict(extra="forbid")

    member_id: str = Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")


class ReversalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


CART_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}):([1-9][0-9]{0,3})$")
CART_LINES_MAX = 50


def parse_cart(raw: str) -> list[tuple[str, int]]:
    """`?cart=SKU:qty,SKU:qty` (at most 50 lines), or MalformedRequest (400)."""
    lines = []
    for part in raw.split(","):
        match = CART_LINE.fullmatch(part.strip())
        if match is None:
            raise MalformedRequest("?cart= is SKU:qty,SKU:qty", param="cart")
        lines.append((match.group(1), int(match.group(2))))
    if not 1 <= len(lines) <= CART_LINES_MAX or len({sku for sku, _ in lines}) != len(lines):
        raise MalformedRequest(f"?cart= lists 1..{CART_LINES_MAX} different SKUs", param="cart")
    return lines
