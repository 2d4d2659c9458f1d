"""In-memory payments ports (shared.payments.ports) and a WeChat Pay merchant wired to the local WeChat
Pay (infra/local/wechatpay_server.py) in-process. `FakePrepays` keeps the rule of
`shared.data.stores.payments.DynamoPrepays` (tests/contract/test_payments_ports.py runs both)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import cache

from infra.local.wechatpay_server import InProcessTransport, LocalWeChatPay, WeChatPayKeys
from shared.kernel.clock import FakeClock
from shared.payments.model import PayableOrder, PaymentNotice, Prepay
from shared.payments.wechatpay import WeChatPayClient, WeChatPayments, WeChatPayMerchant

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

    def order(self, order_id: str = "o" + "0" * 11 + "1" + "ab" * 10, total_fen: int = 16800, **changes: object):
        order = PayableOrder(
            order_id=order_id,
            customer_id=str(changes.get("customer_id", "c-1")),
            status=str(changes.get("status", "PENDING_PAYMENT")),
            total_fen=total_fen,
            expires_at_ms=int(changes.get("expires_at_ms", self.clock.now_ms() + 900_000)),  # type: ignore[call-overload]
        )
        self.payables.orders[order_id] = order
        return order
