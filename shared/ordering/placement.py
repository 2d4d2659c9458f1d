"""Placing an order: price the cart, hold its units, write the order, its event and the
idempotency record in ONE DynamoDB transaction.

Round trips on the happy path: one BatchGetItem (products, stock, membership) and one
TransactWriteItems. If any line is short, the transaction is cancelled as a whole (nothing is
held) and the caller hears OUT_OF_STOCK naming the SKU. A retried or replayed request (same
Idempotency-Key, same body) gets the first response back and holds nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.data import outbox
from shared.data.stores import idempotency as idempotency_store
from shared.data.stores import orders as order_store
from shared.data.stores import stock as stock_store
from shared.data.transactions import Transaction, TransactionCancelled
from shared.kernel.errors import DomainError, OutOfStock
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.ordering.model import Order, new_order_id
from shared.ordering.pricing import Quote
from shared.platform.observability import count

HoldUnits = Callable[[Transaction, Order], None]


@dataclass(frozen=True)
class Placement:
    """What the checkout decided before writing: the priced cart and where its units come from."""

    quote: Quote
    location: str
    fulfilment: dict[str, Any]
    payment_window_s: int
    flash_sale_id: str | None = None


def hold_stock(tx: Transaction, order: Order) -> None:
    for line in order.lines:
        stock_store.reserve(tx, line.sku, order.location, line.qty)


def place_checked(
    prepare: Callable[[], Placement],
    customer_id: str,
    request: IdempotentRequest,
    now: int,
    **kwargs: Any,
) -> StoredResponse:
    """`place`, with the checks of `prepare` (prices, stock read, store choice) in front. A replay
    of a request that succeeded must get its first answer back even when those checks would now
    fail (its own order may hold the last units), so a refusal looks for a stored response first."""
    try:
        placement = prepare()
    except DomainError:
        stored = idempotency_store.replay(request) if request.client_supplied else None
        if stored is not None:
            return stored
        raise
    return place(placement, customer_id, request, now, **kwargs)


def place(
    placement: Placement,
    customer_id: str,
    request: IdempotentRequest,
    now: int,
    hold: HoldUnits = hold_stock,
    extra: Callable[[Transaction, Order], None] | None = None,
    retry_conflicts: bool = True,
) -> StoredResponse:
    """Write the order. `hold` adds the parts that take its units (stock items by default; a flash
    sale's shard, or nothing when its units were taken before this call); `extra` adds more
    conditional parts (e.g. a per-user purchase counter) to the same transaction.
    `retry_conflicts` False: a TransactionConflict raises TemporarilyUnavailable at once."""
    order = Order.place(
        order_id=new_order_id(now),
        customer_id=customer_id,
        quote=placement.quote,
        fulfilment=placement.fulfilment,
        location=placement.location,
        now=now,
        payment_window_s=placement.payment_window_s,
        flash_sale_id=placement.flash_sale_id,
    )
    response = StoredResponse(201, order.view())
    tx = Transaction(retry_conflicts=retry_conflicts)
    hold(tx, order)
    order_store.add_new(tx, order)
    if extra is not None:
        extra(tx, order)
    outbox.emit(
        tx,
        DomainEvent(
            EventType.ORDER_PLACED, order.order_id, order.event_payload(expires_at=response.body["expires_at"])
        ),
    )
    idempotency_store.join(tx, request, response)
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        if idempotency_store.was_replayed(cancelled):
            stored = idempotency_store.replay(request, cancelled)
            if stored is not None:
                count("IdempotentReplays")
                return stored
        short = [label for label in cancelled.failed if label.startswith("stock:")]
        if short:
            count("OutOfStock")
            sku = stock_store.sku_of(short[0])
            raise OutOfStock("not enough stock", sku=sku, location=placement.location) from cancelled
        raise
    count("OrdersPlaced")
    return response
