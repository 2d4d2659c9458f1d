"""The limit on wrong store verification codes (docs/coupons.md, "Wrong verification codes").

A customer who redeems a coupon themselves types the store's 6-digit verification code. Guessing it
is refused per attempt, and once a counter has seen its limit of wrong codes within the window every
self-redemption it covers is refused (429), a right code included, until the window ends. Two
counters cover an attempt, in fixed windows of `window_s`:

- the customer's, across every store: spreading guesses over stores (each has its own code) buys
  no more guesses than guessing at one;
- the store's, across customers: many accounts guessing one store's code. Its limit is higher, as a
  store's customers share it; when it is reached the store's staff and guides still redeem.

Pure: the counters' keys, the decision, and how long to wait. The counting itself is an atomic ADD
per counter (`shared.coupons.ports.WrongCodes`), never a read then a write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CUSTOMER = "customer"
STORE = "store"


@dataclass(frozen=True)
class WrongCodeCounter:
    """One counter of wrong codes: whose (`scope`, `owner_id`), in which window, its limit, and
    when its item may be removed (housekeeping only: the window in its key already retires it)."""

    scope: str
    owner_id: str
    window: int  # now // window_s
    limit: int
    expires_at_s: int


@dataclass(frozen=True)
class WrongCodeLimit:
    window_s: int = 900
    per_customer: int = 5
    per_store: int = 50

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.per_customer <= 0 or self.per_store <= 0:
            raise ValueError("a window and limits above 0")

    def counters(self, customer_id: str, store_id: str, now_ms: int) -> tuple[WrongCodeCounter, ...]:
        window = now_ms // (self.window_s * 1000)
        expires = (window + 2) * self.window_s  # a window after this one ends: nothing reads it then
        return (
            WrongCodeCounter(CUSTOMER, customer_id, window, self.per_customer, expires),
            WrongCodeCounter(STORE, store_id, window, self.per_store, expires),
        )

    def retry_after_s(self, now_ms: int) -> int:
        """Whole seconds until the window of `now_ms` ends (at least 1)."""
        ends_ms = (now_ms // (self.window_s * 1000) + 1) * self.window_s * 1000
        return max(1, -(-(ends_ms - now_ms) // 1000))


def locked(counters: Sequence[WrongCodeCounter], counts: Sequence[int]) -> WrongCodeCounter | None:
    """Before an attempt: the first counter that has seen its limit of wrong codes (the attempt is
    refused, whatever its code), or None."""
    return next((c for c, n in zip(counters, counts, strict=True) if n >= c.limit), None)


def beyond(counters: Sequence[WrongCodeCounter], counts: Sequence[int]) -> WrongCodeCounter | None:
    """After a wrong code was counted: the first counter it took past its limit (attempts racing
    each other all read the counter under it), or None."""
    return next((c for c, n in zip(counters, counts, strict=True) if n > c.limit), None)


def attempts_left(counters: Sequence[WrongCodeCounter], counts: Sequence[int]) -> int:
    """Wrong codes still allowed in this window after `counts` (0: the next attempt is refused)."""
    return max(0, min(c.limit - n for c, n in zip(counters, counts, strict=True)))
