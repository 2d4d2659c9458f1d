"""Who hears about what: the decision table from an event to its addressees and templates.

| event | customer | staff of the fulfilling store | merchant admins |
|---|---|---|---|
| OrderPlaced | OrderPlaced | | |
| OrderPaid | OrderPaid | StoreOrderPaid, if a store fulfils it | |
| OrderCancelled / OrderExpired | same name | | |
| OrderFulfilled | OrderShipped or OrderReadyForPickup (payload `how`) | | |
| RefundIssued | RefundIssued | | |
| PaymentNeedsRefund | PaymentNeedsRefund | | PaymentNeedsRefundAdmin |
| LowStock | | LowStock, if the location is a store | LowStock |
| CouponExpiring | CouponExpiring | | |
| MembershipExpiring | MembershipExpiring | | |
| MembershipExpired | MembershipExpired | | |
| OrderCompleted | (nothing: not routed here) | | |

"The fulfilling store" is the order's `store_id` (the location holding its stock): a store for
pickup, ship-from-store and same-city orders; the warehouse `WH` has no store staff to tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.inventory.locations import WAREHOUSE
from shared.kernel.events import DomainEvent, EventType


class Audience(StrEnum):
    CUSTOMER = "customer"  # target: the customer's id (the JWT sub)
    STORE_STAFF = "store"  # target: the store id; everyone who registered as staff of it
    ADMINS = "admins"  # every merchant admin who registered contact details


@dataclass(frozen=True)
class Addressee:
    audience: Audience
    target: str
    template: str


_CUSTOMER_TEMPLATES = {
    EventType.ORDER_PLACED: "OrderPlaced",
    EventType.ORDER_PAID: "OrderPaid",
    EventType.ORDER_CANCELLED: "OrderCancelled",
    EventType.ORDER_EXPIRED: "OrderExpired",
    EventType.REFUND_ISSUED: "RefundIssued",
    EventType.PAYMENT_NEEDS_REFUND: "PaymentNeedsRefund",
    EventType.COUPON_EXPIRING: "CouponExpiring",
    EventType.MEMBERSHIP_EXPIRING: "MembershipExpiring",
    EventType.MEMBERSHIP_EXPIRED: "MembershipExpired",
}


def plan(event: DomainEvent) -> list[Addressee]:
    payload = event.payload
    found: list[Addressee] = []
    customer = str(payload.get("customer_id") or "")
    if event.type in _CUSTOMER_TEMPLATES and customer:
        found.append(Addressee(Audience.CUSTOMER, customer, _CUSTOMER_TEMPLATES[event.type]))
    if event.type is EventType.ORDER_FULFILLED and customer:
        template = "OrderReadyForPickup" if payload.get("how") == "ready_for_pickup" else "OrderShipped"
        found.append(Addressee(Audience.CUSTOMER, customer, template))
    store = str(payload.get("store_id") or "")
    if event.type is EventType.ORDER_PAID and store and store != WAREHOUSE:
        found.append(Addressee(Audience.STORE_STAFF, store, "StoreOrderPaid"))
    if event.type is EventType.PAYMENT_NEEDS_REFUND:
        found.append(Addressee(Audience.ADMINS, "", "PaymentNeedsRefundAdmin"))
    if event.type is EventType.LOW_STOCK:
        location = str(payload.get("location") or "")
        if location and location != WAREHOUSE:
            found.append(Addressee(Audience.STORE_STAFF, location, "LowStock"))
        found.append(Addressee(Audience.ADMINS, "", "LowStock"))
    return found
