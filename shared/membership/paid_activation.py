"""A paid membership activated by its order's OrderPaid and undone by its RefundIssued (issue 14
item 3; docs/membership.md, "Activation and refunds"). Heard by the membership consumer
(`MembershipConsumer`, the MembershipQueue), before the points' own write of the same event.

- **OrderPaid of a membership order** (its payload carries `membership`, the plan's terms as
  bought): the term is placed at the payment's time by `paid.after_purchase` (new, renewal after
  the end of everything bought, or an upgrade from now that moves the rest back), and the term,
  the terms it moved, the paid member and checkout's `MEMBER` item are written in ONE transaction
  conditional on the versions read (`PaidTermsStore.write`). The term's own item is put only if it
  does not exist, so a redelivered OrderPaid finds it and writes nothing. Then the plan's welcome
  coupons are issued (`welcome.welcome_on_paid`: once per order and template, by their keys).
- **RefundIssued of the membership line** (sku `MEMBERSHIP-*`, its unit refunded, even for 0 fen): the term ends at the
  refund's time (`paid.shortened`: later terms move forward), REFUNDED, the paid member and
  checkout's item follow, in one conditional transaction; the unused welcome coupons are revoked
  (`paid_refunds.undo_welcome_pack`). A term already REFUNDED is left as it is (redelivery).
  Heard before its OrderPaid (a standard queue: a retried or redriven OrderPaid comes late), it
  stores the term REFUNDED and empty, so the late OrderPaid activates nothing and issues no pack.
- An ordinary order's events change nothing here.

Each step is idempotent on its own (the term's existence or status, the coupons' keys and status),
so the event handled again after a crash between them completes what is missing and repeats nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.coupons.ports import CouponPorts
from shared.kernel.clock import SYSTEM, Clock
from shared.kernel.errors import ConcurrentUpdate
from shared.kernel.events import DomainEvent, EventType
from shared.membership.paid import PLAN_SKU_PREFIX, Term, TermKind
from shared.membership.paid_refunds import refunded_membership_lines, revoke_unused, undo_welcome_pack
from shared.membership.paid_terms import PaidState, PaidTermsStore, StoredTerm, TermStatus, purchased, refunded
from shared.membership.welcome import templates_of, welcome_coupon_ids, welcome_on_paid
from shared.messaging.ports import ClaimingConsumer, HeldClaim
from shared.platform.observability import count, logger

ATTEMPTS = 5  # reads and writes again when another writer of the member got there first


def epoch_ms(when: str) -> int:
    return int(datetime.fromisoformat(when).timestamp() * 1000)


def bought_term(payload: Mapping[str, Any], at_ms: int) -> StoredTerm | None:
    """The term a membership order's OrderPaid buys (segments and kind decided by `purchased`)."""
    terms = payload.get("membership")
    if not terms:
        return None
    sku = f"{PLAN_SKU_PREFIX}{terms['plan_id']}"
    line = next((x for x in payload.get("lines") or () if x.get("sku") == sku), None)
    if line is None:
        return None
    credited = payload.get("credited") or {}
    term = Term(
        order_id=str(payload["order_id"]),
        plan_id=str(terms["plan_id"]),
        tier=str(terms["tier"]),
        rank=int(terms["rank"]),
        days=int(terms["days"]),
        bought_at_ms=at_ms,
        kind=TermKind.NEW,
        segments=(),
        discount_bp=int(terms.get("discount_bp") or 0),
        member_price=bool(terms.get("member_price", True)),
        store_id=terms.get("store_id") or credited.get("store_id"),
        guide_id=credited.get("guide_id"),
    )
    return StoredTerm(
        customer_id=str(payload["customer_id"]),
        term=term,
        paid_fen=int(line["payable_fen"]),
        refund_full_within_days=int(terms.get("refund_full_within_days") or 0),
    )


class PaidMembershipEvents:
    def __init__(
        self,
        terms: PaidTermsStore,
        coupons: Callable[[], CouponPorts],
        running: Callable[[str], object] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        """`running(order_id)`: tells the ordering the membership runs (its order completes).
        `clock`: when an event is handled (later than it happened when retried or redriven: a
        membership it leaves ended is EXPIRED by the same write, `paid_terms._ran_out`)."""
        self._terms = terms
        self._clock = clock
        self._coupons = coupons
        self._running = running

    def on_paid(self, event: DomainEvent) -> None:
        at = epoch_ms(event.occurred_at)
        bought = bought_term(event.payload, at)
        if bought is None:
            return
        state = self._change(
            bought.customer_id,
            lambda state: state if state.term(bought.order_id) else purchased(state, bought, at, self._clock.now_ms()),
        )
        term = state.term(bought.order_id)
        if term is not None and term.status is TermStatus.REFUNDED:
            return  # refunded already (its RefundIssued may be heard first): no pack, nothing to complete
        pack = welcome_on_paid(event.payload, self._coupons())
        if pack.refused:
            logger.warning(
                "welcome coupons refused", extra={"order_id": bought.order_id, "refused": list(pack.refused)}
            )
        after = self._terms.read(bought.customer_id).term(bought.order_id)
        if after is not None and after.status is TermStatus.REFUNDED:
            # A RefundIssued handled between the write above and these claims revoked only the
            # coupons that existed then: what was issued after it is revoked here, so in either
            # order of the two consumers no welcome coupon of a refunded membership stays usable.
            revoke_unused(
                welcome_coupon_ids(bought.order_id, templates_of(event.payload), self._coupons()), self._coupons()
            )
            return
        if self._running is not None:
            self._running(bought.order_id)  # PAID -> COMPLETED; unchanged when done before
        count("PaidMembershipsActivated")

    def on_refund(self, event: DomainEvent) -> None:
        payload = event.payload
        if not refunded_membership_lines(payload):
            return
        customer, order_id, at = str(payload["customer_id"]), str(payload["order_id"]), epoch_ms(event.occurred_at)

        def ended(state: PaidState) -> PaidState:
            term = state.term(order_id)
            if term is None:
                # Heard before its OrderPaid (a standard queue; a retried or redriven OrderPaid):
                # the term is stored REFUNDED, ended when it would begin, so the late OrderPaid
                # finds it and activates nothing.
                bought = bought_term(payload, at)
                if bought is None:
                    return state
                ended_term = replace(bought.term, segments=((at, at),), revoked_at_ms=at)
                gone = replace(bought, term=ended_term, status=TermStatus.REFUNDED, refunded_at_ms=at)
                return PaidState(state.customer_id, (*state.terms, gone), state.member)
            if term.status is TermStatus.REFUNDED:
                return state
            return refunded(state, order_id, at, self._clock.now_ms())

        self._change(customer, ended)
        undo_welcome_pack(payload, None, self._coupons())
        count("PaidMembershipsRefunded")

    def _change(self, customer_id: str, change: Callable[[PaidState], PaidState]) -> PaidState:
        """The state after `change`, written (or as read when it changes nothing)."""
        for attempt in range(ATTEMPTS):
            state = self._terms.read(customer_id)
            after = change(state)
            if after == state:
                return state
            try:
                self._terms.write(state, after)
                return after
            except ConcurrentUpdate:
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")


class MembershipConsumer:
    """The membership consumer: the paid membership's effect of an event, then the points' write
    with the mark (`PointsEarning`, a ClaimingConsumer). The paid part is idempotent by itself, so
    when the points' write fails the event comes back and only the points are written."""

    def __init__(self, points: ClaimingConsumer, paid: PaidMembershipEvents) -> None:
        self.name = points.name
        self._points = points
        self._paid = paid

    def handle_claimed(self, event: DomainEvent, claim: HeldClaim) -> None:
        if event.type is EventType.ORDER_PAID:
            self._paid.on_paid(event)
        elif event.type is EventType.REFUND_ISSUED:
            self._paid.on_refund(event)
        self._points.handle_claimed(event, claim)

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        self._points.gave_up(event, reason)
