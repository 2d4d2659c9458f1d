"""Annotated types shared by every request model: one definition of what a SKU, a quantity or
an amount of money may be."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

# Patterns say [0-9], never \d: Python's \d takes every script's digits (１２３４５６ passed ^\d{6}$).
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
LocationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]

# Bounds on money and counts (API.md: below 2^53, so a JavaScript storefront reads them exactly).
# A price times the largest quantity is at most what a payment carries, and pricing refuses an order
# whose total is above MAX_AMOUNT_FEN (422 ORDER_TOO_LARGE): every order that can be placed can be
# paid, and no amount or count the API returns reaches 2^53.
MAX_PRICE_FEN = 10**8  # ¥1,000,000 a unit
MAX_QUANTITY = 10_000  # units on one line
MAX_AMOUNT_FEN = 10**12  # a payment, an order's total, a refund
MAX_COUNT = 10**9  # units on hand at one location
assert MAX_PRICE_FEN * MAX_QUANTITY <= MAX_AMOUNT_FEN < 2**53

# StrictInt: a float such as 12.5 (or even 12.0) is refused, never rounded. Money is integer fen.
Fen = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT_FEN)]
PriceFen = Annotated[StrictInt, Field(ge=0, le=MAX_PRICE_FEN)]
Quantity = Annotated[StrictInt, Field(gt=0, le=MAX_QUANTITY)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]

# White space as docs/openapi.yaml means it: a JSON Schema pattern is an ECMA-262 regular expression,
# whose \s is not the one pydantic's (Rust) engine reads: Rust counts U+0085 as white space and not
# U+FEFF, ECMA-262 the other way round (Python's `re` differs again, on U+001C..U+001F). So patterns
# spell the class out, never \s or \S, and model and document refuse the same text.
ECMA_WHITE_SPACE = r"\x09-\x0d\x20\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Text people type: at least one character that is not white space (a pattern searches; the
# document's "\S", which also refuses U+3000, the ideographic space).
NON_BLANK = rf"[^{ECMA_WHITE_SPACE}]"
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NON_BLANK)]
ShortText = Annotated[str, Field(min_length=1, max_length=64, pattern=NON_BLANK)]
LongText = Annotated[str, Field(min_length=1, max_length=200, pattern=NON_BLANK)]
# A phone number as people write it: +86 137 0000 0000, 137-0000-0000, 13700000000.
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{4,19}$")]
PickupCode = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
