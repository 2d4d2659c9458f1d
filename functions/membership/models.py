"""Request models of the membership API (API.md, "Members"; docs/openapi.yaml). Shapes and ranges
here; that levels are numbered in order with rising thresholds is the domain's rule (422)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from shared.kernel.errors import MalformedRequest
from shared.membership.model import MAX_LEVELS, Level, MembershipRules, TagRules
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
