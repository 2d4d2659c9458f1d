"""Request models of the commission API (API.md, "Commission and settlement"; docs/openapi.yaml).
Shapes and ranges here; that no line can share out past the cap is the domain's rule (422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from shared.kernel.values import Fen, Sku

RoleName = Literal["dealer", "store", "guide", "distributor_1", "distributor_2"]
BasisPoints = Annotated[StrictInt, Field(ge=0, le=10_000)]
Category = Annotated[str, Field(min_length=1, max_length=64)]
GuideId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]


class OverrideIn(BaseModel):
    """Shares for one SKU, one category or one guide (exactly one), replacing the defaults per role
    named; a guide's beats a SKU's, which beats a category's."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku | None = None
    category: Category | None = None
    guide_id: GuideId | None = None
    rates_bp: dict[RoleName, BasisPoints] | None = None
    fixed_fen: dict[RoleName, Fen] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> OverrideIn:
        if sum(v is not None for v in (self.sku, self.category, self.guide_id)) != 1:
            raise ValueError("an override names exactly one of sku, category, guide_id")
        if not self.rates_bp and not self.fixed_fen:
            raise ValueError("an override gives rates_bp or fixed_fen")
        return self


class CommissionRulesIn(BaseModel):
    """`rates_bp`: basis points of the line's paid amount per role; `fixed_fen`: fen per unit (a
    role has one or the other). Roles left out earn nothing."""

    model_config = ConfigDict(extra="forbid")

    rates_bp: dict[RoleName, BasisPoints]
    fixed_fen: dict[RoleName, Fen] | None = None
    overrides: list[OverrideIn] = Field(default_factory=list, max_length=500)

    def draft(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)
