"""WeChat Pay v3 for the mini-program (docs/payments.md): the JSAPI prepay and `wx.requestPayment`'s
parameters, and the payment callback, verified and applied through the same payment path as the
HMAC webhook's notices.

- `WeChatPayMerchant`: our identity and keys (loaded once per process), and the WeChat Pay keys we trust.
- `WeChatPayClient`: signed requests over an `HttpTransport`; a 2xx answer is used only once its
  signature verifies.
- `WeChatPayNotifications`: a `PaymentProvider`; a callback's signature, timestamp window and
  resource decrypted, then mchid, appid, trade_state and out_trade_no checked; the amount is checked
  against the order by the payment path (`AmountMismatch`).
- `WeChatPayments`: the use cases the routes call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.kernel.clock import Clock
from shared.kernel.errors import BadSignature, MalformedRequest, NotFound
from shared.kernel.json_body import parse_json
from shared.payments import wechatpay_crypto as crypto
from shared.payments.model import (
    NotOurs,
    PayableOrder,
    PayerChanged,
    PaymentNotice,
    Prepay,
    ProviderRefused,
    ProviderUnavailable,
    china_time,
    order_id_of,
    out_trade_no,
)
from shared.payments.ports import HttpTransport, PayableOrders, PaymentApplier, PrepayStore
from shared.platform.observability import count, logger

JSAPI_PATH = "/v3/pay/transactions/jsapi"
PAYMENT_EVENT = "TRANSACTION.SUCCESS"
PROVIDER = "wechatpay"
USER_AGENT = "retail-suite (WeChat Pay APIv3; cryptography)"


@dataclass(frozen=True)
class WeChatPayMerchant:
    appid: str
    mchid: str
    merchant_serial: str  # of our merchant API certificate: WeChat Pay finds our public key by it
    private_key: rsa.RSAPrivateKey
    apiv3_key: str
    platform: crypto.PlatformKeys
    public_key_id: str | None  # public-key mode: sent as Wechatpay-Serial with each request
    notify_url: str
    api_base: str
    description: str = "Order"
    profit_sharing: bool = False

    @classmethod
    def load(
        cls,
        *,
        appid: str,
        mchid: str,
        merchant_serial: str,
        private_key_pem: str,
        apiv3_key: str,
        public_key_id: str | None,
        public_key_pem: str | None,
        certificates_pem: str | None,
        notify_url: str,
        api_base: str,
        description: str = "Order",
        profit_sharing: bool = False,
        tolerance_s: int = crypto.TOLERANCE_S,
    ) -> WeChatPayMerchant:
        """Both modes at once are allowed (a merchant moving from certificates to the public key)."""
        keys = [crypto.PlatformKey.from_certificate(pem) for pem in crypto.certificates_in(certificates_pem or "")]
        if public_key_id and public_key_pem:
            keys.append(crypto.PlatformKey.from_public_key(public_key_id, public_key_pem))
        if not keys:
            raise ValueError("WeChat Pay needs its public key (id and PEM) or a platform certificate")
        crypto.apiv3_key_bytes(apiv3_key)
        return cls(
            appid=appid,
            mchid=mchid,
            merchant_serial=merchant_serial,
            private_key=crypto.load_private_key(private_key_pem),
            apiv3_key=apiv3_key,
            platform=crypto.PlatformKeys.of(keys, tolerance_s),
            public_key_id=public_key_id if public_key_pem else None,
            notify_url=notify_url,
            api_base=api_base.rstrip("/"),
            description=description,
            profit_sharing=profit_sharing,
        )


class WeChatPayClient:
    """Signed requests to WeChat Pay; answers verified before they are used."""

    def __init__(self, merchant: WeChatPayMerchant, transport: HttpTransport, clock: Clock) -> None:
        self._merchant = merchant
        self._transport = transport
        self._clock = clock

    def post(self, path: str, body: Mapping[str, Any], *, encrypted_with: str | None = None) -> dict[str, Any]:
        """`encrypted_with`: the serial of the WeChat Pay key sensitive fields of `body` are encrypted
        with, sent as `Wechatpay-Serial` (WeChat Pay decrypts with the key it names)."""
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return self._exchange("POST", path, raw, encrypted_with)

    def get(self, path: str) -> dict[str, Any]:
        return self._exchange("GET", path, None)

    def _exchange(self, method: str, path: str, body: bytes | None, serial: str | None = None) -> dict[str, Any]:
        merchant = self._merchant
        headers = {
            "Authorization": crypto.authorization(
                merchant.mchid,
                merchant.merchant_serial,
                merchant.private_key,
                method,
                path,
                body or b"",
                self._clock.now_ms() // 1000,
                crypto.nonce_str(),
            ),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if serial or merchant.public_key_id:
            headers["Wechatpay-Serial"] = serial or str(merchant.public_key_id)
        reply = self._transport.send(method, merchant.api_base + path, headers, body)
        if reply.status >= 500 or reply.status == 429:
            raise ProviderUnavailable("WeChat Pay is busy; retry", status=reply.status)
        if reply.status >= 400:
            error = _json_object(reply.body)
            count("WeChatPayRefused")
            raise ProviderRefused(
                str(error.get("message") or "WeChat Pay refused the request"),
                provider_code=str(error.get("code") or reply.status),
                status=reply.status,
            )
        try:
            merchant.platform.verify(reply.headers, reply.body, self._clock.now_ms() / 1000)
        except BadSignature as exc:
            # A 2xx answer without a valid signature is to be taken as forged (WeChat Pay, "Signature").
            logger.warning("WeChat Pay answer failed verification", extra={"path": path, "reason": exc.message})
            count("WeChatPayAnswersUnverified")
            raise ProviderUnavailable("WeChat Pay's answer did not verify", reason=exc.message) from exc
        return _json_object(reply.body)


class CallbackResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    algorithm: str = Field(min_length=1, max_length=32)
    ciphertext: str = Field(min_length=1, max_length=65536)
    nonce: str = Field(min_length=1, max_length=64)
    associated_data: str = Field(default="", max_length=256)
    original_type: str | None = Field(default=None, max_length=64)


class CallbackBody(BaseModel):
    """A WeChat Pay v3 callback as it arrives (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    event_type: str = Field(min_length=1, max_length=64)
    resource: CallbackResource
    create_time: str | None = Field(default=None, max_length=40)
    resource_type: str | None = Field(default=None, max_length=64)
    summary: str | None = Field(default=None, max_length=256)


@dataclass(frozen=True)
class Notification:
    """A verified, decrypted callback: `event_type` (TRANSACTION.SUCCESS, REFUND.SUCCESS, ...) and
    the plaintext resource."""

    event_id: str
    event_type: str
    resource: dict[str, Any]


class WeChatPayNotifications:
    """WeChat Pay's callbacks (a `PaymentProvider` for the payment ones)."""

    def __init__(self, merchant: WeChatPayMerchant) -> None:
        self._merchant = merchant

    def open(self, headers: Mapping[str, str], raw_body: bytes, now_s: float) -> Notification:
        """Signature (by a key we hold, within five minutes) first, then the body's shape, then the
        resource decrypted with the APIv3 key (GCM: altered ciphertext does not open)."""
        self._merchant.platform.verify(headers, raw_body, now_s)
        try:
            body = CallbackBody.model_validate(parse_json(raw_body, "notification body"))
        except ValidationError as exc:
            raise MalformedRequest("not a WeChat Pay notification", errors=_problems(exc)) from exc
        plaintext = crypto.decrypt_resource(self._merchant.apiv3_key, body.resource.model_dump())
        opened = parse_json(plaintext, "decrypted resource")
        if not isinstance(opened, dict):
            raise MalformedRequest("the decrypted resource is not a JSON object")
        return Notification(body.id, body.event_type, opened)

    def payment(self, notification: Notification) -> PaymentNotice:
        """The payment a TRANSACTION.SUCCESS callback reports, or NotOurs (422) when it is for another
        merchant or app, or not a success."""
        t = notification.resource
        merchant = self._merchant
        if t.get("mchid") != merchant.mchid or t.get("appid") != merchant.appid:
            count("WeChatPayNotOurs")
            raise NotOurs("the payment is for another merchant or app", mchid=t.get("mchid"), appid=t.get("appid"))
        if notification.event_type != PAYMENT_EVENT or t.get("trade_state") != "SUCCESS":
            raise NotOurs("only a successful payment is applied", trade_state=t.get("trade_state"))
        amount = t.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        currency = amount.get("currency", "CNY") if isinstance(amount, dict) else None
        transaction_id = t.get("transaction_id")
        if type(total) is not int or currency != "CNY" or not isinstance(transaction_id, str) or not transaction_id:
            raise NotOurs("the payment needs transaction_id and amount.total in fen (CNY)")
        order_id = order_id_of(str(t.get("out_trade_no", "")))
        return PaymentNotice(order_id, transaction_id, total, str(t.get("success_time") or ""), PROVIDER)

    def verify(self, headers: Mapping[str, str], raw_body: bytes, now_s: float) -> PaymentNotice:
        return self.payment(self.open(headers, raw_body, now_s))


class WeChatPayments:
    """Prepay for `wx.requestPayment`, and WeChat Pay's payment callbacks applied once."""

    def __init__(
        self,
        merchant: WeChatPayMerchant,
        client: WeChatPayClient,
        orders: PayableOrders,
        prepays: PrepayStore,
        apply_payment: PaymentApplier,
        clock: Clock,
        on_refund: Callable[[Notification], str] | None = None,
        on_paid: Callable[[str], object] | None = None,
    ) -> None:
        self._merchant = merchant
        self._on_refund = on_refund
        self._on_paid = on_paid  # profit sharing: the paid order's share starts WAITING
        self._client = client
        self._orders = orders
        self._prepays = prepays
        self._apply = apply_payment
        self._clock = clock
        self.notifications = WeChatPayNotifications(merchant)

    def prepay(self, order_id: str, customer_id: str, openid: str) -> dict[str, str]:
        """The parameters of `wx.requestPayment` for the customer's order. Idempotent: the same order
        gets the same prepay (and the same parameters) while the prepay is usable; a new JSAPI call
        only for the first request or after the prepay lapsed. 409 unless the order is PENDING_PAYMENT
        inside its window, or when another payer started it."""
        now = self._clock.now_ms()
        order = self._orders.get(order_id)
        if order is None:
            raise NotFound("no such order", order_id=order_id)
        order.require_payable_by(customer_id, now)
        stored = self._prepays.get(order_id)
        if stored is not None and stored.openid != openid:
            raise PayerChanged("another WeChat user started paying this order", order_id=order_id)
        if stored is not None and stored.usable_at(now):
            return self.payment_parameters(stored)
        answer = self._client.post(JSAPI_PATH, self.jsapi_body(order, openid))
        prepay_id = answer.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise ProviderUnavailable("WeChat Pay's prepay answer has no prepay_id")
        fresh = Prepay(order_id, openid, prepay_id, now, str(now // 1000), crypto.nonce_str())
        count("WeChatPayPrepays")
        return self.payment_parameters(self._prepays.keep(fresh, replacing=stored))

    def jsapi_body(self, order: PayableOrder, openid: str) -> dict[str, Any]:
        merchant = self._merchant
        body: dict[str, Any] = {
            "appid": merchant.appid,
            "mchid": merchant.mchid,
            "description": f"{merchant.description} {order.order_id}"[:127],
            "out_trade_no": out_trade_no(order.order_id),
            "time_expire": china_time(order.expires_at_ms),
            "notify_url": merchant.notify_url,
            "amount": {"total": order.total_fen, "currency": "CNY"},
            "payer": {"openid": openid},
        }
        if self.shares_profit(order):
            body["settle_info"] = {"profit_sharing": True}
        return body

    def shares_profit(self, order: PayableOrder) -> bool:
        """Whether the order's transaction is flagged for profit sharing (WeChat Pay then freezes its money
        until it is shared or unfrozen): with profit sharing on, for an order that may pay commission."""
        return self._merchant.profit_sharing and order.may_credit

    def payment_parameters(self, prepay: Prepay) -> dict[str, str]:
        merchant = self._merchant
        return {
            "timeStamp": prepay.timestamp,
            "nonceStr": prepay.nonce,
            "package": prepay.package,
            "signType": "RSA",
            "paySign": crypto.pay_sign(
                merchant.private_key, merchant.appid, prepay.timestamp, prepay.nonce, prepay.package
            ),
        }

    def notified(self, headers: Mapping[str, str], raw_body: bytes) -> str:
        """Apply a callback; returns what happened ("applied", "settled", "unknown" or "ignored"). Safe to
        repeat: the payment path applies a transaction id once, a refund settles once. Raises
        BadSignature (bad, stale or unknown-key signature; undecryptable resource), MalformedRequest,
        NotOurs, AmountMismatch, NotFound."""
        notification = self.notifications.open(headers, raw_body, self._clock.now_ms() / 1000)
        if notification.event_type.startswith("REFUND.") and self._on_refund is not None:
            return self._on_refund(notification)  # shared.payments.wechatpay_refunds: settles the refund
        if not notification.event_type.startswith("TRANSACTION."):
            logger.info("WeChat Pay notification ignored", extra={"event_type": notification.event_type})
            return "ignored"
        notice = self.notifications.payment(notification)
        self._apply(notice)
        if self._on_paid is not None and self._merchant.profit_sharing:
            # After the payment path (a late or duplicate payment is not the order's: no share), for an
            # order whose prepay was flagged (the same rule, on the same order). A failure here answers
            # 5xx: WeChat Pay calls back again, the payment applies once, the watch is retried.
            order = self._orders.get(notice.order_id)
            if order is not None and self.shares_profit(order):
                self._on_paid(notice.order_id)
        return "applied"


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in exc.errors(include_input=False)]


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
