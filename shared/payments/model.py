"""What a payment provider tells us once it has verified a notification, and the pure rules of a
WeChat Pay prepay and of a refund through WeChat Pay (docs/payments.md). No provider and no I/O here."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from shared.kernel.errors import Conflict, InvalidTransition, NotFound, RuleViolation, TemporarilyUnavailable


@dataclass(frozen=True)
class PaymentNotice:
    """A payment the provider vouches for: `amount_fen` is what the buyer paid for `order_id`."""

    order_id: str
    transaction_id: str
    amount_fen: int
    paid_at: str
    # Who took the money: a refund goes back through the same provider (docs/payments.md, "Refunds").
    provider: str = "hmac"


# The headers WeChat Pay signs its answers and callbacks with (lower case: HTTP header names are not).
TIMESTAMP, NONCE, SIGNATURE, SERIAL = (
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-signature",
    "wechatpay-serial",
)
SIGNATURE_HEADERS = (TIMESTAMP, NONCE, SIGNATURE, SERIAL)


class OrderNotPayable(Conflict):
    """Only a PENDING_PAYMENT order inside its payment window can be paid (`details.status`)."""

    code = "ORDER_NOT_PAYABLE"


class PayerChanged(Conflict):
    """The order's payment was started by another WeChat user (`openid`); WeChat Pay keeps the payer
    of an out_trade_no, so a second payer cannot take it over."""

    code = "PAYER_CHANGED"


class ProviderRefused(Conflict):
    """WeChat Pay refused the request (`details.provider_code`, e.g. ORDERPAID, ORDERCLOSED)."""

    code = "PAYMENT_PROVIDER_REFUSED"


class ProviderUnavailable(TemporarilyUnavailable):
    """WeChat Pay did not answer in time, answered 5xx or 429, or its answer did not verify."""

    code = "PAYMENT_PROVIDER_UNAVAILABLE"


class NotOurs(RuleViolation):
    """A verified WeChat Pay message for another merchant or app, or in a state we do not apply."""

    code = "NOT_OURS"


# -- out_trade_no ------------------------------------------------------------------------------------
# WeChat Pay's merchant order number: 6-32 of [0-9A-Za-z_|*-]. Our order ids are `o` + 32 hex
# digits (33 characters), so the `o` is dropped on the way out and put back on the way in.
_ORDER_ID = re.compile(r"o([0-9a-f]{32})")
_HEX_32 = re.compile(r"[0-9a-f]{32}")
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_|*-]{6,32}")


def out_trade_no(order_id: str) -> str:
    """The out_trade_no of an order (reversible: `order_id_of`)."""
    if match := _ORDER_ID.fullmatch(order_id):
        return match.group(1)
    if _OUT_TRADE_NO.fullmatch(order_id) and not _HEX_32.fullmatch(order_id):
        return order_id
    raise RuleViolation("this order id cannot be a WeChat Pay out_trade_no", order_id=order_id)


def order_id_of(trade_no: str) -> str:
    if _HEX_32.fullmatch(trade_no):
        return "o" + trade_no
    if _OUT_TRADE_NO.fullmatch(trade_no):
        return trade_no
    raise NotOurs("out_trade_no is not one of ours", out_trade_no=trade_no)


CHINA = timezone(timedelta(hours=8))


def china_time(epoch_ms: int) -> str:
    """RFC 3339 as WeChat Pay writes times: whole seconds, +08:00 (`2026-11-23T16:15:00+08:00`)."""
    return datetime.fromtimestamp(epoch_ms // 1000, UTC).astimezone(CHINA).isoformat()


# -- prepay --------------------------------------------------------------------------------------------
PENDING_PAYMENT = "PENDING_PAYMENT"
# A prepay_id is valid for two hours (WeChat Pay, JSAPI ordering); we stop handing one out a little
# before, so a customer never starts paying with one about to lapse.
PREPAY_VALID_MS = 2 * 3600 * 1000
PREPAY_MARGIN_MS = 10 * 60 * 1000


@dataclass(frozen=True)
class PayableOrder:
    """What a payment needs to know of an order (the ordering capability's order, passed in)."""

    order_id: str
    customer_id: str
    status: str
    total_fen: int
    expires_at_ms: int
    # Whether the order may pay commission (it credits someone, or its credit is decided at payment):
    # only then is its WeChat Pay transaction flagged for profit sharing (docs/payments.md).
    may_credit: bool = True

    def require_payable_by(self, customer_id: str, now_ms: int) -> None:
        """NotFound for another customer's order (ids of others' orders leak nothing); OrderNotPayable
        unless it is PENDING_PAYMENT inside its window; a rule violation for a total of nothing."""
        if self.customer_id != customer_id:
            raise NotFound("no such order", order_id=self.order_id)
        if self.status != PENDING_PAYMENT:
            raise OrderNotPayable("only an order waiting for payment can be paid", status=self.status)
        if now_ms >= self.expires_at_ms:
            raise OrderNotPayable("the order's payment window has passed", status="EXPIRED")
        if self.total_fen < 1:
            raise RuleViolation("the order's total is 0: there is nothing to pay", order_id=self.order_id)


@dataclass(frozen=True)
class Prepay:
    """A JSAPI prepay of an order, kept so the same order gets the same prepay while it is valid.
    `timestamp` and `nonce` are those of the `wx.requestPayment` parameters, kept with it so a repeat
    answers the very same parameters (the RSA signature over them is deterministic)."""

    order_id: str
    openid: str
    prepay_id: str
    created_at_ms: int
    timestamp: str
    nonce: str

    def usable_at(self, now_ms: int) -> bool:
        return now_ms < self.created_at_ms + PREPAY_VALID_MS - PREPAY_MARGIN_MS

    @property
    def package(self) -> str:
        return f"prepay_id={self.prepay_id}"


# -- refunds through WeChat Pay ------------------------------------------------------------------------
# A provider refund is the money going back: one per out_refund_no, which WeChat Pay keeps, so asking
# again with the same number refunds once. PENDING until WeChat Pay accepted it, PROCESSING until it
# settles; SUCCESS, ABNORMAL (the buyer's account refused it: finance acts) and CLOSED are WeChat Pay's
# ends; REFUSED is ours for a request WeChat Pay turned down for good (its code kept).
PENDING, PROCESSING, SUCCESS, ABNORMAL, CLOSED, REFUSED = (
    "PENDING",
    "PROCESSING",
    "SUCCESS",
    "ABNORMAL",
    "CLOSED",
    "REFUSED",
)
OPEN = frozenset({PENDING, PROCESSING})
NEEDS_ATTENTION = frozenset({ABNORMAL, CLOSED, REFUSED})
PROVIDER_STATUSES = frozenset({PROCESSING, SUCCESS, ABNORMAL, CLOSED})
FOR_REFUND, FOR_PAYMENT = "refund", "payment"  # what a provider refund pays back
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_|*@-]{1,64}")
# The first query of a refund still open: WeChat Pay's notification normally comes within a minute;
# later queries back off, doubling, up to an hour.
QUERY_AFTER_MS = 10 * 60 * 1000
QUERY_BACKOFF_CAP_MS = 3600 * 1000


def out_refund_no_of_refund(refund_id: str) -> str:
    """An order refund's out_refund_no is its refund id (`r` + 32 hex digits, derived from the
    request's key; `r` + 24 for refunds asked for before: inside WeChat Pay's 1-64 of
    [0-9A-Za-z_|*@-]), so every retry of one refund names the same WeChat Pay refund."""
    if not _OUT_REFUND_NO.fullmatch(refund_id):
        raise RuleViolation("this refund id cannot be a WeChat Pay out_refund_no", refund_id=refund_id)
    return refund_id


def out_refund_no_of_payment(transaction_id: str, order_id: str) -> str:
    """A payment recorded for refund (it paid no order) is refunded whole, once: its number is derived
    from the payment's key (transaction id, order), `p` + 40 hex digits of SHA-256, whatever their length."""
    digest = hashlib.sha256(f"payment:{transaction_id}:{order_id}".encode()).hexdigest()
    return "p" + digest[:40]


@dataclass(frozen=True)
class ProviderRefund:
    """Money going back to the payer through WeChat Pay: `refund_fen` of the `total_fen` that
    `transaction_id` paid. `source` says what it pays back: an issued order refund (`source_id` its
    refund id) or a payment recorded NEEDS_REFUND (`source_id` its transaction id). `version` makes
    every change conditional on the one read."""

    out_refund_no: str
    order_id: str
    source: str
    source_id: str
    transaction_id: str
    refund_fen: int
    total_fen: int
    reason: str
    status: str
    created_at_ms: int
    updated_at_ms: int
    next_check_ms: int
    version: int = 1
    provider_refund_id: str | None = None
    provider_code: str | None = None
    success_time: str | None = None
    received_account: str | None = None

    @classmethod
    def pending(
        cls,
        *,
        out_refund_no: str,
        order_id: str,
        source: str,
        source_id: str,
        transaction_id: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
        now_ms: int,
        query_after_ms: int = QUERY_AFTER_MS,
    ) -> ProviderRefund:
        if not 1 <= refund_fen <= total_fen:
            raise RuleViolation("a refund is 1 fen up to what was paid", refund_fen=refund_fen, total_fen=total_fen)
        return cls(
            out_refund_no=out_refund_no,
            order_id=order_id,
            source=source,
            source_id=source_id,
            transaction_id=transaction_id,
            refund_fen=refund_fen,
            total_fen=total_fen,
            reason=reason,
            status=PENDING,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            next_check_ms=now_ms + query_after_ms,
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def request_body(self, notify_url: str) -> dict[str, Any]:
        """`POST /v3/refund/domestic/refunds`: by transaction id, the amounts in fen (CNY)."""
        return {
            "transaction_id": self.transaction_id,
            "out_refund_no": self.out_refund_no,
            "reason": self.reason[:80],
            "notify_url": notify_url,
            "amount": {"refund": self.refund_fen, "total": self.total_fen, "currency": "CNY"},
        }

    def answered(self, state: RefundState, now_ms: int, query_after_ms: int = QUERY_AFTER_MS) -> ProviderRefund:
        """What WeChat Pay said of it (an answer, a query or a notification). An end is kept as it
        is: WeChat Pay never leaves SUCCESS, ABNORMAL or CLOSED, so a late PROCESSING changes nothing."""
        if not self.is_open:
            return self
        still_open = state.status == PROCESSING
        if still_open and self.status == PROCESSING:
            # Asked again and still processing: ask later, twice as long after as it has been open.
            wait = min(QUERY_BACKOFF_CAP_MS, max(query_after_ms, now_ms - self.created_at_ms))
        else:
            wait = query_after_ms
        return replace(
            self,
            status=state.status,
            updated_at_ms=now_ms,
            next_check_ms=now_ms + wait if still_open else self.next_check_ms,
            version=self.version + 1,
            provider_refund_id=state.provider_refund_id or self.provider_refund_id,
            success_time=state.success_time or self.success_time,
            received_account=state.received_account or self.received_account,
        )

    def reapplied(self, now_ms: int, query_after_ms: int = QUERY_AFTER_MS) -> ProviderRefund:
        """ABNORMAL -> PROCESSING: finance had WeChat Pay pay it to the merchant's bank card instead
        (发起异常退款); open again, so its notification or the query job settles it."""
        if self.status != ABNORMAL:
            raise InvalidTransition(
                "only an ABNORMAL refund can be applied for again", status=self.status, out_refund_no=self.out_refund_no
            )
        return replace(
            self,
            status=PROCESSING,
            provider_code="ABNORMAL_REFUND_APPLIED",
            updated_at_ms=now_ms,
            next_check_ms=now_ms + query_after_ms,
            version=self.version + 1,
        )

    def refused(self, provider_code: str, now_ms: int) -> ProviderRefund:
        return replace(
            self, status=REFUSED, provider_code=provider_code, updated_at_ms=now_ms, version=self.version + 1
        )

    def retry_later(self, now_ms: int, after_ms: int) -> ProviderRefund:
        return replace(self, next_check_ms=now_ms + after_ms, updated_at_ms=now_ms, version=self.version + 1)


@dataclass(frozen=True)
class RefundState:
    """A refund as WeChat Pay describes it: the answer to a refund request or a query (`status`), or
    the resource of a REFUND.* notification (`refund_status`)."""

    out_refund_no: str
    out_trade_no: str | None
    status: str
    provider_refund_id: str | None
    refund_fen: int | None
    success_time: str | None
    received_account: str | None
    mchid: str | None

    @classmethod
    def of(cls, resource: dict[str, Any]) -> RefundState:
        """NotOurs (422) for what is not a refund of WeChat Pay's four states with an out_refund_no."""
        status = resource.get("refund_status", resource.get("status"))
        number = resource.get("out_refund_no")
        if status not in PROVIDER_STATUSES or not isinstance(number, str) or not _OUT_REFUND_NO.fullmatch(number):
            raise NotOurs("not a WeChat Pay refund", status=str(status)[:32])
        amount = resource.get("amount")
        refund = amount.get("refund") if isinstance(amount, dict) else None
        trade_no = resource.get("out_trade_no")
        return cls(
            out_refund_no=number,
            out_trade_no=trade_no if isinstance(trade_no, str) else None,
            status=status,
            provider_refund_id=_text(resource.get("refund_id")),
            refund_fen=refund if type(refund) is int else None,
            success_time=_text(resource.get("success_time")),
            received_account=_text(resource.get("user_received_account")),
            mchid=_text(resource.get("mchid")),
        )


def _text(value: object) -> str | None:
    return value[:128] if isinstance(value, str) and value else None
