"""What happens to an order after it is placed: payment, cancellation, expiry, fulfilment, refunds.

Each service function reads the order, decides with the pure state machine (shared.ordering.model), and
writes the new order, its stock movements and its event in ONE transaction conditional on the
status and version it read. If another writer got there first, the function reads again and
decides again (a bounded number of times), so the outcome always reflects the latest state.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from shared.data import outbox
from shared.data.stores import idempotency as idempotency_store
from shared.data.stores import orders as order_store
from shared.data.stores import stock as stock_store
from shared.data.transactions import Transaction, TransactionCancelled
from shared.flash_sales import unit_release
from shared.kernel.errors import (
    AmountMismatch,
    ConcurrentUpdate,
    Forbidden,
    InvalidTransition,
    LimitReached,
    NotFound,
    RuleViolation,
    ValidationFailed,
    WrongPickupCode,
)
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.identity import Principal, Role
from shared.ordering.model import MAX_PICKUP_ATTEMPTS, REFUNDABLE, Action, Order, Status, new_pickup_code, next_status
from shared.payments.hmac_webhook import PaymentNotice
from shared.platform.observability import count, logger

ATTEMPTS = 4


def release_units(tx: Transaction, order: Order) -> None:
    if order.flash_sale_id:
        # Its units came from the sale's shards: shared.flash_sales.model registers who gives them back.
        unit_release.flash_releaser()(tx, order)
        return
    for line in order.lines:
        stock_store.release(tx, line.sku, order.location, line.qty)


def commit_units(tx: Transaction, order: Order) -> None:
    if order.flash_sale_id:
        return  # flash units left the shard when the order was placed; nothing is held on the stock item
    for line in order.lines:
        stock_store.commit(tx, line.sku, order.location, line.qty)


def load(order_id: str) -> Order:
    order = order_store.get(order_id)
    if order is None:
        raise NotFound("no such order", order_id=order_id)
    return order


def load_visible(order_id: str, who: Principal) -> Order:
    """The order if `who` may see it; otherwise NotFound, so ids of others' orders leak nothing."""
    order = order_store.get(order_id)
    if order is None or not may_see(order, who):
        raise NotFound("no such order", order_id=order_id)
    return order


def may_see(order: Order, who: Principal) -> bool:
    if who.role in (Role.MERCHANT_ADMIN, Role.FINANCE):
        return True
    if who.role is Role.CUSTOMER:
        return order.customer_id == who.sub
    return who.store_id == order.location  # staff and guides see their store's orders


def _retrying(step: Callable[[Order], tuple[Transaction, Any] | Any], order_id: str) -> Any:
    """Run `step` on the latest order until its transaction commits or it decides without writing."""
    for _ in range(ATTEMPTS):
        order = load(order_id)
        planned = step(order)
        if not isinstance(planned, tuple):
            return planned
        tx, result = planned
        try:
            tx.commit()
            return result
        except TransactionCancelled as cancelled:
            if order_store.ORDER_LABEL in cancelled.failed:
                continue  # someone else changed the order: decide again on what is there now
            raise
    raise ConcurrentUpdate("the order keeps changing; retry", order_id=order_id)


# -- payment -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaymentOutcome:
    order: Order
    outcome: str  # "paid" | "duplicate" | "needs_refund"

    def view(self) -> dict[str, Any]:
        return {"order_id": self.order.order_id, "status": self.order.status.value, "outcome": self.outcome}


def apply_payment(notice: PaymentNotice, now: int) -> PaymentOutcome:
    """Pay the order once per transaction id. A payment for an expired or cancelled order, or a second
    payment of a paid order, is recorded as NEEDS_REFUND with a PaymentNeedsRefund event: never
    silently accepted, never lost. A wrong amount changes nothing (AmountMismatch, 422)."""

    def step(order: Order) -> tuple[Transaction, PaymentOutcome] | PaymentOutcome:
        if notice.amount_fen != order.total_fen:
            count("PaymentAmountMismatch")
            raise AmountMismatch(
                "paid amount does not match the order", expected_fen=order.total_fen, got_fen=notice.amount_fen
            )
        if order.transaction_id == notice.transaction_id:
            return PaymentOutcome(order, "duplicate")
        tx = Transaction()
        if order.status is Status.PENDING_PAYMENT and not order.is_due(now):
            paid = order.transition(Action.PAY, "payment", now, transaction_id=notice.transaction_id, paid_at_ms=now)
            order_store.replace_if_unchanged(tx, order, paid)
            commit_units(tx, paid)
            _record(tx, notice, "APPLIED", None, now)
            outbox.emit(
                tx,
                DomainEvent(
                    EventType.ORDER_PAID,
                    paid.order_id,
                    paid.event_payload(transaction_id=notice.transaction_id, paid_at=notice.paid_at),
                ),
            )
            return tx, PaymentOutcome(paid, "paid")
        if order.status is Status.PENDING_PAYMENT:
            reason = "payment arrived after the payment window"
            after = _expired(tx, order, now, note=reason)
        else:
            reason = (
                f"order is {order.status.value}"
                if order.status is Status.CANCELLED
                else f"order already paid by {order.transaction_id}"
            )
            after = order.note("payment", now, f"payment {notice.transaction_id} flagged for refund: {reason}")
            order_store.replace_if_unchanged(tx, order, after)
        _record(tx, notice, "NEEDS_REFUND", reason, now)
        outbox.emit(
            tx,
            DomainEvent(
                EventType.PAYMENT_NEEDS_REFUND,
                order.order_id,
                after.event_payload(transaction_id=notice.transaction_id, amount_fen=notice.amount_fen, reason=reason),
            ),
        )
        count("PaymentsNeedingRefund")
        return tx, PaymentOutcome(after, "needs_refund")

    try:
        return _retrying(step, notice.order_id)
    except TransactionCancelled as cancelled:
        if order_store.PAYMENT_LABEL in cancelled.failed:
            # This transaction id was recorded before (a concurrent or earlier duplicate).
            return PaymentOutcome(load(notice.order_id), "duplicate")
        raise


def _record(tx: Transaction, notice: PaymentNotice, status: str, reason: str | None, now: int) -> None:
    order_store.record_payment(
        tx, notice.transaction_id, notice.order_id, notice.amount_fen, notice.paid_at, status, reason, now
    )


def _expired(tx: Transaction, order: Order, now: int, note: str | None = None) -> Order:
    expired = order.transition(Action.EXPIRE, "expiry", now, note=note, cancel_reason="expired")
    order_store.replace_if_unchanged(tx, order, expired)
    release_units(tx, order)
    outbox.emit(tx, DomainEvent(EventType.ORDER_EXPIRED, order.order_id, expired.event_payload()))
    return expired


# -- cancellation and expiry -------------------------------------------------------------------
def cancel(order_id: str, who: Principal, now: int) -> Order:
    """The customer cancels while PENDING_PAYMENT; the held units go back."""

    def step(order: Order) -> tuple[Transaction, Order]:
        if order.customer_id != who.sub:
            raise NotFound("no such order", order_id=order_id)
        cancelled = order.transition(Action.CANCEL, who.sub, now, cancel_reason="customer")
        tx = Transaction()
        order_store.replace_if_unchanged(tx, order, cancelled)
        release_units(tx, order)
        outbox.emit(tx, DomainEvent(EventType.ORDER_CANCELLED, order.order_id, cancelled.event_payload()))
        return tx, cancelled

    return _retrying(step, order_id)


def expire_due(now: int, limit: int = 500) -> int:
    """The sweeper: cancel every unpaid order whose window has passed and release its units.
    Safe to run concurrently with itself and with payments: each expiry is conditional."""
    expired = 0
    for order in order_store.due_orders(now):
        if expired >= limit:
            break
        if not order.is_due(now):
            continue
        tx = Transaction()
        _expired(tx, order, now)
        try:
            tx.commit()
            expired += 1
        except TransactionCancelled as cancelled:
            if order_store.ORDER_LABEL not in cancelled.failed:
                raise
            # Paid or cancelled meanwhile: nothing to expire.
    if expired:
        count("OrdersExpired", expired)
        logger.info("expired unpaid orders", extra={"count": expired})
    return expired


# -- fulfilment --------------------------------------------------------------------------------
def _require_fulfiller(order: Order, who: Principal) -> None:
    if who.role is Role.MERCHANT_ADMIN:
        return
    if who.role is Role.STORE_STAFF and who.store_id == order.location:
        return
    raise Forbidden("only the fulfilling store's staff or a merchant admin may do this", location=order.location)


def ship(order_id: str, tracking_number: str, who: Principal, now: int) -> Order:
    def step(order: Order) -> tuple[Transaction, Order]:
        _require_fulfiller(order, who)
        if order.is_pickup:
            raise RuleViolation("pickup orders are handed over, not shipped", order_id=order_id)
        shipped = order.transition(Action.SHIP, who.sub, now, tracking_number=tracking_number)
        tx = Transaction()
        order_store.replace_if_unchanged(tx, order, shipped)
        outbox.emit(
            tx,
            DomainEvent(
                EventType.ORDER_FULFILLED,
                order_id,
                shipped.event_payload(how="shipped", tracking_number=tracking_number),
            ),
        )
        return tx, shipped

    return _retrying(step, order_id)


def ready_for_pickup(order_id: str, who: Principal, now: int) -> Order:
    def step(order: Order) -> tuple[Transaction, Order]:
        _require_fulfiller(order, who)
        if not order.is_pickup:
            raise RuleViolation("only pickup orders wait for pickup", order_id=order_id)
        ready = order.transition(Action.READY_FOR_PICKUP, who.sub, now, pickup_code=new_pickup_code())
        tx = Transaction()
        order_store.replace_if_unchanged(tx, order, ready)
        outbox.emit(
            tx,
            DomainEvent(
                EventType.ORDER_FULFILLED,
                order_id,
                ready.event_payload(how="ready_for_pickup", pickup_code=ready.pickup_code),
            ),
        )
        return tx, ready

    return _retrying(step, order_id)


def hand_over(order_id: str, code: str, who: Principal, now: int) -> Order:
    """Staff enter the customer's pickup code. Wrong codes are counted; after MAX_PICKUP_ATTEMPTS
    the order refuses further tries (429) so a six-digit code cannot be guessed."""

    def step(order: Order) -> tuple[Transaction, Order | Exception]:
        _require_fulfiller(order, who)
        next_status(order.status, Action.HAND_OVER)  # InvalidTransition (409) unless FULFILLING
        if not order.is_pickup or order.pickup_code is None:
            raise RuleViolation("this order is not waiting for pickup", order_id=order_id)
        if order.pickup_attempts >= MAX_PICKUP_ATTEMPTS:
            raise LimitReached("too many wrong pickup codes; ask a merchant admin", order_id=order_id)
        tx = Transaction()
        if not secrets.compare_digest(code, order.pickup_code):
            counted = replace(order, version=order.version + 1, pickup_attempts=order.pickup_attempts + 1)
            order_store.replace_if_unchanged(tx, order, counted)
            left = MAX_PICKUP_ATTEMPTS - counted.pickup_attempts
            return tx, WrongPickupCode("wrong pickup code", attempts_left=left)
        done = order.transition(Action.HAND_OVER, who.sub, now)
        order_store.replace_if_unchanged(tx, order, done)
        outbox.emit(tx, DomainEvent(EventType.ORDER_COMPLETED, order_id, done.event_payload(how="picked_up")))
        return tx, done

    result = _retrying(step, order_id)
    if isinstance(result, Exception):
        raise result
    return result


def complete(order_id: str, who: Principal, now: int) -> Order:
    """A shipped order is completed by the customer confirming receipt, or by staff / admin."""

    def step(order: Order) -> tuple[Transaction, Order]:
        if who.role is Role.CUSTOMER:
            if order.customer_id != who.sub:
                raise NotFound("no such order", order_id=order_id)
        else:
            _require_fulfiller(order, who)
        if order.is_pickup:
            raise RuleViolation("pickup orders complete when handed over with the pickup code", order_id=order_id)
        done = order.transition(Action.COMPLETE, who.sub, now)
        tx = Transaction()
        order_store.replace_if_unchanged(tx, order, done)
        outbox.emit(tx, DomainEvent(EventType.ORDER_COMPLETED, order_id, done.event_payload(how="delivered")))
        return tx, done

    return _retrying(step, order_id)


# -- refunds -----------------------------------------------------------------------------------
def request_refund(
    order_id: str, lines: dict[str, int], reason: str, who: Principal, now: int, request: IdempotentRequest
) -> StoredResponse:
    """The customer asks for some units back. Nothing moves until a merchant admin decides; the
    amount shown is what those units were paid, from the allocated line totals. Idempotent per
    `Idempotency-Key`: a replay returns the first answer (its own pending refund would otherwise
    make the same request look like too many units)."""
    stored = idempotency_store.replay(request) if request.client_supplied else None
    if stored is not None:
        return stored
    order = load(order_id)
    if order.customer_id != who.sub:
        raise NotFound("no such order", order_id=order_id)
    if order.status not in REFUNDABLE:
        raise order_invalid(order, "refund")
    pending = _pending_refund_qty(order_id)
    amounts: list[dict[str, Any]] = []
    for sku, qty in lines.items():
        if order.line(sku) is None:
            raise ValidationFailed("the order has no such line", sku=sku)
        open_qty = order.refundable_qty(sku) - pending.get(sku, 0)
        if qty > open_qty:
            raise RuleViolation("more units than can still be refunded", sku=sku, refundable_qty=open_qty)
        amounts.append({"sku": sku, "qty": qty, "amount_fen": order.refund_amount(sku, qty)})
    refund = {
        "refund_id": f"r{now:012x}{secrets.token_hex(6)}",
        "order_id": order_id,
        "customer_id": who.sub,
        "status": "REQUESTED",
        "lines": amounts,
        "amount_fen": sum(int(a["amount_fen"]) for a in amounts),
        "reason": reason,
    }
    response = StoredResponse(201, refund)
    tx = Transaction()
    order_store.add_refund(tx, refund, now)
    return idempotency_store.commit(tx, request, response)


def order_invalid(order: Order, what: str) -> Exception:
    return InvalidTransition(f"cannot {what} an order that is {order.status.value}", status=order.status.value)


def _pending_refund_qty(order_id: str) -> dict[str, int]:
    pending: dict[str, int] = {}
    for refund in order_store.refunds_of(order_id):
        if refund["status"] == "REQUESTED":
            for line in refund["lines"]:
                pending[line["sku"]] = pending.get(line["sku"], 0) + line["qty"]
    return pending


def decide_refund(order_id: str, refund_id: str, approve: bool, restock: bool, who: Principal, now: int) -> dict:
    """Issue or reject a requested refund, once. Issuing records the refunded units and amount on
    the order (REFUNDED when every unit is refunded), puts units back on the shelf if the merchant
    says so, and announces RefundIssued with the exact amount."""

    def step(order: Order) -> tuple[Transaction, dict]:
        refund = order_store.get_refund(order_id, refund_id)
        if refund is None:
            raise NotFound("no such refund", refund_id=refund_id)
        if refund["status"] != "REQUESTED":
            raise order_invalid_refund(refund)
        tx = Transaction()
        if not approve:
            order_store.decide_refund(tx, refund, "REJECTED", restock=False)
            return tx, {**refund, "status": "REJECTED", "restock": "no"}
        if order.status not in REFUNDABLE:
            raise order_invalid(order, "refund")
        units = {line["sku"]: line["qty"] for line in refund["lines"]}
        after, lines = order.refund(units, who.sub, now, refund_id)
        amount = after.refunded_fen - order.refunded_fen
        order_store.replace_if_unchanged(tx, order, after)
        order_store.decide_refund(tx, refund, "ISSUED", restock)
        if restock:
            for sku, qty in units.items():
                stock_store.restock(tx, sku, order.location, qty)
        issued = {
            **refund,
            "status": "ISSUED",
            "lines": lines,
            "amount_fen": amount,
            "restock": "yes" if restock else "no",
        }
        outbox.emit(
            tx,
            DomainEvent(
                EventType.REFUND_ISSUED,
                order_id,
                after.event_payload(refund_id=refund_id, amount_fen=amount, refund_lines=lines, restocked=restock),
            ),
        )
        return tx, issued

    try:
        return _retrying(step, order_id)
    except TransactionCancelled as cancelled:
        if f"refund:{refund_id}" in cancelled.failed:  # decided by someone else a moment ago
            raise InvalidTransition("refund was decided concurrently", refund_id=refund_id) from cancelled
        raise


def order_invalid_refund(refund: dict) -> Exception:
    return InvalidTransition(f"refund is already {refund['status']}", refund_id=refund["refund_id"])
