"""What a payment provider tells us once it has verified a notification (pure; no provider here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaymentNotice:
    """A payment the provider vouches for: `amount_fen` is what the buyer paid for `order_id`."""

    order_id: str
    transaction_id: str
    amount_fen: int
    paid_at: str
