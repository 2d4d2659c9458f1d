"""`POST /memberships`: a customer buys a paid-membership plan as an ORDER (issue 14 item 3;
docs/membership.md, "Buying a plan").

The order is an ordinary order to everything after it: placed through the ordering capability's
own `OrderPlacement.place` (the request's idempotency on the order, OrderPlaced derived from its
INSERT), paid through the normal payment path (`POST /orders/{id}/payments`, the HMAC notify,
`POST /dev/pay/{id}`), expired when left unpaid, refunded through `POST /orders/{id}/refunds`, and
counted by commission and reports. What makes it a membership order:

- one line, sku `MEMBERSHIP-<plan_id>`, qty 1, at the plan's `price_fen`: no stock is held (the
  holder takes no units), no shipping, no coupons, no points, no promotions;
- the guide bound to the customer is frozen onto the order as for any order (`CreditFacts`, read
  with checkout's own read);
- the plan's terms as bought are copied onto the order (`Order.membership`), so its OrderPaid
  carries them (`membership`: the welcome templates, the days, the refund window) and the line's
  `rebate_fen` (the plan's `referral_rebate_fen`), which the commission ledger books for the guide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.inventory.locations import WAREHOUSE
from shared.kernel.credited import CreditFacts
from shared.kernel.errors import NotFound
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.membership.paid import Plan, PlanStore
from shared.ordering.model import Order, Placement, PricedLine, Quote
from shared.ordering.placement import OrderPlacement
from shared.ordering.ports import OrderingUnitOfWork, OrderReads

# The order keeps a fulfilment (API.md's order shape needs one): there is nothing to deliver, so
# the record names no store and no address, and the order's location is the warehouse, whose stock
# is never touched (the holder below takes no units).
MEMBERSHIP_FULFILMENT: dict[str, Any] = {"type": "delivery"}


class NoUnits:
    """A membership order holds no stock: nothing to add to the order's transaction."""

    def hold(self, uow: OrderingUnitOfWork, order: Order) -> None:
        return None


NO_UNITS = NoUnits()


def terms_of(plan: Plan, store_id: str | None) -> dict[str, Any]:
    """What the order keeps of the plan (a plan edited later does not change a bought term)."""
    body = {k: v for k, v in plan.body().items() if k != "active"}
    return {"plan_id": plan.plan_id, "plan_version": plan.version, **body, "store_id": store_id}


def membership_quote(plan: Plan) -> Quote:
    line = PricedLine(plan.sku, 1, plan.price_fen, 0, plan.price_fen)
    return Quote(
        lines=(line,), subtotal_fen=plan.price_fen, discount_fen=0, shipping_fen=0, total_fen=plan.price_fen, applied=()
    )


class MembershipPurchase:
    def __init__(
        self,
        plans: PlanStore,
        orders: OrderPlacement,
        replays: OrderReads,
        credit_of: Callable[[str], CreditFacts | None],
        payment_window_s: int,
    ) -> None:
        self._plans = plans
        self._orders = orders
        self._replays = replays
        self._credit_of = credit_of
        self._payment_window_s = payment_window_s

    def buy(self, plan_id: str, store_id: str | None, customer_id: str, request: IdempotentRequest) -> StoredResponse:
        """201 and the PENDING_PAYMENT order (as `POST /orders` answers), or NotFound (404) for a
        plan that does not exist or is not for sale. A replay of the Idempotency-Key gets its first
        answer back (the order carries the request), even if the plan was withdrawn since."""
        plan = self._plans.get(plan_id)
        if plan is None or not plan.active:
            stored = self._replays.replay_placed(request) if request.client_supplied else None
            if stored is not None:
                return stored
            raise NotFound("no such membership plan for sale", plan_id=plan_id)
        placement = Placement(
            quote=membership_quote(plan),
            location=WAREHOUSE,
            fulfilment=dict(MEMBERSHIP_FULFILMENT),
            payment_window_s=self._payment_window_s,
            credit=self._credit_of(customer_id),
            membership=terms_of(plan, store_id),
        )
        return self._orders.place(placement, customer_id, request, holder=NO_UNITS)
