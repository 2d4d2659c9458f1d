"""Giving flash units back: units a purchase took that no order will hold (the contended path),
and the units of an unpaid order when it is cancelled or expires (docs/flash-sales.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.flash_sales.campaign import SaleBook
from shared.flash_sales.model import ClaimStatus, FlashSale, Take, UnitsClaimed, release_shard, units_of
from shared.flash_sales.ports import PurchaseParts, ShardStore
from shared.kernel.clock import Clock
from shared.kernel.errors import TemporarilyUnavailable
from shared.ordering.model import Order
from shared.ordering.ports import OrderingUnitOfWork
from shared.platform.observability import count, logger

ATTEMPTS = 2


@dataclass
class GiveBack:
    """Where each take went: back to a shard now, held by an order (its order exists), given back
    before (by the reconciler), or left to the reconciler (the database stayed busy)."""

    returned: list[Take] = field(default_factory=list)
    claimed_by_order: list[Take] = field(default_factory=list)
    voided_before: list[Take] = field(default_factory=list)
    unsettled: list[Take] = field(default_factory=list)


class UnitReturns:
    def __init__(self, shards: ShardStore, clock: Clock) -> None:
        self._shards = shards
        self._clock = clock

    def give_back(self, sale: FlashSale, takes: Sequence[Take]) -> GiveBack:
        """Return units that no order will hold: VOID claims and the shard increments in one write,
        so the units come back at most once, and never while an order holds them."""
        outcome = GiveBack()
        pending = list(takes)
        for _ in range(ATTEMPTS):
            if not pending:
                break
            try:
                self._shards.give_back(sale.sale_id, pending, self._clock.now_ms())
            except UnitsClaimed as claimed:
                pending = _sort_claimed(pending, claimed, outcome)
                continue
            except TemporarilyUnavailable:
                break
            outcome.returned.extend(pending)
            count("FlashUnitsGivenBack", units_of(pending))
            pending = []
        outcome.unsettled.extend(pending)
        if outcome.unsettled:
            logger.warning("units left for the reconciler", extra={"flash_sale_id": sale.sale_id})
        return outcome


def _sort_claimed(takes: list[Take], claimed: UnitsClaimed, outcome: GiveBack) -> list[Take]:
    """Files the takes claimed already; returns the others, to try again without them."""
    still: list[Take] = []
    for taken in takes:
        status = claimed.claimed.get(taken)
        if status is None:
            still.append(taken)
        elif status is ClaimStatus.VOID:
            outcome.voided_before.append(taken)
        else:
            outcome.claimed_by_order.append(taken)
    return still


class ShardRelease:
    """ordering's `FlashUnitReleaser`: an unpaid flash order's units go back to a shard
    (`release_shard` of its id: units are alike, hashing spreads the returns) and its buyer's
    count goes down, in the transaction that cancels the order, so exactly once; the buyer may
    buy again."""

    def __init__(self, book: SaleBook, parts: PurchaseParts) -> None:
        self._book = book
        self._parts = parts

    def release(self, uow: OrderingUnitOfWork, order: Order) -> None:
        if order.flash_sale_id is None:
            raise ValueError(f"order {order.order_id} is not a flash-sale order")
        sale = self._book.get(order.flash_sale_id)
        qty = sum(line.qty for line in order.lines)
        self._parts.release(uow, sale.sale_id, release_shard(order.order_id, sale.shards), order.customer_id, qty)

    def commit(self, uow: OrderingUnitOfWork, order: Order) -> None:
        """A paid flash order's units leave the sale's hold at its location (on_hand and reserved
        down), in the transaction that pays it (docs/flash-sales.md, "Stock")."""
        assert order.flash_sale_id is not None
        sale = self._book.get(order.flash_sale_id)
        if not sale.holds_stock:
            return  # a sale from before the rule: its units were never held
        location = sale.location
        for line in order.lines:
            uow.commit_stock(line.sku, location, line.qty)

    def stock_location(self, order: Order) -> str:
        if order.flash_sale_id is None:
            raise ValueError(f"order {order.order_id} is not a flash-sale order")
        sale = self._book.get(order.flash_sale_id)
        return sale.location if sale.holds_stock else order.location
