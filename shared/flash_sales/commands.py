"""What a buyer asks of a flash sale: light enough for the routes to build at the cold import of
app.py (the use cases and the data layer load on first use, through bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.ordering.fulfilment import Fulfilment


@dataclass(frozen=True)
class FlashOrder:
    """`fulfilment` None: delivery to the buyer's saved default address, or 422
    FULFILMENT_REQUIRED when there is none (docs/flash-sales.md, "Fulfilment")."""

    qty: int
    fulfilment: Fulfilment | None = None
