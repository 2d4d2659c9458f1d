"""What refunding a paid-membership order gives back (issue 14 item 3; docs/membership.md,
"Refunds"): the ordering's `RefundPricing` port, asked by `OrderRefunds` when a refund is requested
(the amount shown) and again when it is decided (the amount issued, at the decision's time).

Refunds are by units everywhere else; a membership order has one unit, and its refund is the plan's
policy (`paid_refunds.refund_for_segments`): in full while the term is at most the plan's
`refund_full_within_days` old and no member benefit was used, otherwise pro rata of the unused whole
days. Its inputs:

- the term's segments, from the stored term (`PTERM#<order>`, as renewals and upgrades placed it);
  paid but not activated yet (the consumer has not run): the plan's days from the payment;
- benefit used: a welcome coupon of this order USED, LOCKED or redeemed in a store, or an order of
  the member paid since the term started (every order of a paid member is priced with its member
  prices and discount, so an order is counted as a benefit taken; an ordinary order that happened
  to get no reduction is counted too: the merchant's side of the doubt).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shared.coupons.ports import CouponPorts
from shared.membership.paid import DAY_MS, PLAN_SKU_PREFIX
from shared.membership.paid_refunds import benefit_used, refund_for_segments, welcome_statuses
from shared.membership.paid_terms import PaidTermsStore, TermStatus
from shared.membership.welcome import welcome_coupon_ids
from shared.ordering.model import Order, Status
from shared.ordering.ports import OrderReads

ORDER_PAGES = 4  # of 50 orders, newest first: a member's orders since its term started
UNPAID = (Status.PENDING_PAYMENT, Status.CANCELLED)


class MembershipRefundPricing:
    def __init__(self, terms: PaidTermsStore, coupons: Callable[[], CouponPorts], orders: OrderReads) -> None:
        self._terms = terms
        self._coupons = coupons
        self._orders = orders

    def amounts(self, order: Order, units: Mapping[str, int], now_ms: int) -> dict[str, int]:
        plan = order.membership
        if plan is None:
            return {}
        sku = f"{PLAN_SKU_PREFIX}{plan['plan_id']}"
        line = order.line(sku)
        if line is None or not units.get(sku):
            return {}
        stored = self._terms.read(order.customer_id).term(order.order_id)
        if stored is not None and stored.status is TermStatus.REFUNDED:
            return {sku: 0}
        if stored is not None and stored.term.length_ms > 0:
            segments = stored.term.segments
        else:
            start = order.paid_at_ms or now_ms
            segments = ((start, start + int(plan["days"]) * DAY_MS),)
        ports = self._coupons()
        templates = [str(t) for t in plan.get("welcome_coupon_template_ids") or ()]
        statuses = welcome_statuses(welcome_coupon_ids(order.order_id, templates, ports), ports)
        used = benefit_used(statuses, self._orders_since(order, segments[0][0]))
        quote = refund_for_segments(
            line.payable_fen, segments, now_ms, int(plan.get("refund_full_within_days") or 0), used
        )
        return {sku: quote.amount_fen}

    def _orders_since(self, membership: Order, since_ms: int) -> int:
        """The member's other paid orders placed since `since_ms` (newest first, a few pages)."""
        found, cursor = 0, None
        for _ in range(ORDER_PAGES):
            page, cursor = self._orders.list_for_customer(membership.customer_id, 50, cursor)
            for order in page:
                if order.created_at_ms < since_ms:
                    return found
                if order.order_id != membership.order_id and order.membership is None and order.status not in UNPAID:
                    found += 1
            if cursor is None:
                break
        return found
