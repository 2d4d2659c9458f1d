"""Which consumer hears which event: the relay's routing table.

A consumer is named by its queue's logical id in `infra/template.yaml` (the keys of the
CONSUMER_QUEUES setting). To add a consumer: its queue and dead-letter queue and an event source
mapping in the template, a `@bp.lambda_function` built on `shared.messaging.consumers`, and a line here.
"""

from __future__ import annotations

from shared.kernel.events import EventType

SUBSCRIPTIONS: dict[str, frozenset[EventType]] = {
    # Customers hear about every step of their order except its quiet completion; store staff about
    # paid orders their store fulfils; staff and merchant admins about low stock (docs/notifications.md).
    "NotificationsQueue": frozenset(
        {
            EventType.ORDER_PLACED,
            EventType.ORDER_PAID,
            EventType.ORDER_CANCELLED,
            EventType.ORDER_EXPIRED,
            EventType.ORDER_FULFILLED,
            EventType.REFUND_ISSUED,
            EventType.PAYMENT_NEEDS_REFUND,
            EventType.LOW_STOCK,
            EventType.COUPON_EXPIRING,  # a day before a claimed coupon's window ends (docs/coupons.md)
            EventType.MEMBERSHIP_EXPIRING,  # N days before a paid membership ends (docs/membership.md)
            EventType.MEMBERSHIP_EXPIRED,  # a paid membership ran to its end: "renew" (docs/membership.md)
        }
    ),
    # The commission ledger (docs/commission.md): what earns, starts the after-sale window, claws back.
    "CommissionQueue": frozenset({EventType.ORDER_PAID, EventType.ORDER_COMPLETED, EventType.REFUND_ISSUED}),
    # Settlement runs fan out: one message per entry shard, each settled by the settlement worker.
    "SettlementQueue": frozenset({EventType.SETTLEMENT_SHARD_DUE}),
    # The report books (docs/commission.md, "Reports"): the payments side from the order events,
    # the ledger side from what the commission ledger announces it booked.
    "ReportingQueue": frozenset({EventType.ORDER_PAID, EventType.REFUND_ISSUED, EventType.COMMISSION_RECORDED}),
    # Members (docs/membership.md): the first order enrols, completions grow and earn, refunds give back;
    # an unpaid order cancelled or expired gives back the points it spent at checkout.
    "MembershipQueue": frozenset(
        {
            EventType.ORDER_PAID,
            EventType.ORDER_COMPLETED,
            EventType.REFUND_ISSUED,
            EventType.ORDER_CANCELLED,
            EventType.ORDER_EXPIRED,
        }
    ),
    # Money back through the provider (docs/payments.md, "Refunds"): refunds issued, payments that paid
    # no order, and unpaid orders whose transaction must be closed.
    "PaymentsQueue": frozenset(
        {
            EventType.REFUND_ISSUED,
            EventType.PAYMENT_NEEDS_REFUND,
            EventType.ORDER_CANCELLED,
            EventType.ORDER_EXPIRED,
        }
    ),
}


def queues_for(event_type: str, subscriptions: dict[str, frozenset[EventType]] = SUBSCRIPTIONS) -> list[str]:
    """The queues (logical ids) an event of this type goes to, in a stable order; [] if nobody listens."""
    return sorted(queue for queue, types in subscriptions.items() if event_type in types)
