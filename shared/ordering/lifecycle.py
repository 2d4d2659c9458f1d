"""What happens to an order after it is placed: payment, cancellation, expiry, fulfilment.
(Refunds: `shared.ordering.refunds`.)

Each use case reads the order, decides with the pure state machine (shared.ordering.model), and
writes the new order and its stock movements in ONE unit of work conditional on the status and
version it read. The relay derives each transition's event (OrderPaid, OrderCancelled,
OrderExpired, OrderFulfilled, OrderCompleted) from the order's change in the table's stream
(`shared.ordering.announcements`), and PaymentNeedsRefund, which no order change says, from the
INSERT of the payment record flagged for refund (which carries the order's part of it). If
another writer got there first (ConcurrentUpdate at commit), it reads again and decides again, a
bounded number of times, so the outcome always reflects the latest state.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from shared.kernel.clock import Clock
from shared.kernel.errors import (
    AmountMismatch,
    ConcurrentUpdate,
    Forbidden,
    LimitReached,
    NotFound,
    RuleViolation,
    WrongPickupCode,
)
from shared.kernel.identity import Principal, Role
from shared.ordering.announcements import payment_order_part
from shared.ordering.model import MAX_PICKUP_ATTEMPTS, Action, Order, Status, new_pickup_code, next_status
from shared.ordering.ports import (
    NO_COUPONS,
    CouponHolder,
    FlashUnitReleaser,
    OrderingUnitOfWork,
    OrderingUnitOfWorkFactory,
    OrderReads,
    PaymentAlreadyRecorded,
    PaymentRecord,
    VerifiedPayment,
)
from shared.platform.observability import count, logger

ATTEMPTS = 4
T = TypeVar("T")


def load(reads: OrderReads, order_id: str) -> Order:
    order = reads.get(order_id)
    if order is None:
        raise NotFound("no such order", order_id=order_id)
    return order


def on_latest(reads: OrderReads, order_id: str, step: Callable[[Order], T]) -> T:
    """Run `step` on the latest order until it returns: a step that commits a unit of work whose
    order part meets another writer's change (ConcurrentUpdate) is run again on what is there now."""
    for _ in range(ATTEMPTS):
        try:
            return step(load(reads, order_id))
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate("the order keeps changing; retry", order_id=order_id)


def may_see(order: Order, who: Principal) -> bool:
    if who.role in (Role.MERCHANT_ADMIN, Role.FINANCE):
        return True
    if who.role is Role.CUSTOMER:
        return order.customer_id == who.sub
    return who.store_id == order.location  # staff and guides see their store's orders


# API.md: store staff or guides of the fulfilling store ready and hand over pickups; shipping and
# completing are the staff's.
STAFF_ONLY = frozenset({Role.STORE_STAFF})
PICKUP_HANDLERS = frozenset({Role.STORE_STAFF, Role.GUIDE})


def _require_fulfiller(order: Order, who: Principal, store_roles: frozenset[Role] = STAFF_ONLY) -> None:
    if who.role is Role.MERCHANT_ADMIN:
        return
    if who.role in store_roles and who.store_id == order.location:
        return
    raise Forbidden("only the fulfilling store's staff or a merchant admin may do this", location=order.location)


@dataclass(frozen=True)
class PaymentOutcome:
    order: Order | None  # None: the payment named no order of ours
    outcome: str  # "paid" | "duplicate" | "needs_refund"
    order_id: str = ""  # the order the payment named, when `order` is None

    def view(self) -> dict[str, Any]:
        if self.order is None:
            return {"order_id": self.order_id, "outcome": self.outcome}
        return {"order_id": self.order.order_id, "status": self.order.status.value, "outcome": self.outcome}


class OrderLifecycle:
    def __init__(
        self,
        uow: OrderingUnitOfWorkFactory,
        reads: OrderReads,
        flash_releaser: FlashUnitReleaser,
        clock: Clock,
        coupons: CouponHolder = NO_COUPONS,
    ) -> None:
        self._uow = uow
        self._reads = reads
        self._flash_releaser = flash_releaser
        self._clock = clock
        self._coupons = coupons

    # -- reading ---------------------------------------------------------------------------
    def load(self, order_id: str) -> Order:
        return load(self._reads, order_id)

    def load_visible(self, order_id: str, who: Principal) -> Order:
        """The order if `who` may see it; otherwise NotFound, so ids of others' orders leak nothing."""
        order = self._reads.get(order_id)
        if order is None or not may_see(order, who):
            raise NotFound("no such order", order_id=order_id)
        return order

    def list_for_customer(
        self, customer_id: str, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[Order], dict[str, Any] | None]:
        return self._reads.list_for_customer(customer_id, limit, cursor)

    # -- payment ---------------------------------------------------------------------------
    def apply_payment(self, notice: VerifiedPayment) -> PaymentOutcome:
        """Pay the order once per transaction id. A payment for an expired or cancelled order, a
        second payment of a paid order, a payment for no order of ours, and one whose transaction id
        was recorded for another order are recorded as NEEDS_REFUND with a PaymentNeedsRefund event
        and the PaymentsNeedingRefund alarm metric: never silently accepted, never lost. A wrong
        amount changes nothing (AmountMismatch, 422)."""
        now = self._clock.now_ms()
        if self._reads.get(notice.order_id) is None:
            return self._needs_refund(notice, now, "no such order", clash=False)

        def step(order: Order) -> PaymentOutcome:
            if notice.amount_fen != order.total_fen:
                count("PaymentAmountMismatch")
                raise AmountMismatch(
                    "paid amount does not match the order", expected_fen=order.total_fen, got_fen=notice.amount_fen
                )
            if order.transaction_id == notice.transaction_id:
                return PaymentOutcome(order, "duplicate")
            uow = self._uow()
            if order.status is Status.PENDING_PAYMENT and not order.is_due(now):
                paid = order.transition(
                    Action.PAY,
                    "payment",
                    now,
                    transaction_id=notice.transaction_id,
                    paid_at_ms=now,
                    provider_paid_at=notice.paid_at,
                )
                # OrderPaid is the order's PENDING_PAYMENT -> PAID change itself: the relay derives
                # it from the stream (shared.ordering.announcements), no outbox item.
                uow.replace_order(order, paid)
                self._commit_units(uow, paid)
                if paid.coupon_ids:
                    self._coupons.use(uow, paid, now)
                uow.record_payment(_payment(notice, "APPLIED", None, now))
                uow.commit()
                return PaymentOutcome(paid, "paid")
            if order.status is Status.PENDING_PAYMENT:
                reason = "payment arrived after the payment window"
                after = self._expire(uow, order, now, note=reason)
            else:
                reason = (
                    f"order is {order.status.value}"
                    if order.status is Status.CANCELLED
                    else f"order already paid by {order.transaction_id}"
                )
                after = order.note("payment", now, f"payment {notice.transaction_id} flagged for refund: {reason}")
                uow.replace_order(order, after)
            # PaymentNeedsRefund is the record's INSERT: it carries the order after this change, the
            # relay derives the event from it (announcements.payment_needs_refund), no outbox item.
            uow.record_payment(_payment(notice, "NEEDS_REFUND", reason, now, payment_order_part(after, order.order_id)))
            uow.commit()
            count("PaymentsNeedingRefund")
            return PaymentOutcome(after, "needs_refund")

        try:
            return on_latest(self._reads, notice.order_id, step)
        except PaymentAlreadyRecorded:
            return self._recorded_before(notice, now)

    def _recorded_before(self, notice: VerifiedPayment, now: int) -> PaymentOutcome:
        """The transaction id is recorded: for this order, a duplicate (nothing more to record); for
        another order, this payment clashes with that one and is recorded beside it for refund."""
        first = self._reads.get_payment(notice.transaction_id)
        if first is None or first.order_id == notice.order_id:
            return PaymentOutcome(self._reads.get(notice.order_id), "duplicate", notice.order_id)
        reason = f"transaction id already recorded for order {first.order_id}"
        return self._needs_refund(notice, now, reason, clash=True)

    def _needs_refund(self, notice: VerifiedPayment, now: int, reason: str, *, clash: bool) -> PaymentOutcome:
        """Record a payment that pays no order of ours (none by that id; or its transaction id is
        another order's) as NEEDS_REFUND. Its event names no customer: finance and the merchant
        admins act on it, and the customer of a still unpaid order is not told it was closed."""
        uow = self._uow()
        record = _payment(notice, "NEEDS_REFUND", reason, now, payment_order_part(None, notice.order_id))
        if clash:
            uow.record_clashing_payment(record)
        else:
            uow.record_payment(record)
        try:
            uow.commit()
        except PaymentAlreadyRecorded:
            if clash:
                return PaymentOutcome(self._reads.get(notice.order_id), "duplicate", notice.order_id)
            return self._recorded_before(notice, now)
        count("PaymentsNeedingRefund")
        logger.warning("payment recorded for refund", extra={"transaction_id": notice.transaction_id, "reason": reason})
        return PaymentOutcome(self._reads.get(notice.order_id), "needs_refund", notice.order_id)

    def payments_needing_refund(
        self, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[PaymentRecord], dict[str, Any] | None]:
        """For finance: every payment recorded NEEDS_REFUND, newest first, a page at a time."""
        return self._reads.payments_needing_refund(limit, cursor)

    # -- cancellation and expiry -----------------------------------------------------------
    def cancel(self, order_id: str, who: Principal) -> Order:
        """The customer cancels while PENDING_PAYMENT; the held units go back."""
        now = self._clock.now_ms()

        def step(order: Order) -> Order:
            if order.customer_id != who.sub:
                raise NotFound("no such order", order_id=order_id)
            cancelled = order.transition(Action.CANCEL, who.sub, now, cancel_reason="customer")
            uow = self._uow()
            uow.replace_order(order, cancelled)
            self._release_units(uow, order)
            uow.commit()  # the relay derives OrderCancelled from the order's change
            return cancelled

        return on_latest(self._reads, order_id, step)

    def expire_due(self, limit: int = 500) -> int:
        """The sweeper: cancel every unpaid order whose window has passed and release its units.
        Safe to run concurrently with itself and with payments: each expiry is conditional."""
        now = self._clock.now_ms()
        expired = 0
        for order in self._reads.due_orders(now):
            if expired >= limit:
                break
            if not order.is_due(now):
                continue
            uow = self._uow()
            self._expire(uow, order, now)
            try:
                uow.commit()
                expired += 1
            except ConcurrentUpdate:
                continue  # paid or cancelled meanwhile: nothing to expire
        if expired:
            count("OrdersExpired", expired)
            logger.info("expired unpaid orders", extra={"count": expired})
        return expired

    def _expire(self, uow: OrderingUnitOfWork, order: Order, now: int, note: str | None = None) -> Order:
        expired = order.transition(Action.EXPIRE, "expiry", now, note=note, cancel_reason="expired")
        uow.replace_order(order, expired)
        self._release_units(uow, order)  # the relay derives OrderExpired from the order's change
        return expired

    def _release_units(self, uow: OrderingUnitOfWork, order: Order) -> None:
        if order.coupon_ids:
            # Back to AVAILABLE inside their use window, else EXPIRED (docs/coupons.md).
            self._coupons.give_back(uow, order, self._clock.now_ms())
        if order.flash_sale_id:
            # Its units came from the sale's shards, not from a stock item: the sale takes them back.
            self._flash_releaser.release(uow, order)
            return
        for line in order.stocked_lines:
            uow.release_stock(line.sku, order.location, line.qty)

    def _commit_units(self, uow: OrderingUnitOfWork, order: Order) -> None:
        if order.flash_sale_id:
            # Its units are held at the sale's location since the sale was created: they leave it now.
            self._flash_releaser.commit(uow, order)
            return
        for line in order.stocked_lines:
            uow.commit_stock(line.sku, order.location, line.qty)

    # -- fulfilment ------------------------------------------------------------------------
    def ship(self, order_id: str, tracking_number: str, who: Principal) -> Order:
        now = self._clock.now_ms()

        def step(order: Order) -> Order:
            _require_fulfiller(order, who)
            if order.is_pickup:
                raise RuleViolation("pickup orders are handed over, not shipped", order_id=order_id)
            shipped = order.transition(Action.SHIP, who.sub, now, tracking_number=tracking_number)
            self._write(order, shipped)
            return shipped

        return on_latest(self._reads, order_id, step)

    def ready_for_pickup(self, order_id: str, who: Principal) -> Order:
        now = self._clock.now_ms()

        def step(order: Order) -> Order:
            _require_fulfiller(order, who, PICKUP_HANDLERS)
            if not order.is_pickup:
                raise RuleViolation("only pickup orders wait for pickup", order_id=order_id)
            ready = order.transition(Action.READY_FOR_PICKUP, who.sub, now, pickup_code=new_pickup_code())
            self._write(order, ready)
            return ready

        return on_latest(self._reads, order_id, step)

    def hand_over(self, order_id: str, code: str, who: Principal) -> Order:
        """Staff enter the customer's pickup code. Wrong codes are counted; after MAX_PICKUP_ATTEMPTS
        the order refuses further tries (429) so a six-digit code cannot be guessed."""
        now = self._clock.now_ms()

        def step(order: Order) -> Order:
            _require_fulfiller(order, who, PICKUP_HANDLERS)
            next_status(order.status, Action.HAND_OVER)  # InvalidTransition (409) unless FULFILLING
            if not order.is_pickup or order.pickup_code is None:
                raise RuleViolation("this order is not waiting for pickup", order_id=order_id)
            if order.pickup_attempts >= MAX_PICKUP_ATTEMPTS:
                raise LimitReached("too many wrong pickup codes; ask a merchant admin", order_id=order_id)
            if not secrets.compare_digest(code, order.pickup_code):
                counted = replace(order, version=order.version + 1, pickup_attempts=order.pickup_attempts + 1)
                self._write(order, counted)  # the wrong try counts, then it is refused
                raise WrongPickupCode("wrong pickup code", attempts_left=MAX_PICKUP_ATTEMPTS - counted.pickup_attempts)
            done = order.transition(Action.HAND_OVER, who.sub, now)
            self._write(order, done)
            return done

        return on_latest(self._reads, order_id, step)

    def reset_pickup_attempts(self, order_id: str, who: Principal) -> Order:
        """A merchant admin lifts the lock-out of a pickup after wrong codes: the count starts again
        (five more tries), the code stays the one the customer holds, and the order's history
        records who did it and when. Only while the order waits for pickup (409 otherwise)."""
        now = self._clock.now_ms()

        def step(order: Order) -> Order:
            if who.role is not Role.MERCHANT_ADMIN:
                raise Forbidden("only a merchant admin may reset a pickup lock-out", order_id=order_id)
            next_status(order.status, Action.HAND_OVER)  # InvalidTransition (409) unless FULFILLING
            if not order.is_pickup or order.pickup_code is None:
                raise RuleViolation("this order is not waiting for pickup", order_id=order_id)
            if order.pickup_attempts == 0:
                return order  # nothing to lift; the history records only resets that did something
            reset = order.reset_pickup_attempts(who.sub, now)
            self._write(order, reset)
            logger.info("pickup lock-out reset", extra={"order_id": order_id, "by": who.sub})
            return reset

        return on_latest(self._reads, order_id, step)

    def complete(self, order_id: str, who: Principal) -> Order:
        """A shipped order is completed by the customer confirming receipt, or by staff / admin."""
        now = self._clock.now_ms()

        def step(order: Order) -> Order:
            if who.role is Role.CUSTOMER:
                if order.customer_id != who.sub:
                    raise NotFound("no such order", order_id=order_id)
            else:
                _require_fulfiller(order, who)
            if order.is_pickup:
                raise RuleViolation("pickup orders complete when handed over with the pickup code", order_id=order_id)
            done = order.transition(Action.COMPLETE, who.sub, now)
            self._write(order, done)
            return done

        return on_latest(self._reads, order_id, step)

    def complete_membership(self, order_id: str) -> Order:
        """A paid-membership order is complete once its membership runs (the membership consumer
        calls this after activating it): PAID -> COMPLETED, announced as OrderCompleted
        (`how: activated`), so its commission (the guide's rebate) is frozen for the after-sale
        window and then settled like any order's. Any other order, or one no longer PAID (already
        completed, refunded): unchanged, so a redelivered activation changes nothing."""
        now = self._clock.now_ms()

        def step(order: Order) -> Order:
            if order.membership is None or order.status is not Status.PAID:
                return order
            done = order.transition(Action.ACTIVATE, "membership", now)
            self._write(order, done)
            return done

        return on_latest(self._reads, order_id, step)

    def _write(self, before: Order, after: Order) -> None:
        """The order's change alone: the relay derives what a transition announces from it
        (OrderFulfilled, OrderCompleted: `shared.ordering.announcements`)."""
        uow = self._uow()
        uow.replace_order(before, after)
        uow.commit()


def _payment(
    notice: VerifiedPayment, status: str, reason: str | None, now: int, order_part: dict[str, Any] | None = None
) -> PaymentRecord:
    return PaymentRecord(
        transaction_id=notice.transaction_id,
        order_id=notice.order_id,
        amount_fen=notice.amount_fen,
        paid_at=notice.paid_at,
        status=status,
        reason=reason,
        recorded_at_ms=now,
        provider=notice.provider,
        order_part=order_part,
    )
