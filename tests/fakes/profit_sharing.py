"""In-memory ports of profit sharing (shared/payments/profit_sharing.py) and a world that pays orders
at the local WeChat Pay in-process (flagged for profit sharing), refunds them, and shares them out."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field, replace

from shared.kernel.clock import FakeClock
from shared.payments import profit_sharing_model as ps
from shared.payments.ports import RecordedPayment
from shared.payments.profit_sharing import ProfitSharing
from shared.payments.wechatpay import WeChatPayClient, WeChatPayments
from shared.payments.wechatpay_refunds import WeChatPayRefunds
from tests.fakes.payments import FakeProviderRefunds, FakeRecordedPayments, WeChatPayWorld, merchant


class FakeProfitShares:
    """A share per (order, out_order_no), each change conditional on its version and, with `owed`, on
    the ledger entries it claims or releases (as the DynamoDB store's transaction: all or nothing)."""

    def __init__(self, owed: FakeOwed | None = None) -> None:
        self.items: dict[tuple[str, str], ps.ProfitShare] = {}
        self.writes = 0
        self.owed = owed
        self._lock = threading.Lock()

    def get(self, order_id: str, out_order_no: str) -> ps.ProfitShare | None:
        return self.items.get((order_id, out_order_no))

    def open(self, share: ps.ProfitShare) -> ps.ProfitShare:
        with self._lock:
            key = (share.order_id, share.out_order_no)
            if key not in self.items:
                self.writes += 1
            return self.items.setdefault(key, share)

    def change(self, before: ps.ProfitShare, after: ps.ProfitShare) -> ps.ProfitShare | None:
        with self._lock:
            key = (before.order_id, before.out_order_no)
            if key not in self.items or self.items[key].version != before.version:
                return None
            if self.owed is not None:
                self.owed.claim(after.order_id, after.claim, after.claimed_entries - before.claimed_entries)
                self.owed.release(after.order_id, after.claim, before.claimed_entries - after.claimed_entries)
            self.items[key] = after
            self.writes += 1
            return after

    def due(self, now_ms: int, limit: int) -> list[ps.ProfitShare]:
        due = [s for s in self.items.values() if s.is_open and (s.next_check_at_ms or 0) <= now_ms]
        return sorted(due, key=lambda s: (s.next_check_at_ms or 0, s.out_order_no))[:limit]

    def needing_attention(self, limit: int) -> list[ps.ProfitShare]:
        found = [s for s in self.items.values() if s.needs_attention]
        return sorted(found, key=lambda s: (s.updated_at_ms, s.out_order_no), reverse=True)[:limit]


@dataclass
class FakeOwed:
    """The commission ledger's entries per order, as the composition root maps them."""

    by_order: dict[str, list[ps.OwedEntry]] = field(default_factory=dict)

    def entries(self, order_id: str) -> list[ps.OwedEntry]:
        return list(self.by_order.get(order_id, []))

    def claim(self, order_id: str, claim: str, entry_ids: frozenset[str]) -> None:
        """Every entry SETTLEABLE and unclaimed, or EntryTaken and nothing changed."""
        held = self.by_order.get(order_id, [])
        if any(e.entry_id in entry_ids and (e.status != "SETTLEABLE" or e.payout is not None) for e in held):
            raise ps.EntryTaken(f"an entry of {order_id} moved meanwhile")
        if len({e.entry_id for e in held} & entry_ids) != len(entry_ids):
            raise ps.EntryTaken(f"an entry of {order_id} is not in the ledger")
        self.by_order[order_id] = [replace(e, payout=claim) if e.entry_id in entry_ids else e for e in held]

    def release(self, order_id: str, claim: str, entry_ids: frozenset[str]) -> None:
        held = self.by_order.get(order_id, [])
        if any(e.entry_id in entry_ids and e.payout != claim for e in held):
            raise ps.EntryTaken(f"an entry of {order_id} is claimed by another")
        self.by_order[order_id] = [replace(e, payout=None) if e.entry_id in entry_ids else e for e in held]

    def settle(self, order_id: str, run_id: str, entry_ids: set[str] | None = None) -> list[ps.OwedEntry]:
        """What a settlement run does to the order's unclaimed SETTLEABLE entries (all, or these)."""
        taken = []
        held = self.by_order.get(order_id, [])
        for n, e in enumerate(held):
            if e.status == "SETTLEABLE" and e.payout is None and (entry_ids is None or e.entry_id in entry_ids):
                held[n] = replace(e, status="SETTLED", payout=f"settlement#{run_id}")
                taken.append(held[n])
        return taken


@dataclass
class FakeAccounts:
    by_payee: dict[tuple[str, str], ps.ReceiverAccount] = field(default_factory=dict)

    def account(self, role: str, payee_id: str) -> ps.ReceiverAccount | None:
        return self.by_payee.get((role, payee_id))


ACCOUNTS = {
    ("dealer", "D001"): ps.ReceiverAccount(ps.MERCHANT_ID, "1900000201", "华东经销商贸易有限公司"),
    ("store", "S001"): ps.ReceiverAccount(ps.MERCHANT_ID, "1900000301", "上海静安茶叶店"),
    ("guide", "G001"): ps.ReceiverAccount(ps.PERSONAL_OPENID, "oGUIDE001"),
    ("distributor_1", "m-li"): ps.ReceiverAccount(ps.PERSONAL_OPENID, "oLI"),
    ("distributor_2", "m-li"): ps.ReceiverAccount(ps.PERSONAL_OPENID, "oLI"),
}


def earnings(status: str = "SETTLEABLE", **amounts: int) -> list[ps.OwedEntry]:
    """One earning per role=amount (dealer D001, store S001, guide G001, distributors m-li)."""
    payee = {"dealer": "D001", "store": "S001", "guide": "G001", "distributor_1": "m-li", "distributor_2": "m-li"}
    return [ps.OwedEntry(role, payee[role], fen, status, entry_id=f"P#SKU-1#{role}") for role, fen in amounts.items()]


@dataclass
class ProfitSharingWorld:
    base: WeChatPayWorld
    payments: FakeRecordedPayments
    shares: FakeProfitShares
    owed: FakeOwed
    accounts: FakeAccounts
    sharing: ProfitSharing
    refunds: WeChatPayRefunds

    @classmethod
    def build(cls, query_after_ms: int = 60_000, mode: str = "public_key") -> ProfitSharingWorld:
        base = WeChatPayWorld.build(mode)
        base.wechatpay.faults.refund_settle_s = None
        base.wechatpay.profit_sharing.faults.share_finish_s = None  # finished when the test says
        sharing_merchant = replace(merchant(mode), profit_sharing=True)
        client = WeChatPayClient(sharing_merchant, base.transport, base.clock)
        recorded = FakeRecordedPayments()
        refunds = WeChatPayRefunds(
            sharing_merchant, client, FakeProviderRefunds(recorded), recorded, base.prepays, base.clock
        )
        base.payments = WeChatPayments(
            sharing_merchant, client, base.payables, base.prepays, base.applied, base.clock, refunds.notified
        )
        base.wechatpay.post = base.deliver
        owed, accounts = FakeOwed(), FakeAccounts(dict(ACCOUNTS))
        shares = FakeProfitShares(owed)
        sharing = ProfitSharing(
            sharing_merchant, client, shares, recorded, owed, accounts, base.clock, query_after_ms=query_after_ms
        )
        return cls(base, recorded, shares, owed, accounts, sharing, refunds)

    @property
    def clock(self) -> FakeClock:
        return self.base.clock

    def paid_order(self, total_fen: int = 10_000, entries: list[ps.OwedEntry] | None = None) -> RecordedPayment:
        order = self.base.order("o" + secrets.token_hex(16), total_fen=total_fen)
        self.base.payments.prepay(order.order_id, "c-1", "oOPENID")
        trade_no = order.order_id[1:]
        self.base.wechatpay.pay(trade_no, retry=False)
        transaction = self.base.wechatpay.transactions[trade_no]
        if entries is not None:
            self.owed.by_order[order.order_id] = entries
        return self.payments.record(
            RecordedPayment(order.order_id, str(transaction.transaction_id), total_fen, "wechatpay", "APPLIED")
        )
