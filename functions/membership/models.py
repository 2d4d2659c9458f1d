"""Request models of the membership API (API.md, "Members"; docs/openapi.yaml). Shapes and ranges
here; that levels are numbered in order with rising thresholds is the domain's rule (422)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from shared.kernel.errors import MalformedRequest, ValidationFailed
from shared.membership.model import MAX_LEVELS, Level, MembershipRules, TagRules
from shared.membership.paid import Plan
from shared.membership.tags import Tag

BasisPoints = Annotated[StrictInt, Field(ge=0, le=10_000)]


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Annotated[StrictInt, Field(ge=0, lt=MAX_LEVELS)]
    name: Annotated[str, Field(min_length=1, max_length=32)]
    min_growth_fen: Annotated[StrictInt, Field(ge=0, le=10**12)]
    member_price: StrictBool = False
    discount_bp: BasisPoints = 0
    points_multiplier_bp: Annotated[StrictInt, Field(ge=0, le=100_000)] = 10_000


Days = Annotated[StrictInt, Field(ge=1, le=3_650)]


class TagRulesIn(BaseModel):
    """The tags' thresholds; that dormant_days is at least active_days is the domain's rule (422)."""

    model_config = ConfigDict(extra="forbid")

    new_days: Days = 30
    active_days: Days = 90
    dormant_days: Days = 180
    high_value_fen: Annotated[StrictInt, Field(ge=0, le=10**12)] = 100_000
    high_value_min_orders: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1


class MembershipRulesIn(BaseModel):
    """The level table (level 0 from growth 0, each next one needing more) and the points rule."""

    model_config = ConfigDict(extra="forbid")

    levels: Annotated[list[LevelIn], Field(min_length=1, max_length=MAX_LEVELS)]
    points_per_yuan: Annotated[StrictInt, Field(ge=0, le=100)] = 1
    points_expire_after_days: Annotated[StrictInt, Field(ge=0, le=3_650)] = 365
    tags: TagRulesIn = Field(default_factory=TagRulesIn)
    birthday_coupon_template_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    # Spending at checkout (docs/membership.md): points per yuan off (0: off) and the cap per order.
    redeem_points_per_yuan: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 0
    redeem_cap_bp: Annotated[StrictInt, Field(ge=0, le=9_900)] = 0
    redeem_cap_fen: Annotated[StrictInt, Field(ge=0, le=100_000_000)] = 0

    def rules(self) -> MembershipRules:
        return MembershipRules(
            tuple(Level(**level.model_dump()) for level in self.levels),
            points_per_yuan=self.points_per_yuan,
            points_expire_after_days=self.points_expire_after_days,
            tags=TagRules(**self.tags.model_dump()),
            birthday_coupon_template_id=self.birthday_coupon_template_id,
            redeem_points_per_yuan=self.redeem_points_per_yuan,
            redeem_cap_bp=self.redeem_cap_bp,
            redeem_cap_fen=self.redeem_cap_fen,
        )


class SegmentIssueIn(BaseModel):
    """A coupon template to issue to the members with a tag (docs/openapi.yaml)."""

    model_config = ConfigDict(extra="forbid")

    template_id: Annotated[str, Field(min_length=1, max_length=64)]
    tag: Tag


JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def tag_of(value: str | None) -> Tag:
    try:
        return Tag(value or "")
    except ValueError as exc:
        raise MalformedRequest("tag is one of new, active, dormant, high_value", tag=value) from exc


def job_id_of(value: str) -> str:
    if not JOB_ID.match(value):
        raise MalformedRequest("a job id is 1 to 64 letters, digits, '-' or '_'", job_id=value)
    return value


PLAN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def plan_id_of(value: str) -> str:
    if not PLAN_ID.match(value):
        raise MalformedRequest("a plan id is 1 to 64 letters, digits, '-' or '_'", plan_id=value)
    return value


class MembershipPlanIn(BaseModel):
    """A paid-membership plan (docs/membership.md, "Paid membership"). `version`: the one read (0
    for a new plan); left out, the save follows whatever is stored."""

    model_config = ConfigDict(extra="forbid")

    tier: Annotated[str, Field(min_length=1, max_length=32)]
    rank: Annotated[StrictInt, Field(ge=0, le=100)]
    price_fen: Annotated[StrictInt, Field(ge=1, le=100_000_000)]
    days: Annotated[StrictInt, Field(ge=1, le=3_650)]
    member_price: StrictBool = True
    discount_bp: BasisPoints = 0
    welcome_coupon_template_ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=10)
    ] = Field(default_factory=list)
    referral_rebate_fen: Annotated[StrictInt, Field(ge=0, le=100_000_000)] = 0
    refund_full_within_days: Annotated[StrictInt, Field(ge=0, le=3_650)] = 0
    active: StrictBool = True
    version: Annotated[StrictInt, Field(ge=0)] | None = None

    def plan(self, plan_id: str) -> Plan:
        if self.referral_rebate_fen > self.price_fen:
            raise ValidationFailed("the guide's rebate cannot be more than the price", plan_id=plan_id)
        if self.refund_full_within_days > self.days:
            raise ValidationFailed("the full-refund window cannot be longer than the plan", plan_id=plan_id)
        return Plan(
            plan_id=plan_id,
            tier=self.tier,
            rank=self.rank,
            price_fen=self.price_fen,
            days=self.days,
            member_price=self.member_price,
            discount_bp=self.discount_bp,
            welcome_coupon_template_ids=tuple(dict.fromkeys(self.welcome_coupon_template_ids)),
            referral_rebate_fen=self.referral_rebate_fen,
            refund_full_within_days=self.refund_full_within_days,
            active=self.active,
        )


class MembershipPurchaseIn(BaseModel):
    """`POST /memberships`: the plan to buy, and the store selling it (the reports' store; left
    out, the store of the guide the customer is bound to is not assumed: null)."""

    model_config = ConfigDict(extra="forbid")

    plan_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    store_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
