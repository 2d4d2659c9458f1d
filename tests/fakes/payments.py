"""In-memory payments ports (shared.payments.ports) and a WeChat Pay merchant wired to the local WeChat
Pay (infra/local/wechatpay_server.py) in-process. `FakePrepays` keeps the rule of
`shared.data.stores.payments.DynamoPrepays` (tests/contract/test_payments_ports.py runs both)."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from functools import cache

from infra.local.wechatpay_server import InProcessTransport, LocalWeChatPay, WeChatPayKeys
from shared.kernel.clock import FakeClock
from shared.kernel.errors import DomainError
from shared.payments.model import FOR_REFUND, NEEDS_ATTENTION, PayableOrder, PaymentNotice, Prepay, ProviderRefund
from shared.payments.ports import RecordedPayment
from shared.payments.provider_refunds import PaymentRefunds
from shared.payments.wechatpay import WeChatPayClient, WeChatPayments, WeChatPayMerchant
from shared.payments.wechatpay_refunds import WeChatPayRefunds
from shared.web.problems import status_for

NOTIFY_URL = "https://shop.example.com/payments/wechatpay/notify"
API_BASE = "https://api.mch.weixin.qq.com"


class FakePrepays:
    def __init__(self) -> None:
        self.items: dict[str, Prepay] = {}
        self._lock = threading.Lock()

    def get(self, order_id: str) -> Prepay | None:
        return self.items.get(order_id)

    def keep(self, prepay: Prepay, replacing: Prepay | None) -> Prepay:
        with self._lock:
            stored = self.items.get(prepay.order_id)
            if (stored is None) != (replacing is None) or (
                stored is not None and replacing is not None and stored.created_at_ms != replacing.created_at_ms
            ):
                return stored or prepay
            self.items[prepay.order_id] = prepay
            return prepay


@dataclass
class FakePayables:
    orders: dict[str, PayableOrder] = field(default_factory=dict)

    def get(self, order_id: str) -> PayableOrder | None:
        return self.orders.get(order_id)


@dataclass
class RecordedPayments:
    applied: list[PaymentNotice] = field(default_factory=list)

    def __call__(self, notice: PaymentNotice) -> object:
        self.applied.append(notice)
        return notice


@cache
def keys() -> WeChatPayKeys:
    """One set per test session: generating two RSA keys takes a moment."""
    return WeChatPayKeys.generate()


def merchant(mode: str = "public_key", the_keys: WeChatPayKeys | None = None) -> WeChatPayMerchant:
    k = the_keys or keys()
    settings = k.api_settings(API_BASE, NOTIFY_URL, mode)
    return WeChatPayMerchant.load(
        appid=k.appid,
        mchid=k.mchid,
        merchant_serial=k.merchant_serial,
        private_key_pem=settings["WECHATPAY_PRIVATE_KEY"],
        apiv3_key=k.apiv3_key,
        public_key_id=settings.get("WECHATPAY_PUBLIC_KEY_ID"),
        public_key_pem=settings.get("WECHATPAY_PUBLIC_KEY"),
        certificates_pem=settings.get("WECHATPAY_PLATFORM_CERTIFICATES"),
        notify_url=NOTIFY_URL,
        api_base=API_BASE,
    )


@dataclass
class WeChatPayWorld:
    """The payments use cases over fakes, talking to a local WeChat Pay in-process, on one FakeClock."""

    clock: FakeClock
    wechatpay: LocalWeChatPay
    transport: InProcessTransport
    payables: FakePayables
    prepays: FakePrepays
    applied: RecordedPayments
    payments: WeChatPayments

    @classmethod
    def build(cls, mode: str = "public_key") -> WeChatPayWorld:
        clock = FakeClock(now_ms=time.time_ns() // 1_000_000)  # inside the certificate's validity
        wechatpay = LocalWeChatPay(keys(), mode=mode, clock=lambda: clock.now_ms() / 1000)
        the_merchant = merchant(mode)
        payables, prepays, applied = FakePayables(), FakePrepays(), RecordedPayments()
        transport = wechatpay.transport()
        client = WeChatPayClient(the_merchant, transport, clock)
        payments = WeChatPayments(the_merchant, client, payables, prepays, applied, clock)
        return cls(clock, wechatpay, transport, payables, prepays, applied, payments)

    def deliver(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """A callback of the local WeChat Pay, answered as the notify route answers it."""
        try:
            self.payments.notified({k.lower(): v for k, v in headers.items()}, body)
        except DomainError as exc:
            return status_for(exc)
        return 204

    def order(self, order_id: str = "o" + "0" * 11 + "1" + "ab" * 10, total_fen: int = 16800, **changes: object):
        order = PayableOrder(
            order_id=order_id,
            customer_id=str(changes.get("customer_id", "c-1")),
            status=str(changes.get("status", "PENDING_PAYMENT")),
            total_fen=total_fen,
            expires_at_ms=int(changes.get("expires_at_ms", self.clock.now_ms() + 900_000)),  # type: ignore[call-overload]
            may_credit=bool(changes.get("may_credit", True)),
        )
        self.payables.orders[order_id] = order
        return order


# -- refunds through WeChat Pay (shared/payments/wechatpay_refunds.py) -------------------------------
class FakeProviderRefunds:
    """The rule of `shared.data.stores.payments.DynamoProviderRefunds`: a refund per (order,
    out_refund_no), each change conditional on its version, with its mark on what it pays back."""

    def __init__(self, payments: FakeRecordedPayments) -> None:
        self.items: dict[tuple[str, str], ProviderRefund] = {}
        self.payout_status: dict[tuple[str, str], str] = {}  # (order id, refund id) -> status
        self.payments = payments
        self._lock = threading.Lock()

    def get(self, order_id: str, out_refund_no: str) -> ProviderRefund | None:
        return self.items.get((order_id, out_refund_no))

    def open(self, refund: ProviderRefund) -> ProviderRefund:
        with self._lock:
            return self.items.setdefault((refund.order_id, refund.out_refund_no), refund)

    def change(self, before: ProviderRefund, after: ProviderRefund) -> ProviderRefund | None:
        with self._lock:
            key = (before.order_id, before.out_refund_no)
            if key not in self.items or self.items[key].version != before.version:
                return None
            self.items[key] = after
            if after.status != before.status and after.source == FOR_REFUND:
                self.payout_status[(after.order_id, after.source_id)] = after.status
            elif after.status == "SUCCESS" and before.status != "SUCCESS":
                payment = self.payments.recorded(after.source_id, after.order_id)
                if payment is not None and payment.status == "NEEDS_REFUND":
                    by = f"wechatpay:{after.provider_refund_id or after.out_refund_no}"
                    self.payments.replace(replace(payment, status="REFUNDED", refunded_by=by))
            return after

    def due(self, now_ms: int, limit: int) -> list[ProviderRefund]:
        due = sorted((r for r in self.items.values() if r.is_open and r.next_check_ms <= now_ms), key=_check_order)
        return due[:limit]

    def needing_attention(self, limit: int, cursor: dict | None) -> tuple[list[ProviderRefund], dict | None]:
        found = sorted((r for r in self.items.values() if r.status in NEEDS_ATTENTION), key=_attention_order)
        found.reverse()
        start = int(cursor["at"]) if cursor else 0
        page = found[start : start + limit]
        return page, ({"at": start + limit} if start + limit < len(found) else None)

    def mark_payment_refunded(
        self, payment: RecordedPayment, by: str, at_ms: int, note: str | None
    ) -> RecordedPayment | None:
        with self._lock:
            stored = self.payments.recorded(payment.transaction_id, payment.order_id)
            if stored is None or stored.status != "NEEDS_REFUND":
                return None
            marked = replace(stored, status="REFUNDED", refunded_by=by, refunded_at_ms=at_ms, refund_note=note)
            self.payments.replace(marked)
            return marked


def _check_order(refund: ProviderRefund) -> tuple[int, str]:
    return refund.next_check_ms, refund.out_refund_no


def _attention_order(refund: ProviderRefund) -> tuple[int, str]:
    return refund.updated_at_ms, refund.out_refund_no


@dataclass
class FakeRecordedPayments:
    """What the order lifecycle recorded, keyed as the table keys it: (transaction id, order id)."""

    items: dict[tuple[str, str], RecordedPayment] = field(default_factory=dict)
    paid_by: dict[str, str] = field(default_factory=dict)  # order id -> the transaction that paid it

    def record(self, payment: RecordedPayment) -> RecordedPayment:
        self.items[(payment.transaction_id, payment.order_id)] = payment
        if payment.status == "APPLIED":
            self.paid_by[payment.order_id] = payment.transaction_id
        return payment

    def replace(self, payment: RecordedPayment) -> None:
        self.items[(payment.transaction_id, payment.order_id)] = payment

    def paying(self, order_id: str) -> RecordedPayment | None:
        transaction_id = self.paid_by.get(order_id)
        return None if transaction_id is None else self.recorded(transaction_id, order_id)

    def recorded(self, transaction_id: str, order_id: str) -> RecordedPayment | None:
        return self.items.get((transaction_id, order_id))


@dataclass
class WeChatPayRefundWorld:
    """Refunds and closes over fakes, against the local WeChat Pay in-process (settled when the test says),
    its REFUND.* callbacks delivered to the payments use cases."""

    base: WeChatPayWorld
    payments: FakeRecordedPayments
    refunds_store: FakeProviderRefunds
    refunds: WeChatPayRefunds
    finance: PaymentRefunds

    @classmethod
    def build(cls, query_after_ms: int = 600_000) -> WeChatPayRefundWorld:
        base = WeChatPayWorld.build()
        base.wechatpay.faults.refund_settle_s = None
        recorded = FakeRecordedPayments()
        store = FakeProviderRefunds(recorded)
        client = WeChatPayClient(merchant(), base.transport, base.clock)
        refunds = WeChatPayRefunds(
            merchant(), client, store, recorded, base.prepays, base.clock, query_after_ms=query_after_ms
        )
        base.payments = WeChatPayments(
            merchant(), client, base.payables, base.prepays, base.applied, base.clock, refunds.notified
        )
        base.wechatpay.post = base.deliver
        return cls(base, recorded, store, refunds, PaymentRefunds(recorded, store, base.clock))

    @property
    def wechatpay(self) -> LocalWeChatPay:
        return self.base.wechatpay

    @property
    def clock(self) -> FakeClock:
        return self.base.clock

    def paid_order(self, total_fen: int = 16800, order_id: str | None = None) -> RecordedPayment:
        """An order prepaid and paid at the local WeChat Pay, recorded APPLIED as the payment path would."""
        order = self.base.order(order_id or "o" + secrets.token_hex(16), total_fen=total_fen)
        self.base.payments.prepay(order.order_id, "c-1", "oOPENID")
        trade_no = order.order_id[1:]
        self.wechatpay.pay(trade_no, retry=False)
        transaction = self.wechatpay.transactions[trade_no]
        return self.payments.record(
            RecordedPayment(order.order_id, str(transaction.transaction_id), total_fen, "wechatpay", "APPLIED")
        )
