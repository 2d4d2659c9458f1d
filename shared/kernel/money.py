"""Money: integer fen, split so that the parts always sum to the whole (docs/checkout.md, Pricing).
Ordering, commission and points all split amounts with these two functions."""

from __future__ import annotations

from collections.abc import Sequence


def allocate(amount_fen: int, weights: Sequence[int]) -> list[int]:
    """Split `amount_fen` in proportion to `weights` by largest remainder: the parts sum exactly to
    `amount_fen` and each is floor or ceil of its exact share. Ties go to the larger weight, then
    to the earlier position, so the result is deterministic. A zero weight gets nothing."""
    if amount_fen < 0 or any(w < 0 for w in weights):
        raise ValueError("amount and weights must not be negative")
    total = sum(weights)
    if total == 0:
        if amount_fen:
            raise ValueError("cannot allocate a non-zero amount over zero weights")
        return [0] * len(weights)
    parts = [amount_fen * w // total for w in weights]
    remainders = [amount_fen * w % total for w in weights]
    short = amount_fen - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], -weights[i], i))
    for i in order[:short]:
        parts[i] += 1
    return parts


def unit_share(amount_fen: int, units: int, first: int) -> int:
    """What the first `first` of `units` equal units carry of `amount_fen`: every unit carries
    `amount_fen // units` and the `amount_fen % units` odd fen sit on the last units, so the shares
    of any partition of the units sum exactly to `amount_fen`."""
    base, odd = divmod(amount_fen, units)
    return first * base + max(0, first - (units - odd))
