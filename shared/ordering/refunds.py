"""Refunds of paid orders: the customer asks for units back, a merchant admin decides once.

The amount of a refund is what those units were paid, from the allocated line totals
(`Order.refund_amount`), so partial refunds of a line sum exactly to what it paid. A request holds
its units on the order (`Order.refund_requested_qty`) in the transaction that writes it,
conditional on the order read, so concurrent requests for the same units cannot both be accepted:
the loser reads again and is refused as if it had come second. Issuing writes the order's refunded
units and amount, the refund's decision (which announces RefundIssued: the relay derives it from
the refund item's change) and the restock (if the merchant puts the units back on the shelf) in
ONE unit of work conditional on the order read; rejecting gives the held units back in the same way.
(docs/orders.md, "Refunds")
"""

from __future__ import annotations

from typing import Any

from shared.kernel.clock import Clock
from shared.kernel.errors import DomainError, InvalidTransition, NotFound, ValidationFailed
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.identity import Principal
from shared.ordering.lifecycle import on_latest
from shared.ordering.model import REFUNDABLE, Order, Status, refund_id_for
from shared.ordering.ports import (
    BY_UNITS,
    NO_COUPONS,
    CouponHolder,
    FlashUnitReleaser,
    OrderingUnitOfWorkFactory,
    OrderReads,
    Refund,
    RefundPricing,
)


class OrderRefunds:
    def __init__(
        self,
        uow: OrderingUnitOfWorkFactory,
        reads: OrderReads,
        clock: Clock,
        coupons: CouponHolder = NO_COUPONS,
        flash: FlashUnitReleaser | None = None,
        id_secret: bytes | None = None,
        pricing: RefundPricing = BY_UNITS,
    ) -> None:
        """`id_secret` keys the refund ids derived from a request's Idempotency-Key (the
        placement's secret: `shared.kernel.idempotency.derived_id`)."""
        self._uow = uow
        self._reads = reads
        self._clock = clock
        self._coupons = coupons
        self._flash = flash
        self._id_secret = id_secret
        self._pricing = pricing  # lines refunded by a policy's amount (a paid membership's)

    def refunds_of(self, order_id: str) -> list[Refund]:
        return self._reads.refunds_of(order_id)

    def request_refund(
        self, order_id: str, lines: dict[str, int], reason: str, who: Principal, request: IdempotentRequest
    ) -> StoredResponse:
        """The customer asks for some units back. Nothing is paid back until a merchant admin
        decides, but the units are held on the order at once, conditionally on the order read, so
        of concurrent requests for the last units one is accepted and the others are refused (422)
        as they are when sent one after another. The amount shown is what those units were paid,
        from the allocated line totals. Idempotent per `Idempotency-Key`: a replay returns the first
        answer (its own held units would otherwise make the same request look like too many). The
        refund carries the key: its id is derived from it and it keeps the request's fingerprint,
        so its conditional put is the idempotency check (no separate record)."""
        stored = self._replay(order_id, request)
        if stored is not None:
            return stored
        now = self._clock.now_ms()
        # Without a key the request has a server-made one: a random id then, and a botocore retry
        # of a write that had applied is answered by the refund it wrote, as a replay is.
        refund_id = refund_id_for(request, self._id_secret)

        def step(order: Order) -> StoredResponse:
            if order.customer_id != who.sub:
                raise NotFound("no such order", order_id=order_id)
            if order.status not in REFUNDABLE:
                raise _cannot_refund(order)
            for sku in lines:
                if order.line(sku) is None:
                    raise ValidationFailed("the order has no such line", sku=sku)
            order.request_refund(lines, who.sub, now, refund_id)  # RuleViolation: too many units
            # As if issued now: an unshipped order's gift units no longer earned come back with it,
            # a shipped one's kept are paid for (RuleViolation when the refund cannot pay for them).
            units, amounts, _ = order.refund_lines(lines, priced=self._pricing.amounts(order, lines, now))
            holding = order.request_refund(units, who.sub, now, refund_id)
            refund = {
                "refund_id": refund_id,
                "order_id": order_id,
                "customer_id": who.sub,
                "status": "REQUESTED",
                "lines": amounts,
                "amount_fen": sum(int(a["amount_fen"]) for a in amounts),
                "reason": reason,
            }
            uow = self._uow()
            uow.replace_order(order, holding)
            uow.add_refund(refund, now, carrying=request)
            return uow.commit_once(request, StoredResponse(201, refund))

        try:
            return on_latest(self._reads, order_id, step)
        except DomainError:
            # The same request, sent twice at once: the first one's held units refuse the second
            # after its look-up above; it gets the first answer, not a refusal.
            stored = self._replay(order_id, request)
            if stored is not None:
                return stored
            raise

    def _replay(self, order_id: str, request: IdempotentRequest) -> StoredResponse | None:
        if not request.client_supplied:
            return None
        return self._reads.replay_refund(order_id, refund_id_for(request, self._id_secret), request)

    def decide_refund(self, order_id: str, refund_id: str, approve: bool, restock: bool, who: Principal) -> Refund:
        """Issue or reject a requested refund, once. Issuing turns the units it held into refunded
        units and amount on the order (REFUNDED when every unit is refunded), puts units back on the
        shelf if the merchant says so, and announces RefundIssued with the exact amount (the refund's
        change is the announcement, `announcements.refund_issued`); rejecting
        gives the held units back to what can be refunded. Either is one unit of work conditional
        on the order and on the refund still being REQUESTED."""
        now = self._clock.now_ms()

        def step(order: Order) -> Refund:
            refund = self._reads.get_refund(order_id, refund_id)
            if refund is None:
                raise NotFound("no such refund", refund_id=refund_id)
            if refund["status"] != "REQUESTED":
                raise InvalidTransition(f"refund is already {refund['status']}", refund_id=refund["refund_id"])
            uow = self._uow()
            units = {line["sku"]: line["qty"] for line in refund["lines"] if line["qty"]}
            if not approve:
                uow.replace_order(order, order.reject_refund(units, who.sub, now, refund_id))
                uow.decide_refund(refund, "REJECTED", restock=False)
                uow.commit()
                return {**refund, "status": "REJECTED", "restock": "no"}
            if order.status not in REFUNDABLE:
                raise _cannot_refund(order)
            after, lines = order.refund(units, who.sub, now, refund_id, self._pricing.amounts(order, units, now))
            amount = after.refunded_fen - order.refunded_fen
            uow.replace_order(order, after)
            # RefundIssued is the refund item's decision: it carries the order after the refund, and
            # the relay derives the event from it (announcements.refund_issued), no outbox item.
            issued = {**refund, "lines": lines, "amount_fen": amount, "restock": "yes" if restock else "no"}
            announced = {"order_part": after.event_payload(), "decided_at_ms": now}
            # The first answer of its request shows the lines asked for: kept when the issue changes them.
            asked = {"asked_lines": refund["lines"]} if lines != refund["lines"] else {}
            uow.decide_refund({**issued, **announced, **asked}, "ISSUED", restock)
            if after.status is Status.REFUNDED and order.coupon_ids:
                # Refunded in full: its coupons come back, AVAILABLE inside their use window, else
                # EXPIRED; a partial refund keeps them USED (docs/coupons.md, "Refunds").
                self._coupons.refund(uow, after, now)
            back = _back_on_the_shelf(order, lines, restock)
            if back:
                # A flash order's units return to the sale's location, not to its pickup store.
                home = self._flash.stock_location(order) if order.flash_sale_id and self._flash else order.location
                for sku, qty in back.items():
                    uow.restock(sku, home, qty)
            uow.commit()
            return {**issued, "status": "ISSUED"}

        return on_latest(self._reads, order_id, step)


def _back_on_the_shelf(order: Order, lines: list[dict[str, Any]], restock: bool) -> dict[str, int]:
    """The units an issued refund puts back in stock: every unit when the merchant restocks, and
    the gift units of an unshipped order in any case (they never left: docs/pricing.md)."""
    gifts = {g.sku for g in order.gifts} if order.status is Status.PAID else set()
    stocked = {line.sku for line in order.stocked_lines}  # a membership's plan line is no stock
    return {
        str(line["sku"]): int(line["qty"])
        for line in lines
        if line["qty"] and line["sku"] in stocked and (restock or line["sku"] in gifts)
    }


def _cannot_refund(order: Order) -> InvalidTransition:
    return InvalidTransition(f"cannot refund an order that is {order.status.value}", status=order.status.value)
