"""What a buyer asks of a flash sale: light enough for the routes to build at the cold import of
app.py (the use cases and the data layer load on first use, through bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.ordering.fulfilment import Fulfilment


@dataclass(frozen=True)
class FlashOrder:
    """`fulfilment` None is delivery from the warehouse (the address is given at payment)."""

    qty: int
    fulfilment: Fulfilment | None = None
