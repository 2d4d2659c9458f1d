"""Placing an order: price the cart, hold its units and write the order in ONE unit of work (one
DynamoDB transaction). The order carries the request's idempotency (its id is derived from the
caller and the Idempotency-Key, docs/orders.md "Idempotency"), and the relay derives its
OrderPlaced from the order's INSERT (`shared.ordering.announcements`): no other item is written.

Round trips on the happy path: one BatchGetItem (products, stock, membership) and one
TransactWriteItems. If any line is short, the transaction is cancelled as a whole (nothing is
held) and the caller hears OUT_OF_STOCK naming the SKU. A retried or replayed request (same
Idempotency-Key, same body) gets the first response back and holds nothing more.
"""

from __future__ import annotations

from shared.kernel.clock import Clock
from shared.kernel.errors import CouponInUse, DomainError, InsufficientPoints, OutOfStock
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.checkout import CartSource, Checkout
from shared.ordering.model import Order, Placement, order_id_for
from shared.ordering.ports import (
    NO_COUPONS,
    NO_POINTS,
    CouponHolder,
    OrderingUnitOfWork,
    OrderingUnitOfWorkFactory,
    OrderReads,
    PointsHolder,
    UnitHolder,
)
from shared.ordering.pricing import points_spent
from shared.platform.observability import count


class StockReservation:
    """The units of an ordinary order: a reservation of each line at the order's location."""

    def hold(self, uow: OrderingUnitOfWork, order: Order) -> None:
        for line in order.lines:
            uow.reserve_stock(line.sku, order.location, line.qty)


RESERVE_STOCK = StockReservation()


class OrderPlacement:
    def __init__(
        self,
        uow: OrderingUnitOfWorkFactory,
        reads: OrderReads,
        checkout: Checkout,
        clock: Clock,
        coupons: CouponHolder = NO_COUPONS,
        id_secret: bytes | None = None,
        points: PointsHolder = NO_POINTS,
    ) -> None:
        """`id_secret` keys the derived order ids (`shared.kernel.idempotency.derived_id`); the
        reads' `replay` must be given the same one."""
        self._uow = uow
        self._id_secret = id_secret
        self._reads = reads
        self._checkout = checkout
        self._clock = clock
        self._coupons = coupons
        self._points = points

    def place_order(self, cart: CartSource, customer_id: str, request: IdempotentRequest) -> StoredResponse:
        """`POST /orders`: the checkout's checks (prices, stock read, store choice), then `place`.
        A replay of a request that succeeded gets its first answer back even when those checks
        would now fail (its own order may hold the last units), so a refusal looks for a stored
        response first."""
        try:
            placement = self._checkout.prepare_placement(cart, customer_id)
        except DomainError:
            stored = self._reads.replay_placed(request) if request.client_supplied else None
            if stored is not None:
                return stored
            raise
        return self.place(placement, customer_id, request)

    def place(
        self,
        placement: Placement,
        customer_id: str,
        request: IdempotentRequest,
        *,
        holder: UnitHolder = RESERVE_STOCK,
        retry_conflicts: bool = True,
    ) -> StoredResponse:
        """Write the order, PENDING_PAYMENT, carrying the request's idempotency (OrderPlaced is
        derived from it by the relay).
        `holder` adds the parts that take its units (stock reservations by default; a flash sale's
        shard and buyer count, or only the claims when its units were taken before this call).
        `retry_conflicts` False: a transaction conflict raises TemporarilyUnavailable at once.
        Returns 201 and the order, or the first response of a replayed key (`replayed`)."""
        now = self._clock.now_ms()
        order = Order.place(
            order_id=order_id_for(request, self._id_secret),
            customer_id=customer_id,
            quote=placement.quote,
            fulfilment=placement.fulfilment,
            location=placement.location,
            now=now,
            payment_window_s=placement.payment_window_s,
            flash_sale_id=placement.flash_sale_id,
            credited=placement.credit.credited(customer_id, now).to_dict() if placement.credit is not None else None,
            membership=placement.membership,
        )
        order = order.carrying(request)
        response = order.first_answer()
        uow = self._uow(retry_conflicts=retry_conflicts)
        holder.hold(uow, order)
        if placement.coupons:
            # AVAILABLE -> LOCKED to this order, in its transaction: a coupon another order took
            # first refuses the whole order (CouponInUse), which then holds nothing.
            self._coupons.lock(uow, order, placement.coupons)
        spent = points_spent(placement.quote)
        if spent:
            # The member's points, off its balance in the order's transaction, only if it has them
            # (InsufficientPoints: nothing of the order is written). docs/membership.md.
            self._points.spend(uow, order, spent)
        uow.add_order(order)
        try:
            stored = uow.commit_once(request, response)
        except OutOfStock:
            count("OutOfStock")
            raise
        except CouponInUse:
            count("CouponsInUse")
            raise
        except InsufficientPoints:
            count("InsufficientPoints")
            raise
        if stored.replayed:
            count("IdempotentReplays")
            return stored
        count("OrdersPlaced")
        return stored
