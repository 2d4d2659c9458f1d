"""Request models of the membership API (API.md, "Members"; docs/openapi.yaml). Shapes and ranges
here; that levels are numbered in order with rising thresholds is the domain's rule (422)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from shared.membership.model import MAX_LEVELS, Level, MembershipRules

BasisPoints = Annotated[StrictInt, Field(ge=0, le=10_000)]


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Annotated[StrictInt, Field(ge=0, lt=MAX_LEVELS)]
    name: Annotated[str, Field(min_length=1, max_length=32)]
    min_growth_fen: Annotated[StrictInt, Field(ge=0, le=10**12)]
    member_price: StrictBool = False
    discount_bp: BasisPoints = 0
    points_multiplier_bp: Annotated[StrictInt, Field(ge=0, le=100_000)] = 10_000


class MembershipRulesIn(BaseModel):
    """The level table (level 0 from growth 0, each next one needing more) and the points rule."""

    model_config = ConfigDict(extra="forbid")

    levels: Annotated[list[LevelIn], Field(min_length=1, max_length=MAX_LEVELS)]
    points_per_yuan: Annotated[StrictInt, Field(ge=0, le=100)] = 1
    points_expire_after_days: Annotated[StrictInt, Field(ge=0, le=3_650)] = 365

    def rules(self) -> MembershipRules:
        return MembershipRules(
            tuple(Level(**level.model_dump()) for level in self.levels),
            points_per_yuan=self.points_per_yuan,
            points_expire_after_days=self.points_expire_after_days,
        )
