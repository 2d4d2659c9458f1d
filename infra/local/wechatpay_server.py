"""A local WeChat Pay: a small server on 127.0.0.1 that speaks the APIv3 protocol for what the API uses
(docs/payments.md, "The local WeChat Pay"), with keys generated when it starts.

- It checks our requests as WeChat Pay does: the `WECHATPAY2-SHA256-RSA2048` Authorization header
  (our merchant id, our certificate serial, a timestamp within five minutes, the signature over
  `METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n` with our merchant key); 401 SIGN_ERROR otherwise.
- `POST /v3/pay/transactions/jsapi` keeps a transaction per out_trade_no and answers its prepay_id,
  signed with the platform key: the same parameters again get the same prepay_id, other parameters for
  the same out_trade_no 400 INVALID_REQUEST, a paid one 403 ORDERPAID.
  `GET /v3/pay/transactions/out-trade-no/{no}?mchid=` answers the transaction.
- Paying: `POST /local/pay/{out_trade_no or order id}` (or `python -m infra.local.wechatpay_server pay
  <order id>`) marks the transaction paid and sends the signed, encrypted TRANSACTION.SUCCESS callback
  to its notify_url; a delivery that is not answered 2xx is retried on WeChat Pay's schedule,
  compressed (`--retry-scale`). Options of the body make a delivery hostile, for tests: `times`,
  `timestamp_offset_s`, `sign_with_other_key`, `tamper_ciphertext`, `amount_delta`, `retry`.
- Refunds: `POST /v3/refund/domestic/refunds` keeps one refund per out_refund_no (the same number again
  answers the same refund and refunds nothing more; other parameters 400 INVALID_REQUEST; more than is
  left of the transaction 400 INVALID_REQUEST, as WeChat Pay does), answers it
  PROCESSING, settles it a moment later and sends the signed, encrypted REFUND.SUCCESS (or the
  outcome asked for) to its notify_url, retried like payment callbacks. `GET
  /v3/refund/domestic/refunds/{out_refund_no}` answers it.
- Closing: `POST /v3/pay/transactions/out-trade-no/{no}/close` closes an unpaid transaction (204): it
  can no longer be prepaid (400 ORDER_CLOSED) or paid; a paid one is 400 ORDERPAID.
- Faults, for tests: `POST /local/faults` `{"refund_answer_delay_s", "times", "refund_settle_s",
  "hold_refund_notifications", "refund_outcome"}`: answer the next `times` refund requests only after
  the delay (the refund is made at once: the client times out on a refund that happened), settle later,
  do not notify (the query job must find it), end ABNORMAL or CLOSED. `GET /local/refunds` lists the
  refunds and how many requests each got.

Keys: the merchant key (ours: the API signs with it, this server verifies with its public half), the
platform key (WeChat Pay's: it signs answers and callbacks) as a public key with a `PUB_KEY_ID_...`
and as a self-signed platform certificate, and the APIv3 key. `LocalWeChatPay` is the protocol without
HTTP, so tests can run it in-process (`transport()` is an `HttpTransport`).

    python -m infra.local.wechatpay_server serve --port 5300 --keys build/local/wechatpay
    python -m infra.local.wechatpay_server pay <order id> --url http://127.0.0.1:5300
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from infra.local.wechatpay_profit_sharing import LOCAL_SHARES, LocalProfitSharing, ShareFaults
from shared.kernel.errors import BadSignature, MalformedRequest, RuleViolation
from shared.payments import wechatpay_crypto as crypto
from shared.payments.model import ProviderUnavailable, china_time, out_trade_no
from shared.payments.ports import HttpReply

HOST = "127.0.0.1"
KEYS_DIR = Path(__file__).resolve().parents[2] / "build" / "local" / "wechatpay"
# WeChat Pay's retry intervals for a callback not answered 2xx, in seconds (15 s, 15 s, 30 s, 3 min,
# 10 min, 20 min, 30 min x3, 1 h, 3 h x3, 6 h x2); the local server divides them by `retry_scale`.
RETRY_SCHEDULE_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
PREPAY_VALID_S = 2 * 3600
JSAPI = "/v3/pay/transactions/jsapi"
QUERY = "/v3/pay/transactions/out-trade-no/"
REFUNDS = "/v3/refund/domestic/refunds"
ABNORMAL = "/apply-abnormal-refund"
PAY = "/local/pay/"
FAULTS = "/local/faults"
LOCAL_REFUNDS = "/local/refunds"
REFUND_OUTCOMES = ("SUCCESS", "ABNORMAL", "CLOSED")


# -- keys ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeChatPayKeys:
    appid: str
    mchid: str
    merchant_serial: str
    merchant_key: rsa.RSAPrivateKey
    platform_key: rsa.RSAPrivateKey
    public_key_id: str
    certificate: x509.Certificate
    apiv3_key: str

    @classmethod
    def generate(cls) -> WeChatPayKeys:
        platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            appid="wx" + secrets.token_hex(8),
            mchid=str(1_900_000_000 + secrets.randbelow(99_999_999)),
            merchant_serial=secrets.token_hex(20).upper(),
            merchant_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            platform_key=platform_key,
            public_key_id="PUB_KEY_ID_" + "".join(secrets.choice("0123456789") for _ in range(28)),
            certificate=_self_signed(platform_key),
            apiv3_key=secrets.token_hex(16),
        )

    @property
    def certificate_serial(self) -> str:
        return crypto.certificate_serial(self.certificate)

    def certificate_pem(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding

        return self.certificate.public_bytes(Encoding.PEM).decode()

    def write(self, directory: Path) -> Path:
        """The keys as files any client can use (`build/local/wechatpay/`, ignored by git)."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "merchant_key.pem": crypto.private_pem(self.merchant_key),
            "merchant_public_key.pem": crypto.public_pem(self.merchant_key.public_key()),
            "platform_key.pem": crypto.private_pem(self.platform_key),
            "platform_public_key.pem": crypto.public_pem(self.platform_key.public_key()),
            "platform_certificate.pem": self.certificate_pem(),
            "apiv3_key": self.apiv3_key,
        }
        for name, text in files.items():
            path = directory / name
            path.write_text(text)
            path.chmod(0o600)
        ids = {
            "appid": self.appid,
            "mchid": self.mchid,
            "merchant_serial": self.merchant_serial,
            "public_key_id": self.public_key_id,
            "certificate_serial": self.certificate_serial,
        }
        (directory / "ids.json").write_text(json.dumps(ids, indent=2))
        return directory

    @classmethod
    def read(cls, directory: Path) -> WeChatPayKeys:
        from cryptography.x509 import load_pem_x509_certificate

        ids = json.loads((directory / "ids.json").read_text())
        return cls(
            appid=ids["appid"],
            mchid=ids["mchid"],
            merchant_serial=ids["merchant_serial"],
            merchant_key=crypto.load_private_key((directory / "merchant_key.pem").read_text()),
            platform_key=crypto.load_private_key((directory / "platform_key.pem").read_text()),
            public_key_id=ids["public_key_id"],
            certificate=load_pem_x509_certificate((directory / "platform_certificate.pem").read_bytes()),
            apiv3_key=(directory / "apiv3_key").read_text().strip(),
        )

    def api_settings(self, api_base: str, notify_url: str, mode: str = "public_key") -> dict[str, str]:
        """The settings that make our API use this WeChat Pay (shared/platform/settings.py)."""
        settings = {
            "PAYMENT_PROVIDER": "wechatpay",
            "WECHATPAY_APPID": self.appid,
            "WECHATPAY_MCHID": self.mchid,
            "WECHATPAY_MERCHANT_SERIAL": self.merchant_serial,
            "WECHATPAY_PRIVATE_KEY": crypto.private_pem(self.merchant_key),
            "WECHATPAY_APIV3_KEY": self.apiv3_key,
            "WECHATPAY_NOTIFY_URL": notify_url,
            "WECHATPAY_API_BASE": api_base,
        }
        if mode == "certificate":
            settings["WECHATPAY_PLATFORM_CERTIFICATES"] = self.certificate_pem()
        else:
            settings["WECHATPAY_PUBLIC_KEY_ID"] = self.public_key_id
            settings["WECHATPAY_PUBLIC_KEY"] = crypto.public_pem(self.platform_key.public_key())
        return settings


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local WeChat Pay platform")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


# -- the protocol ---------------------------------------------------------------------------------------
@dataclass
class Transaction:
    out_trade_no: str
    params: dict[str, Any]  # the JSAPI body, as first given
    prepay_id: str
    prepaid_at_s: float
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    deliveries: list[int] = field(default_factory=list)  # status of each callback delivered (0: no answer)


@dataclass
class Refund:
    out_refund_no: str
    params: dict[str, Any]  # the refund request, as first given
    transaction: Transaction
    refund_id: str
    created_at_s: float
    status: str = "PROCESSING"
    success_time: str | None = None
    requests: int = 1  # refund requests that named this out_refund_no
    abnormal_applied: bool = False  # paid to a bank card after ABNORMAL: it ends SUCCESS
    deliveries: list[int] = field(default_factory=list)

    @property
    def refund_fen(self) -> int:
        return int(self.params["amount"]["refund"])


@dataclass
class RefundFaults:
    refund_answer_delay_s: float = 0.0
    times: int = 0  # refund requests still to answer late
    refund_settle_s: float | None = 0.3  # None: settled only when `settle_refunds()` is called
    hold_refund_notifications: bool = False
    refund_outcome: str = "SUCCESS"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Post = Callable[[str, dict[str, str], bytes], int]  # url, headers, body -> status (0: no answer)


class LocalWeChatPay:
    """WeChat Pay's side of the protocol, without HTTP. `mode` "public_key" signs answers and callbacks
    naming the public key id, "certificate" naming the platform certificate's serial."""

    def __init__(
        self,
        keys: WeChatPayKeys,
        mode: str = "public_key",
        clock: Callable[[], float] = time.time,
        post: Post | None = None,
        retry_scale: float = 0.01,
    ) -> None:
        self.keys = keys
        self.mode = mode
        self.clock = clock
        self.post = post or _urllib_post
        self.retry_scale = retry_scale
        self.transactions: dict[str, Transaction] = {}
        self.refunds: dict[str, Refund] = {}
        self.faults = RefundFaults()
        self.profit_sharing = LocalProfitSharing(self)
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, body) verified
        self.cards_paid: dict[str, tuple[str, str, str]] = {}  # ABNORMAL refunds paid to a buyer's card
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []

    @property
    def serial(self) -> str:
        return self.keys.public_key_id if self.mode == "public_key" else self.keys.certificate_serial

    # -- answering requests --------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        lowered = {k.lower(): v for k, v in headers.items()}
        if path.startswith(PAY) and method == "POST":
            return self._control_pay(path[len(PAY) :], body)
        if path == FAULTS and method == "POST":
            return self._control_faults(body)
        if method == "GET" and path in (LOCAL_REFUNDS, LOCAL_SHARES):
            summary = self.profit_sharing.summary() if path == LOCAL_SHARES else None
            return _plain(200, summary or [self.refund_summary(r) for r in self.refunds.values()])
        refusal = self._check_signature(method, path, lowered, body)
        if refusal is not None:
            return refusal
        route = urllib.parse.urlsplit(path).path
        if method == "POST" and route == JSAPI:
            return self._jsapi(body)
        if method == "POST" and route.startswith(QUERY) and route.endswith("/close"):
            return self._close(route[len(QUERY) : -len("/close")], body)
        if method == "GET" and route.startswith(QUERY):
            return self._query(route[len(QUERY) :])
        if route == REFUNDS or route.startswith(REFUNDS + "/"):
            return self._refunds_api(method, route, body, lowered)
        shared = (
            self.profit_sharing.route(method, path, body, lowered) if route.startswith("/v3/profitsharing/") else None
        )
        return shared or self._error(404, "RESOURCE_NOT_EXISTS", "no such API")

    def _check_signature(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        try:
            auth = crypto.parse_authorization(headers.get("authorization", ""))
        except BadSignature as exc:
            return self._error(401, "SIGN_ERROR", exc.message)
        if auth["mchid"] != self.keys.mchid or auth["serial_no"].upper() != self.keys.merchant_serial:
            return self._error(401, "SIGN_ERROR", "unknown merchant or certificate serial")
        if not auth["timestamp"].isdigit() or abs(self.clock() - int(auth["timestamp"])) > crypto.TOLERANCE_S:
            return self._error(401, "SIGN_ERROR", "timestamp out of range")
        message = crypto.request_message(method, path, auth["timestamp"], auth["nonce_str"], body)
        if not crypto.verify(self.keys.merchant_key.public_key(), message, auth["signature"]):
            return self._error(401, "SIGN_ERROR", "signature does not verify")
        self.requests.append((method, path, json.loads(body) if body else {}))
        return None

    def _jsapi(self, raw: bytes) -> Reply:
        try:
            body = json.loads(raw)
            total = body["amount"]["total"]
            openid = body["payer"]["openid"]
            trade_no = body["out_trade_no"]
            notify_url = body["notify_url"]
            dt.datetime.fromisoformat(body["time_expire"])
        except (ValueError, KeyError, TypeError):
            return self._error(400, "PARAM_ERROR", "missing or malformed parameters")
        if body.get("appid") != self.keys.appid or body.get("mchid") != self.keys.mchid:
            return self._error(400, "PARAM_ERROR", "appid and mchid do not match")
        if type(total) is not int or total < 1 or not openid or not notify_url or not 6 <= len(trade_no) <= 32:
            return self._error(400, "PARAM_ERROR", "amount.total, payer.openid, notify_url or out_trade_no")
        now = self.clock()
        with self._lock:
            known = self.transactions.get(trade_no)
            if known is not None and known.trade_state == "SUCCESS":
                return self._error(403, "ORDERPAID", "该订单已支付")
            if known is not None and known.trade_state == "CLOSED":
                return self._error(400, "ORDER_CLOSED", "订单已关闭")
            if known is not None and known.params != body:
                return self._error(400, "INVALID_REQUEST", "201 商户订单号重复")
            if known is None or now - known.prepaid_at_s > PREPAY_VALID_S:
                known = Transaction(trade_no, body, "wx" + secrets.token_hex(16), now)
                self.transactions[trade_no] = known
        return self.signed_reply(200, {"prepay_id": known.prepay_id})

    def _query(self, trade_no: str) -> Reply:
        known = self.transactions.get(trade_no)
        if known is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        return self.signed_reply(200, self.transaction_resource(known))

    def _control_pay(self, who: str, raw: bytes) -> Reply:
        options = json.loads(raw or b"{}")
        trade_no = who if who in self.transactions else _trade_no_of(who)
        if trade_no not in self.transactions:
            return Reply(404, {"content-type": "application/json"}, b'{"message": "no prepay for this order"}')
        if self.transactions[trade_no].trade_state == "CLOSED":
            return _plain(409, {"message": "the transaction is closed: it cannot be paid"})
        statuses = self.pay(trade_no, **options)
        known = self.transactions[trade_no]
        answer = {"out_trade_no": trade_no, "transaction_id": known.transaction_id, "deliveries": statuses}
        return Reply(200, {"content-type": "application/json"}, json.dumps(answer).encode())

    def signed_reply(self, status: int, body: Any) -> Reply:
        raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {"content-type": "application/json", "request-id": secrets.token_hex(16)}
        return Reply(status, {**headers, **self.signature_headers(raw)}, raw)

    def signature_headers(
        self, raw: bytes, *, timestamp: int | None = None, key: rsa.RSAPrivateKey | None = None
    ) -> dict[str, str]:
        stamp = str(int(self.clock()) if timestamp is None else timestamp)
        nonce = crypto.nonce_str()
        signature = crypto.sign(key or self.keys.platform_key, crypto.signed_message(stamp, nonce, raw))
        return {
            "wechatpay-timestamp": stamp,
            "wechatpay-nonce": nonce,
            "wechatpay-signature": signature,
            "wechatpay-serial": self.serial,
            "wechatpay-signature-type": crypto.SCHEMA,
        }

    def _error(self, status: int, code: str, message: str) -> Reply:
        return Reply(
            status, {"content-type": "application/json"}, json.dumps({"code": code, "message": message}).encode()
        )

    # -- paying and calling back ---------------------------------------------------------------
    def transaction_resource(self, known: Transaction, amount_delta: int = 0) -> dict[str, Any]:
        params = known.params
        total = params["amount"]["total"] + amount_delta
        resource: dict[str, Any] = {
            "appid": params["appid"],
            "mchid": params["mchid"],
            "out_trade_no": known.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": known.trade_state,
            "trade_state_desc": "支付成功" if known.trade_state == "SUCCESS" else "未支付",
            "bank_type": "OTHERS",
            "attach": "",
            "payer": {"openid": params["payer"]["openid"]},
            "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
        }
        if known.transaction_id:
            resource["transaction_id"] = known.transaction_id
            resource["success_time"] = known.success_time
        return resource

    def callback(
        self,
        trade_no: str,
        *,
        timestamp_offset_s: float = 0,
        sign_with_other_key: bool = False,
        tamper_ciphertext: bool = False,
        amount_delta: int = 0,
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body of the TRANSACTION.SUCCESS callback of a paid transaction, hostile as asked."""
        resource = self.transaction_resource(self.transactions[trade_no], amount_delta)
        return self.notification(
            resource,
            timestamp_offset_s=timestamp_offset_s,
            sign_with_other_key=sign_with_other_key,
            tamper_ciphertext=tamper_ciphertext,
        )

    def notification(
        self,
        resource: Mapping[str, Any],
        *,
        event_type: str = "TRANSACTION.SUCCESS",
        original_type: str = "transaction",
        timestamp_offset_s: float = 0,
        sign_with_other_key: bool = False,
        tamper_ciphertext: bool = False,
    ) -> tuple[dict[str, str], bytes]:
        """A signed callback carrying `resource` encrypted with the APIv3 key."""
        plaintext = json.dumps(resource, ensure_ascii=False).encode()
        sealed = crypto.encrypt_resource(self.keys.apiv3_key, plaintext, original_type)
        if tamper_ciphertext:
            raw_sealed = bytearray(base64.b64decode(sealed["ciphertext"]))
            raw_sealed[0] ^= 0x01
            sealed["ciphertext"] = base64.b64encode(bytes(raw_sealed)).decode()
        body = {
            "id": secrets.token_hex(16),
            "create_time": china_time(int(self.clock() * 1000)),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功",
            "resource": {"original_type": original_type, **sealed},
        }
        raw = json.dumps(body, ensure_ascii=False).encode()
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048) if sign_with_other_key else None
        stamp = int(self.clock() + timestamp_offset_s)
        return {"content-type": "application/json", **self.signature_headers(raw, timestamp=stamp, key=other)}, raw

    def pay(
        self,
        trade_no: str,
        *,
        times: int = 1,
        retry: bool = True,
        timestamp_offset_s: float = 0,
        sign_with_other_key: bool = False,
        tamper_ciphertext: bool = False,
        amount_delta: int = 0,
    ) -> list[int]:
        """Pay the transaction (once: a second pay keeps its transaction id) and deliver its callback
        `times` times, hostile as asked; returns each delivery's status. When `retry` and the last
        delivery was not 2xx, an honest callback follows on the (compressed) retry schedule."""
        with self._lock:
            known = self.transactions[trade_no]
            if known.trade_state != "SUCCESS":
                known.trade_state = "SUCCESS"
                known.transaction_id = "42" + "".join(secrets.choice("0123456789") for _ in range(26))
                known.success_time = china_time(int(self.clock() * 1000))
        hostile = {
            "timestamp_offset_s": timestamp_offset_s,
            "sign_with_other_key": sign_with_other_key,
            "tamper_ciphertext": tamper_ciphertext,
            "amount_delta": amount_delta,
        }
        statuses = [self._deliver(known, **hostile) for _ in range(max(1, times))]
        if retry and not 200 <= statuses[-1] < 300:
            self._retry_later(lambda: self._deliver(known), 0)
        return statuses

    def _deliver(self, known: Transaction, **hostile: Any) -> int:
        headers, body = self.callback(known.out_trade_no, **hostile)
        status = self.post(known.params["notify_url"], headers, body)
        known.deliveries.append(status)
        return status

    def _retry_later(self, deliver: Callable[[], int], attempt: int) -> None:
        """Deliver again on WeChat Pay's (compressed) schedule until a 2xx or the schedule ends."""
        if attempt >= len(RETRY_SCHEDULE_S):
            return

        def again() -> None:
            if not 200 <= deliver() < 300:
                self._retry_later(deliver, attempt + 1)

        self._later(RETRY_SCHEDULE_S[attempt] * self.retry_scale, again)

    def _later(self, delay_s: float, action: Callable[[], object]) -> None:
        timer = threading.Timer(delay_s, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    # -- closing and refunds ---------------------------------------------------------------------
    def _close(self, trade_no: str, raw: bytes) -> Reply:
        try:
            mchid = json.loads(raw)["mchid"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, "PARAM_ERROR", "mchid is required")
        if mchid != self.keys.mchid:
            return self._error(400, "PARAM_ERROR", "mchid does not match")
        with self._lock:
            known = self.transactions.get(trade_no)
            if known is None:
                return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
            if known.trade_state == "SUCCESS":
                return self._error(400, "ORDERPAID", "订单已支付")
            known.trade_state = "CLOSED"
        return self.signed_reply(204, None)

    def _refund(self, raw: bytes) -> Reply:
        body = _refund_request(raw)
        if isinstance(body, Reply):
            return body
        number = body["out_refund_no"]
        with self._lock:
            known = self.refunds.get(number)
            if known is None:
                reply = self._new_refund(number, body)
            elif known.params != body:
                return self._error(400, "INVALID_REQUEST", "退款单号重复，参数与之前请求不一致")
            else:
                known.requests += 1  # the same refund again: answered as it is, nothing more refunded
                reply = self.signed_reply(200, self.refund_resource(known))
            late = reply.status == 200 and self.faults.times > 0 and self.faults.refund_answer_delay_s > 0
            if late:
                self.faults.times -= 1
        if late:
            time.sleep(self.faults.refund_answer_delay_s)  # the refund is made: only its answer is late
        return reply

    def _new_refund(self, number: str, body: dict[str, Any]) -> Reply:
        """Under the lock: refund out of what is left of the paid transaction, or WeChat Pay's refusal."""
        paid = self._transaction_of(body)
        if paid is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        total, refund = body["amount"]["total"], body["amount"]["refund"]
        if paid.trade_state != "SUCCESS" or total != paid.params["amount"]["total"]:
            return self._error(400, "INVALID_REQUEST", "订单未支付或订单金额不一致")
        refunded = self.refunded_fen(paid)
        if refund > total - refunded:
            return self._error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        if refund > self.unshared_fen(paid):
            # What the receivers of a share hold must be given back (return-orders) before it is refunded.
            return self._error(403, "NOT_ENOUGH", "分账接收方持有的资金需先回退")
        refund_id = "50" + "".join(secrets.choice("0123456789") for _ in range(28))
        known = Refund(number, body, paid, refund_id, self.clock())
        self.refunds[number] = known
        if self.faults.refund_settle_s is not None:
            self._later(self.faults.refund_settle_s, lambda: self.settle_refund(number))
        return self.signed_reply(200, self.refund_resource(known))

    def _refunds_api(self, method: str, route: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        if method == "POST" and route == REFUNDS:
            return self._refund(body)
        if method == "POST" and route.endswith(ABNORMAL):
            return self._apply_abnormal(route[len(REFUNDS) + 1 : -len(ABNORMAL)], body, headers)
        if method == "GET" and route != REFUNDS:
            return self._refund_query(route[len(REFUNDS) + 1 :])
        return self._error(404, "RESOURCE_NOT_EXISTS", "no such API")

    def _apply_abnormal(self, refund_id: str, raw: bytes, headers: Mapping[str, str]) -> Reply:
        """发起异常退款: an ABNORMAL refund paid to the merchant's bank card (MERCHANT_BANK_CARD) or to a bank
        card of the buyer (USER_BANK_CARD, with bank_type, and bank_account and real_name encrypted with the
        key `Wechatpay-Serial` names); PROCESSING, then settled SUCCESS and notified like any refund. What a
        buyer's card decrypted to is kept in `cards_paid` (number: (bank_type, account, name))."""
        try:
            body = json.loads(raw)
            number, kind = body["out_refund_no"], body["type"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, "PARAM_ERROR", "out_refund_no and type are required")
        if kind not in ("MERCHANT_BANK_CARD", "USER_BANK_CARD") or (
            kind == "USER_BANK_CARD" and not all(body.get(k) for k in ("bank_type", "bank_account", "real_name"))
        ):
            return self._error(400, "PARAM_ERROR", "type, or the bank card of USER_BANK_CARD")
        card = None
        if kind == "USER_BANK_CARD":
            if headers.get("wechatpay-serial") != self.serial:
                return self._error(
                    400, "PARAM_ERROR", "Wechatpay-Serial must name the key the fields are encrypted with"
                )
            try:
                card = (
                    str(body["bank_type"]),
                    crypto.decrypt_sensitive(self.keys.platform_key, str(body["bank_account"])),
                    crypto.decrypt_sensitive(self.keys.platform_key, str(body["real_name"])),
                )
            except MalformedRequest:
                return self._error(400, "PARAM_ERROR", "bank_account or real_name is not encrypted with our key")
        with self._lock:
            known = self.refunds.get(number)
            if known is None or known.refund_id != refund_id:
                return self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            if known.status != "ABNORMAL":
                return self._error(400, "INVALID_REQUEST", "退款单状态不是退款异常")
            known.status, known.abnormal_applied = "PROCESSING", True
            known.requests += 1
            if card is not None:
                self.cards_paid[number] = card
        if self.faults.refund_settle_s is not None:
            self._later(self.faults.refund_settle_s, lambda: self.settle_refund(number))
        return self.signed_reply(200, self.refund_resource(known))

    def refunded_fen(self, paid: Transaction) -> int:
        return sum(r.refund_fen for r in self.refunds.values() if r.transaction is paid and r.status != "CLOSED")

    def unshared_fen(self, paid: Transaction) -> int:
        """What of a paid transaction neither went back to the payer nor is held by a share's receivers."""
        return int(paid.params["amount"]["total"]) - self.refunded_fen(paid) - self.profit_sharing.held_fen(paid)

    def _transaction_of(self, body: Mapping[str, Any]) -> Transaction | None:
        if body.get("out_trade_no"):
            return self.transactions.get(str(body["out_trade_no"]))
        wanted = body.get("transaction_id")
        return next((t for t in self.transactions.values() if wanted and t.transaction_id == wanted), None)

    def _refund_query(self, number: str) -> Reply:
        known = self.refunds.get(number)
        if known is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return self.signed_reply(200, self.refund_resource(known))

    def refund_resource(self, known: Refund) -> dict[str, Any]:
        """A refund as the refund API answers it (`status`)."""
        paid = known.transaction
        resource: dict[str, Any] = {
            "refund_id": known.refund_id,
            "out_refund_no": known.out_refund_no,
            "transaction_id": paid.transaction_id,
            "out_trade_no": paid.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": china_time(int(known.created_at_s * 1000)),
            "status": known.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": paid.params["amount"]["total"],
                "refund": known.refund_fen,
                "payer_total": paid.params["amount"]["total"],
                "payer_refund": known.refund_fen,
                "settlement_refund": known.refund_fen,
                "settlement_total": paid.params["amount"]["total"],
                "discount_refund": 0,
                "currency": "CNY",
                "refund_fee": 0,
            },
        }
        if known.success_time:
            resource["success_time"] = known.success_time
        return resource

    def refund_notification_resource(self, known: Refund) -> dict[str, Any]:
        """A refund as its REFUND.* notification carries it (`refund_status`, the merchant id; no appid)."""
        answered = self.refund_resource(known)
        kept = ("transaction_id", "out_trade_no", "refund_id", "out_refund_no", "user_received_account", "success_time")
        resource = {name: answered[name] for name in kept if name in answered}
        amount = {name: answered["amount"][name] for name in ("total", "refund", "payer_total", "payer_refund")}
        return {"mchid": self.keys.mchid, **resource, "refund_status": known.status, "amount": amount}

    def settle_refund(self, number: str, outcome: str | None = None) -> list[int]:
        """End the refund (SUCCESS, or the outcome asked for) and notify its notify_url, retrying a
        delivery that is not answered 2xx; returns the first delivery's status ([] when held)."""
        with self._lock:
            known = self.refunds[number]
            if known.status != "PROCESSING":
                return []
            known.status = outcome or ("SUCCESS" if known.abnormal_applied else self.faults.refund_outcome)
            if known.status == "SUCCESS":
                known.success_time = china_time(int(self.clock() * 1000))
        if self.faults.hold_refund_notifications or not known.params.get("notify_url"):
            return []
        status = self._deliver_refund(known)
        if not 200 <= status < 300:
            self._retry_later(lambda: self._deliver_refund(known), 0)
        return [status]

    def settle_refunds(self) -> dict[str, list[int]]:
        """Every refund still PROCESSING, settled now (tests that run with `refund_settle_s=None`)."""
        return {number: self.settle_refund(number) for number in list(self.refunds)}

    def refund_callback(self, known: Refund) -> tuple[dict[str, str], bytes]:
        return self.notification(
            self.refund_notification_resource(known), event_type=f"REFUND.{known.status}", original_type="refund"
        )

    def _deliver_refund(self, known: Refund) -> int:
        headers, body = self.refund_callback(known)
        status = self.post(known.params["notify_url"], headers, body)
        known.deliveries.append(status)
        return status

    def refund_summary(self, known: Refund) -> dict[str, Any]:
        return {
            "out_refund_no": known.out_refund_no,
            "out_trade_no": known.transaction.out_trade_no,
            "refund_fen": known.refund_fen,
            "status": known.status,
            "requests": known.requests,
            "deliveries": known.deliveries,
        }

    def _control_faults(self, raw: bytes) -> Reply:
        try:
            options = json.loads(raw or b"{}")
            settle = options.get("refund_settle_s", self.faults.refund_settle_s)
            faults = RefundFaults(
                refund_answer_delay_s=float(options.get("refund_answer_delay_s", 0.0)),
                times=int(options.get("times", 1 if options.get("refund_answer_delay_s") else 0)),
                refund_settle_s=None if settle is None else float(settle),
                hold_refund_notifications=bool(options.get("hold_refund_notifications", False)),
                refund_outcome=str(options.get("refund_outcome", "SUCCESS")),
            )
        except (ValueError, TypeError, AttributeError):
            return _plain(400, {"message": "malformed faults"})
        if faults.refund_outcome not in REFUND_OUTCOMES:
            return _plain(400, {"message": f"refund_outcome is one of {', '.join(REFUND_OUTCOMES)}"})
        try:
            share_faults = ShareFaults.of(options)
        except (ValueError, TypeError) as exc:
            return _plain(400, {"message": str(exc)})
        self.faults = faults
        self.profit_sharing.faults = share_faults
        return _plain(200, {"faults": faults.__dict__, "profit_sharing": share_faults.__dict__})

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()

    # -- in-process use ---------------------------------------------------------------------------
    def transport(self) -> InProcessTransport:
        return InProcessTransport(self)


class InProcessTransport:
    """An `HttpTransport` that hands requests to a `LocalWeChatPay` directly (tests)."""

    def __init__(self, wechatpay: LocalWeChatPay) -> None:
        self.wechatpay = wechatpay
        self.fail_next = 0  # that many requests get no answer (ProviderUnavailable), as a timeout
        self.lose_next_answer = 0  # that many requests are handled, then their answer is lost (a timeout)

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpReply:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ProviderUnavailable("WeChat Pay did not answer", url=url)
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        reply = self.wechatpay.handle(method, path, headers, body or b"")
        if self.lose_next_answer > 0:
            self.lose_next_answer -= 1
            raise ProviderUnavailable("WeChat Pay's answer did not come in time", url=url)
        return HttpReply(reply.status, reply.headers, reply.body)


def _trade_no_of(order_id: str) -> str:
    try:
        return out_trade_no(order_id)
    except RuleViolation:
        return order_id


def _refund_request(raw: bytes) -> dict[str, Any] | Reply:
    """The refund request's body, or WeChat Pay's 400 PARAM_ERROR."""
    try:
        body = json.loads(raw)
        number, amount = body["out_refund_no"], body["amount"]
        refund, total, currency = amount["refund"], amount["total"], amount.get("currency", "CNY")
    except (ValueError, KeyError, TypeError, AttributeError):
        return _plain_error("missing or malformed parameters")
    if type(refund) is not int or type(total) is not int or refund < 1 or currency != "CNY":
        return _plain_error("amount.refund and amount.total are fen (CNY), at least 1")
    if not isinstance(number, str) or not 1 <= len(number) <= 64:
        return _plain_error("out_refund_no is 1-64 characters")
    if not body.get("transaction_id") and not body.get("out_trade_no"):
        return _plain_error("transaction_id or out_trade_no")
    return dict(body)


def _plain_error(message: str) -> Reply:
    return _plain(400, {"code": "PARAM_ERROR", "message": message})


def _plain(status: int, body: Any) -> Reply:
    return Reply(status, {"content-type": "application/json"}, json.dumps(body, ensure_ascii=False).encode())


def _urllib_post(url: str, headers: dict[str, str], body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return 0


# -- HTTP ----------------------------------------------------------------------------------------------
def serve(wechatpay: LocalWeChatPay, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = wechatpay.handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            print(f"wechatpay: {format % args}", flush=True)

    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a local WeChat Pay (APIv3)")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve on 127.0.0.1")
    run.add_argument("--port", type=int, default=5300)
    run.add_argument("--keys", type=Path, default=KEYS_DIR, help="read the keys from here (generated if absent)")
    run.add_argument("--mode", choices=("public_key", "certificate"), default="public_key")
    run.add_argument("--retry-scale", type=float, default=0.01, help="WeChat Pay's retry intervals times this")
    pay = commands.add_parser("pay", help="pay an order that has a prepay, as WeChat Pay would")
    pay.add_argument("order_id")
    pay.add_argument("--url", default=f"http://{HOST}:5300")
    pay.add_argument("--times", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "pay":
        body = json.dumps({"times": args.times}).encode()
        request = urllib.request.Request(f"{args.url}{PAY}{args.order_id}", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                print(response.read().decode())
        except urllib.error.HTTPError as exc:
            print(exc.read().decode(), file=sys.stderr)
            return 1
        return 0
    keys = WeChatPayKeys.read(args.keys) if (args.keys / "ids.json").exists() else WeChatPayKeys.generate()
    keys.write(args.keys)
    wechatpay = LocalWeChatPay(keys, mode=args.mode, retry_scale=args.retry_scale)
    server = serve(wechatpay, args.port)
    print(f"wechatpay: serving on http://{HOST}:{args.port} ({args.mode}), keys in {args.keys}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        wechatpay.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
