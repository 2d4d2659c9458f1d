"""Money back through WeChat Pay v3 (docs/payments.md, "Refunds" and "Closing"): an issued order refund
and a payment recorded NEEDS_REFUND become `POST /v3/refund/domestic/refunds`; REFUND.* notifications and
a query job settle them; an unpaid order that closed has its transaction closed so it cannot be paid.

Every step is safe to repeat. The out_refund_no is derived (model.out_refund_no_of_*), WeChat Pay keeps
one refund per number, and the provider refund is stored PENDING before it is asked for, so a request
that timed out (WeChat Pay may have refunded) is asked again with the same number and refunds once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.kernel.clock import Clock
from shared.kernel.errors import InvalidTransition, NotFound
from shared.kernel.events import DomainEvent, EventType
from shared.payments import wechatpay_crypto as crypto
from shared.payments.model import (
    FOR_PAYMENT,
    FOR_REFUND,
    NEEDS_ATTENTION,
    PENDING,
    QUERY_AFTER_MS,
    NotOurs,
    ProviderRefund,
    ProviderRefused,
    ProviderUnavailable,
    RefundState,
    order_id_of,
    out_refund_no_of_payment,
    out_refund_no_of_refund,
    out_trade_no,
)
from shared.payments.ports import PrepayStore, ProviderRefundStore, RecordedPayments
from shared.payments.versioned import write_decided
from shared.payments.wechatpay import PROVIDER, Notification, WeChatPayClient, WeChatPayMerchant
from shared.platform.observability import count, logger

REFUNDS_PATH = "/v3/refund/domestic/refunds"
CLOSE_PATH = "/v3/pay/transactions/out-trade-no/{}/close"
ABNORMAL_PATH = REFUNDS_PATH + "/{}/apply-abnormal-refund"
ABNORMAL_TO_MERCHANT = "MERCHANT_BANK_CARD"
ABNORMAL_TO_BUYER = "USER_BANK_CARD"
# Refusals a later try can get past: the merchant's balance (NOT_ENOUGH), WeChat Pay's rate limit and
# its own errors. Any other refusal (PARAM_ERROR, INVALID_REQUEST: more than is left, ...) is final.
RETRYABLE = frozenset({"NOT_ENOUGH", "FREQUENCY_LIMITED", "SYSTEM_ERROR", "SYSTEMERROR"})
# Closing a transaction that is paid, unknown (the customer never opened the payment) or closed:
# nothing left to close. A paid one's callback is recorded for refund by the payment path.
NOTHING_TO_CLOSE = frozenset({"ORDERPAID", "ORDER_NOT_EXIST", "ORDERNOTEXIST", "ORDER_CLOSED"})
ATTEMPTS = 4


@dataclass(frozen=True)
class BuyerBankCard:
    """The buyer's bank card an ABNORMAL refund is paid to (USER_BANK_CARD): WeChat Pay's bank code
    (`ICBC_DEBIT`, ...), the card number and the holder's name. Personal data: sent encrypted, never
    stored, logged or shown (`repr` leaves them out)."""

    bank_type: str
    account: str = field(repr=False)
    real_name: str = field(repr=False)


class WeChatPayRefunds:
    def __init__(
        self,
        merchant: WeChatPayMerchant,
        client: WeChatPayClient,
        refunds: ProviderRefundStore,
        payments: RecordedPayments,
        prepays: PrepayStore,
        clock: Clock,
        query_after_ms: int = QUERY_AFTER_MS,
    ) -> None:
        self._merchant = merchant
        self._client = client
        self._refunds = refunds
        self._payments = payments
        self._prepays = prepays
        self._clock = clock
        self._query_after_ms = query_after_ms

    # -- starting ------------------------------------------------------------------------------
    def refund_issued(self, payload: dict[str, Any]) -> ProviderRefund | None:
        """An issued order refund of an order WeChat Pay took the money of: its allocated amount, out of
        what the transaction paid. None for another provider's order or a refund of nothing."""
        order_id, refund_id, amount = str(payload["order_id"]), str(payload["refund_id"]), int(payload["amount_fen"])
        payment = self._payments.paying(order_id)
        if payment is None or payment.provider != PROVIDER or amount < 1:
            return None
        return self.start(
            ProviderRefund.pending(
                out_refund_no=out_refund_no_of_refund(refund_id),
                order_id=order_id,
                source=FOR_REFUND,
                source_id=refund_id,
                transaction_id=payment.transaction_id,
                refund_fen=amount,
                total_fen=payment.amount_fen,
                reason=f"Refund {refund_id}",
                now_ms=self._clock.now_ms(),
                query_after_ms=self._query_after_ms,
            )
        )

    def payment_needs_refund(self, payload: dict[str, Any]) -> ProviderRefund | None:
        """A WeChat Pay payment that paid no order (late, for a cancelled or already paid order, for no
        order of ours): all of it back. A clash (a transaction id already recorded for another order) is
        left to finance: refunding that transaction would take back the other order's payment."""
        transaction_id, order_id = str(payload["transaction_id"]), str(payload["order_id"])
        payment = self._payments.recorded(transaction_id, order_id)
        if payment is None or payment.provider != PROVIDER or payment.status != "NEEDS_REFUND":
            return None
        if payment.clash:
            logger.warning("clashing payment left to finance", extra={"transaction_id": transaction_id})
            count("WeChatPayRefundsLeftToFinance")
            return None
        return self.start(
            ProviderRefund.pending(
                out_refund_no=out_refund_no_of_payment(transaction_id, order_id),
                order_id=order_id,
                source=FOR_PAYMENT,
                source_id=transaction_id,
                transaction_id=transaction_id,
                refund_fen=payment.amount_fen,
                total_fen=payment.amount_fen,
                reason="Payment for an order that could not take it",
                now_ms=self._clock.now_ms(),
                query_after_ms=self._query_after_ms,
            )
        )

    def start(self, refund: ProviderRefund) -> ProviderRefund:
        """Store it PENDING (the first one stands) and ask WeChat Pay, unless it was asked and answered
        before. ProviderUnavailable (no answer, 5xx, a retryable refusal): ask again later, same number."""
        stored = self._refunds.open(refund)
        if stored.status != PENDING:
            return stored
        return self._request(stored)

    def _request(self, stored: ProviderRefund) -> ProviderRefund:
        try:
            answer = self._client.post(REFUNDS_PATH, stored.request_body(self._merchant.notify_url))
        except ProviderRefused as exc:
            code = str(exc.details.get("provider_code", ""))
            if code in RETRYABLE:
                raise ProviderUnavailable("WeChat Pay cannot refund now; retry", provider_code=code) from exc
            logger.error("WeChat Pay refused a refund", extra={"out_refund_no": stored.out_refund_no, "code": code})
            count("WeChatPayRefundsNeedingAttention")
            return self._write(stored, lambda current: current.refused(code, self._clock.now_ms()))
        state = RefundState.of(answer)
        if state.out_refund_no != stored.out_refund_no:
            raise ProviderUnavailable("WeChat Pay answered for another refund", out_refund_no=state.out_refund_no)
        count("WeChatPayRefundsRequested")
        return self._settle(stored, state)

    # -- settling ------------------------------------------------------------------------------
    def notified(self, notification: Notification) -> str:
        """A REFUND.* notification (verified and decrypted): "settled" (now or before), or "unknown" for
        a refund we never asked for (made in the merchant platform: nothing of ours to settle). NotOurs
        (422) for another merchant's, a state that contradicts the event, or another amount than ours."""
        resource = notification.resource
        if resource.get("mchid") != self._merchant.mchid:
            count("WeChatPayNotOurs")
            raise NotOurs("the refund is for another merchant", mchid=resource.get("mchid"))
        state = RefundState.of(resource)
        if notification.event_type != f"REFUND.{state.status}":
            raise NotOurs("the refund's state does not match its event", event_type=notification.event_type)
        current = self._refunds.get(order_id_of(state.out_trade_no or ""), state.out_refund_no)
        if current is None:
            logger.warning("a refund we did not ask for", extra={"out_refund_no": state.out_refund_no})
            count("WeChatPayUnknownRefunds")
            return "unknown"
        if state.refund_fen is not None and state.refund_fen != current.refund_fen:
            raise NotOurs("the refunded amount is not ours", expected_fen=current.refund_fen, got_fen=state.refund_fen)
        self._settle(current, state)
        return "settled"

    def settle_due(self, limit: int = 100) -> dict[str, int]:
        """The query job: each open refund whose check is due is asked about (`GET .../{out_refund_no}`);
        a PENDING one (its request never answered, its consumer gave up) is requested again with its
        number. Resumable: what is settled leaves the index, what is still open is pushed to a later check."""
        counts = {"checked": 0, "settled": 0, "still_open": 0, "unavailable": 0}
        for refund in self._refunds.due(self._clock.now_ms(), limit):
            counts["checked"] += 1
            try:
                if refund.status == PENDING:
                    after = self._request(refund)
                else:
                    answer = self._client.get(f"{REFUNDS_PATH}/{refund.out_refund_no}")
                    after = self._settle(refund, RefundState.of(answer))
            except (ProviderUnavailable, ProviderRefused, NotOurs) as exc:
                logger.warning("refund query failed", extra={"out_refund_no": refund.out_refund_no, "code": exc.code})
                counts["unavailable"] += 1
                self._write(refund, lambda current: current.retry_later(self._clock.now_ms(), self._query_after_ms))
                continue
            counts["still_open" if after.is_open else "settled"] += 1
        return counts

    def _settle(self, current: ProviderRefund, state: RefundState) -> ProviderRefund:
        settled = self._write(
            current, lambda latest: latest.answered(state, self._clock.now_ms(), self._query_after_ms)
        )
        if settled.status in NEEDS_ATTENTION and current.status not in NEEDS_ATTENTION:
            logger.error(
                "a refund needs finance", extra={"out_refund_no": settled.out_refund_no, "status": settled.status}
            )
            count("WeChatPayRefundsNeedingAttention")
        return settled

    def _write(self, current: ProviderRefund, decide: Any) -> ProviderRefund:
        """Apply `decide` to the latest refund, conditionally on its version; read again when another
        writer (the notification racing the answer, a second worker) changed it first."""
        return write_decided(
            current, decide, self._refunds.change, lambda r: self._refunds.get(r.order_id, r.out_refund_no), "refund"
        )

    # -- an ABNORMAL refund, paid another way ---------------------------------------------------------
    def apply_abnormal_refund(
        self, order_id: str, out_refund_no: str, to_buyer: BuyerBankCard | None = None
    ) -> ProviderRefund:
        """`POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund`: WeChat Pay pays an ABNORMAL
        refund to the merchant's bank card (`MERCHANT_BANK_CARD`, from where finance pays the buyer back),
        or, given `to_buyer`, to the buyer's bank card (`USER_BANK_CARD`, the number and name encrypted with
        WeChat Pay's key); the refund is PROCESSING again until its notification or the query job settles
        it. NotFound for no such refund; InvalidTransition unless it is ABNORMAL (a repeat after it was
        applied is one)."""
        current = self._refunds.get(order_id, out_refund_no)
        if current is None:
            raise NotFound("no such provider refund", order_id=order_id, out_refund_no=out_refund_no)
        current.reapplied(self._clock.now_ms(), self._query_after_ms)  # InvalidTransition unless ABNORMAL
        if not current.provider_refund_id:
            raise InvalidTransition("WeChat Pay's refund id is not known yet", out_refund_no=out_refund_no)
        body: dict[str, str] = {"out_refund_no": out_refund_no, "type": ABNORMAL_TO_MERCHANT}
        encrypted_with = None
        if to_buyer is not None:
            key = self._merchant.platform.for_encryption(self._clock.now_ms() / 1000)
            encrypted_with = key.serial
            body = {
                "out_refund_no": out_refund_no,
                "type": ABNORMAL_TO_BUYER,
                "bank_type": to_buyer.bank_type,
                "bank_account": crypto.encrypt_sensitive(key.public_key, to_buyer.account),
                "real_name": crypto.encrypt_sensitive(key.public_key, to_buyer.real_name),
            }
        try:
            path = ABNORMAL_PATH.format(current.provider_refund_id)
            answer = self._client.post(path, body, encrypted_with=encrypted_with)
        except ProviderRefused as exc:
            code = str(exc.details.get("provider_code", ""))
            if code in RETRYABLE:
                raise ProviderUnavailable("WeChat Pay cannot take it now; retry", provider_code=code) from exc
            raise
        count("WeChatPayAbnormalRefundsApplied")
        after = self._write(current, lambda latest: _reopened(latest, self._clock.now_ms(), self._query_after_ms))
        return self._settle(after, RefundState.of(answer))

    # -- closing -------------------------------------------------------------------------------
    def close(self, order_id: str) -> str:
        """Close the WeChat Pay transaction of an order that closed unpaid (cancelled, expired), so its
        prepay cannot be paid any more. "no_prepay" when WeChat Pay never heard of it; a transaction that
        is paid or gone already answers its refusal code (a payment that got in first is recorded for
        refund by the payment path)."""
        if self._prepays.get(order_id) is None:
            return "no_prepay"
        try:
            self._client.post(CLOSE_PATH.format(out_trade_no(order_id)), {"mchid": self._merchant.mchid})
        except ProviderRefused as exc:
            code = str(exc.details.get("provider_code", ""))
            if code in RETRYABLE:
                raise ProviderUnavailable("WeChat Pay cannot close now; retry", provider_code=code) from exc
            if code not in NOTHING_TO_CLOSE:
                logger.error("WeChat Pay refused to close", extra={"order_id": order_id, "code": code})
                count("WeChatPayClosesRefused")
            return code
        count("WeChatPayTransactionsClosed")
        return "closed"


def _reopened(latest: ProviderRefund, now_ms: int, query_after_ms: int) -> ProviderRefund:
    return latest.reapplied(now_ms, query_after_ms) if latest.status == "ABNORMAL" else latest


class WeChatPayConsumer:
    """The payments queue's consumer (infra/template.yaml, PaymentsQueue) where WeChat Pay is the provider.
    Idempotent per event: each effect is keyed by a derived out_refund_no or by the order's transaction."""

    name = "payments"

    def __init__(self, refunds: WeChatPayRefunds, before_refund: Callable[[str, str], object] | None = None) -> None:
        self._refunds = refunds
        # Profit sharing: the merchant receivers of a shared order give back what the refund clawed
        # back from them before the refund is asked for (it raises to retry while that is not done).
        self._before_refund = before_refund

    def handle(self, event: DomainEvent) -> None:
        if event.type is EventType.REFUND_ISSUED:
            if self._before_refund is not None:
                self._before_refund(str(event.payload["order_id"]), str(event.payload["refund_id"]))
            self._refunds.refund_issued(event.payload)
        elif event.type is EventType.PAYMENT_NEEDS_REFUND:
            self._refunds.payment_needs_refund(event.payload)
        elif event.type in (EventType.ORDER_CANCELLED, EventType.ORDER_EXPIRED):
            self._refunds.close(str(event.payload["order_id"]))

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        # A refund given up on is still PENDING in the table: the query job asks WeChat Pay again.
        logger.error("payments consumer gave up", extra={"event_type": str(event.type), "reason": reason})
        count("WeChatPayCallsGivenUp")
