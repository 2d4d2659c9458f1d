"""What finance does with money to pay back (docs/payments.md, "Refunds"; docs/operations.md): the
refunds WeChat Pay ended ABNORMAL, CLOSED or REFUSED, listed; and a payment recorded NEEDS_REFUND marked
REFUNDED once finance paid it back by hand (the HMAC webhook's payments, which no provider call can
refund, and WeChat Pay's when its refund did not go through). No WeChat Pay call here: this works in
every stage."""

from __future__ import annotations

from typing import Any

from shared.kernel.clock import Clock
from shared.kernel.errors import Conflict, InvalidTransition, NotFound
from shared.kernel.events import DomainEvent
from shared.kernel.identity import Principal
from shared.payments.model import NEEDS_ATTENTION, ProviderRefund, out_refund_no_of_payment
from shared.payments.ports import ProviderRefundStore, RecordedPayment, RecordedPayments
from shared.platform.observability import count, logger

NEEDS_REFUND = "NEEDS_REFUND"
WECHATPAY = "wechatpay"


class RefundInProgress(Conflict):
    """WeChat Pay is refunding this payment (`details.out_refund_no`): marking it by hand would pay it twice."""

    code = "REFUND_IN_PROGRESS"


class PaymentRefunds:
    def __init__(self, payments: RecordedPayments, refunds: ProviderRefundStore, clock: Clock) -> None:
        self._payments = payments
        self._refunds = refunds
        self._clock = clock

    def needing_attention(
        self, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[ProviderRefund], dict[str, Any] | None]:
        """WeChat Pay refunds that did not reach the payer (ABNORMAL, CLOSED) or were refused, newest first."""
        return self._refunds.needing_attention(limit, cursor)

    def mark_refunded(self, transaction_id: str, order_id: str, who: Principal, note: str | None) -> RecordedPayment:
        """NEEDS_REFUND -> REFUNDED, once (conditional), by whom and when; it leaves finance's list.
        Refused (409) while WeChat Pay is refunding the same payment, or once it did."""
        payment = self._payments.recorded(transaction_id, order_id)
        if payment is None:
            raise NotFound("no such payment", transaction_id=transaction_id, order_id=order_id)
        if payment.status != NEEDS_REFUND:
            raise InvalidTransition(f"the payment is {payment.status}", status=payment.status)
        if payment.provider == WECHATPAY and not payment.clash:
            number = out_refund_no_of_payment(transaction_id, order_id)
            refund = self._refunds.get(order_id, number)
            if refund is not None and refund.status not in NEEDS_ATTENTION:
                raise RefundInProgress(
                    "WeChat Pay is refunding this payment", out_refund_no=number, status=refund.status
                )
        marked = self._refunds.mark_payment_refunded(payment, who.sub, self._clock.now_ms(), note)
        if marked is None:
            raise InvalidTransition("the payment was marked meanwhile", transaction_id=transaction_id)
        logger.info("payment marked refunded", extra={"transaction_id": transaction_id, "by": who.sub})
        count("PaymentsMarkedRefunded")
        return marked


class NoProviderRefunds:
    """The payments consumer of a stage whose provider is the HMAC webhook: no provider to call, so an
    issued refund and a payment recorded for refund are finance's to pay back (and mark, above)."""

    name = "payments"

    def handle(self, event: DomainEvent) -> None:
        return None

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        return None
