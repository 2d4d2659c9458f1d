"""Annotated types shared by every request model: one definition of what a SKU, a quantity or
an amount of money may be."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
LocationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
# StrictInt: a float such as 12.5 (or even 12.0) is refused, never rounded. Money is integer fen.
Fen = Annotated[StrictInt, Field(ge=0, le=10**12)]
Quantity = Annotated[StrictInt, Field(gt=0, le=10_000)]
Count = Annotated[StrictInt, Field(ge=0, le=10**9)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
