"""What the payment providers need from the outside.

`PaymentProvider.verify` turns a provider's HTTP notification into a `PaymentNotice` or raises (401
bad or stale signature, 400 / 422 bad body); nothing after `verify` knows which provider spoke. The
HMAC webhook and WeChat Pay's callback both implement it.

WeChat Pay also needs: the order to pay (`PayableOrders`, the ordering capability's order passed in),
where its prepays are kept (`PrepayStore`, DynamoDB in production), the HTTPS transport to WeChat
Pay (`HttpTransport`: urllib, not AWS, so not the data layer) and the payment path that applies a
verified payment (`PaymentApplier`: the order lifecycle's, idempotent per transaction id).

Refunds through WeChat Pay need where provider refunds are kept (`ProviderRefundStore`: each change
conditional on the version read, and written with its mark on what it pays back), and the payments the
ordering capability recorded (`RecordedPayments`, passed in by the composition root).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.payments.model import PayableOrder, PaymentNotice, Prepay, ProviderRefund


class PaymentProvider(Protocol):
    def verify(self, headers: Mapping[str, str], raw_body: bytes, now_s: float) -> PaymentNotice: ...


class PaymentApplier(Protocol):
    def __call__(self, notice: PaymentNotice) -> object:
        """Apply a verified payment once per transaction id (a duplicate, late or mismatched one is
        recorded for refund or refused, never lost); raises the domain error of a refusal."""
        ...


class PayableOrders(Protocol):
    def get(self, order_id: str) -> PayableOrder | None: ...


class PrepayStore(Protocol):
    def get(self, order_id: str) -> Prepay | None: ...

    def keep(self, prepay: Prepay, replacing: Prepay | None) -> Prepay:
        """Store `prepay` if the stored prepay of its order is still `replacing` (None: there is none)
        and return it; when another request stored one first, return that one (nothing written)."""
        ...


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class HttpTransport(Protocol):
    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpReply:
        """One HTTPS exchange; any status is a reply. Raises ProviderUnavailable when there is no
        answer (timeout, refused or dropped connection)."""
        ...


@dataclass(frozen=True)
class RecordedPayment:
    """A payment the payment path recorded: APPLIED to `order_id`, NEEDS_REFUND or REFUNDED."""

    order_id: str
    transaction_id: str
    amount_fen: int
    provider: str
    status: str
    reason: str | None = None
    refunded_by: str | None = None
    refunded_at_ms: int | None = None
    refund_note: str | None = None
    recorded_at_ms: int = 0
    paid_at: str = ""
    clash: bool = False  # kept beside another order's payment of the same transaction id


class RecordedPayments(Protocol):
    def paying(self, order_id: str) -> RecordedPayment | None:
        """The payment that paid the order (None: not paid, or no such order)."""
        ...

    def recorded(self, transaction_id: str, order_id: str) -> RecordedPayment | None:
        """The payment recorded under this transaction id for this order (a clash is kept beside the
        first, under the order it named)."""
        ...


class ProviderRefundStore(Protocol):
    def get(self, order_id: str, out_refund_no: str) -> ProviderRefund | None: ...

    def open(self, refund: ProviderRefund) -> ProviderRefund:
        """Store a new PENDING refund unless one with its out_refund_no exists; return the stored one."""
        ...

    def change(self, before: ProviderRefund, after: ProviderRefund) -> ProviderRefund | None:
        """Write `after` if the stored one is still `before` (its version), with what it means for
        what it pays back: the order refund's payout status, or the payment REFUNDED once SUCCESS.
        None when another writer changed it first (nothing written)."""
        ...

    def due(self, now_ms: int, limit: int) -> list[ProviderRefund]:
        """Open refunds whose next check is due, earliest first (an index query)."""
        ...

    def needing_attention(
        self, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[ProviderRefund], dict[str, Any] | None]:
        """ABNORMAL, CLOSED and REFUSED refunds, newest first (an index query)."""
        ...

    def mark_payment_refunded(
        self, payment: RecordedPayment, by: str, at_ms: int, note: str | None
    ) -> RecordedPayment | None:
        """NEEDS_REFUND -> REFUNDED, conditionally; None if it is no longer NEEDS_REFUND."""
        ...
