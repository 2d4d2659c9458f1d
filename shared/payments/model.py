"""What a payment provider tells us once it has verified a notification, and the pure rules of a
WeChat Pay prepay (docs/payments.md). No provider and no I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from shared.kernel.errors import Conflict, NotFound, RuleViolation, TemporarilyUnavailable


@dataclass(frozen=True)
class PaymentNotice:
    """A payment the provider vouches for: `amount_fen` is what the buyer paid for `order_id`."""

    order_id: str
    transaction_id: str
    amount_fen: int
    paid_at: str


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
