"""Profit sharing (分账) through WeChat Pay v3 as data (docs/payments.md, "Profit sharing"): who is paid
what out of one order's transaction, the request bodies, WeChat Pay's answers, and the states of one
share. Pure: no provider, no I/O, no commission import (the ledger's entries come in as `OwedEntry`).

    WAITING (paid, the after-sale window open) --entries settleable--> PENDING
    PENDING --requested--> PROCESSING --query/answer FINISHED--> FINISHED
                 \\--refused for good--> REFUSED           (listed for finance)
                                       CLOSED receivers -> FINISHED with closed receivers (listed)

A share is keyed by its out_order_no, derived from the order and the split number, so a retry, a
second worker or a resumed job asks WeChat Pay for the same share, and WeChat Pay shares a number once.

One payout channel per ledger entry (docs/payments.md, "Profit sharing and settlement runs"): the
entries a share pays are claimed `profit_sharing#<out_order_no>` in the write that makes it PENDING,
only if they are still SETTLEABLE and unclaimed; entries a settlement run settled (or claimed) first
are left out of the share and listed on it (`settled_apart`), never paid twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.kernel.errors import RuleViolation

ORDERS_PATH = "/v3/profitsharing/orders"
UNFREEZE_PATH = "/v3/profitsharing/orders/unfreeze"
RECEIVERS_ADD_PATH = "/v3/profitsharing/receivers/add"
RETURNS_PATH = "/v3/profitsharing/return-orders"

MERCHANT_ID = "MERCHANT_ID"
PERSONAL_OPENID = "PERSONAL_OPENID"
# WeChat Pay's relation types (relation_type of receivers/add) for the parties the ledger pays.
RELATION_OF_ROLE = {
    "dealer": "PARTNER",
    "store": "STORE",
    "guide": "STAFF",
    "distributor_1": "DISTRIBUTOR",
    "distributor_2": "DISTRIBUTOR",
}
# The merchant's maximum share of a transaction, set in the merchant platform (30% unless raised).
MAX_RATIO_BP = 3000

WAITING, PENDING, PROCESSING, FINISHED, REFUSED = "WAITING", "PENDING", "PROCESSING", "FINISHED", "REFUSED"
OPEN = frozenset({WAITING, PENDING, PROCESSING})
# A WAITING share is looked at again after as long as it has waited, between these bounds.
WAIT_MIN_MS, WAIT_MAX_MS = 60 * 1000, 6 * 3600 * 1000
RECEIVER_RESULTS = frozenset({"PENDING", "SUCCESS", "CLOSED"})
_NUMBER = re.compile(r"[0-9A-Za-z_|*@-]{1,64}")


class OverMaximumRatio(RuleViolation):
    """The shares of an order pass the merchant's maximum ratio of its transaction: nothing is asked."""

    code = "PROFIT_SHARING_OVER_RATIO"


class EntryTaken(Exception):
    """A ledger entry a share was about to claim was settled or claimed meanwhile: read the entries
    again and decide again (the share itself was not written)."""


class NoReceiverAccount(RuleViolation):
    """A payee the ledger owes has no WeChat Pay account (merchant id or openid) to be paid to."""

    code = "PROFIT_SHARING_NO_ACCOUNT"


@dataclass(frozen=True)
class OwedEntry:
    """One commission ledger entry of the order, as profit sharing reads it (shared.commission's
    Entry, mapped by the composition root): earnings > 0, clawbacks < 0."""

    role: str
    payee_id: str
    amount_fen: int
    status: str  # PENDING, FROZEN, SETTLEABLE, SETTLED
    refund_id: str | None = None  # a clawback's refund
    entry_id: str = ""
    payout: str | None = None  # the payout channel that claimed it (None: neither yet)


@dataclass(frozen=True)
class SettledApart:
    """What a settlement run paid (or claimed) of one payee's entries of the order before the share
    was made: left out of the share, listed on it for finance."""

    payee: str
    entries: int
    amount_fen: int


# A share and its claims are one DynamoDB transaction (100 items at most): an order paying more entries
# than this is refused (listed for finance), and its statement pays them.
MAX_CLAIMS = 99
TOO_MANY_ENTRIES = "PROFIT_SHARING_TOO_MANY_ENTRIES"


def claim_of(out_order_no: str) -> str:
    """The payout claim a share writes on the ledger entries it pays."""
    return f"profit_sharing#{out_order_no}"


def open_to_share(entries: Sequence[OwedEntry], out_order_no: str) -> tuple[list[OwedEntry], tuple[SettledApart, ...]]:
    """The entries this share may pay (SETTLEABLE, unclaimed or claimed by it) and, per payee, those
    it must leave out: SETTLED by a run, or claimed by another channel."""
    mine = claim_of(out_order_no)
    open_ = [e for e in entries if e.status == "SETTLEABLE" and e.payout in (None, mine)]
    taken = {id(e) for e in open_}
    apart: dict[str, list[int]] = {}
    for e in entries:
        if id(e) not in taken:
            held = apart.setdefault(f"{e.role}:{e.payee_id}", [0, 0])
            held[0] += 1
            held[1] += e.amount_fen
    return open_, tuple(SettledApart(payee, n, fen) for payee, (n, fen) in sorted(apart.items()))


def claimed_by(entries: Sequence[OwedEntry]) -> tuple[str, ...]:
    """The entries a share claims: every open entry of a payee it pays (net > 0). A payee whose net is
    0 or less is paid nothing here, so its entries stay unclaimed, carried into its next statement."""
    owed = owed_by_payee(entries)
    return tuple(sorted(e.entry_id for e in entries if owed[(e.role, e.payee_id)] > 0))


@dataclass(frozen=True)
class ReceiverAccount:
    """Where a payee is paid: `MERCHANT_ID` (dealer, store) or `PERSONAL_OPENID` (guide, distributor).
    `name`: a merchant receiver's full registered name (商户全称), which WeChat Pay requires when it is
    added (sent encrypted); a personal receiver's is not sent (optional at WeChat Pay)."""

    type: str
    account: str
    name: str | None = None


@dataclass(frozen=True)
class Receiver:
    payee: str  # "<role>:<payee id>" as the ledger names it
    role: str
    type: str
    account: str
    amount_fen: int
    result: str = "PENDING"  # WeChat Pay's per-receiver result: PENDING, SUCCESS, CLOSED
    fail_reason: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "account": self.account,
            "amount": self.amount_fen,
            "description": f"commission {self.role}"[:80],
        }

    def add_body(self, appid: str, encrypted_name: str | None = None) -> dict[str, Any]:
        """`POST /v3/profitsharing/receivers/add`; `encrypted_name`: the receiver's name encrypted with
        WeChat Pay's key (required for a MERCHANT_ID receiver; the request's Wechatpay-Serial names the key)."""
        return {
            "appid": appid,
            "type": self.type,
            "account": self.account,
            **({} if encrypted_name is None else {"name": encrypted_name}),
            "relation_type": RELATION_OF_ROLE.get(self.role, "CUSTOM"),
            **({} if self.role in RELATION_OF_ROLE else {"custom_relation": self.role[:10]}),
        }

    @property
    def payee_id(self) -> str:
        return self.payee.partition(":")[2]


def settleable(entries: Sequence[OwedEntry]) -> bool:
    """The after-sale window of the order has closed: every entry is SETTLEABLE or SETTLED (a refund
    before the window was clawed back in the same state, so the net is final)."""
    return bool(entries) and all(e.status in ("SETTLEABLE", "SETTLED") for e in entries)


def owed_by_payee(entries: Iterable[OwedEntry]) -> dict[tuple[str, str], int]:
    """Net per (role, payee id): earnings minus clawbacks, fen."""
    owed: dict[tuple[str, str], int] = {}
    for e in entries:
        owed[(e.role, e.payee_id)] = owed.get((e.role, e.payee_id), 0) + e.amount_fen
    return owed


def max_share_fen(total_fen: int, max_ratio_bp: int = MAX_RATIO_BP) -> int:
    """The most WeChat Pay lets us share of a transaction: its total times the ratio, rounded down."""
    return total_fen * max_ratio_bp // 10_000


def receivers_of(
    entries: Sequence[OwedEntry],
    accounts: Mapping[tuple[str, str], ReceiverAccount | None],
    total_fen: int,
    max_ratio_bp: int = MAX_RATIO_BP,
) -> tuple[Receiver, ...]:
    """The receivers of one order's share: each payee's net in fen (a net of 0 or less is paid
    nothing here: it stays in the payee's ledger, carried to its next statement), one receiver per
    account (a distributor paid as level 1 and 2 is one receiver). OverMaximumRatio when the sum
    passes the ratio of what was paid (never trimmed: the ledger and WeChat Pay would disagree);
    NoReceiverAccount for a payee with no account."""
    by_account: dict[tuple[str, str], Receiver] = {}
    for (role, payee_id), net in sorted(owed_by_payee(entries).items()):
        if net <= 0:
            continue
        account = accounts.get((role, payee_id))
        if account is None:
            raise NoReceiverAccount("a payee has no WeChat Pay account", role=role, payee_id=payee_id)
        key = (account.type, account.account)
        known = by_account.get(key)
        if known is None:
            by_account[key] = Receiver(f"{role}:{payee_id}", role, account.type, account.account, net)
        else:
            by_account[key] = replace(known, amount_fen=known.amount_fen + net)
    receivers = tuple(by_account.values())
    shared = sum(r.amount_fen for r in receivers)
    if shared > max_share_fen(total_fen, max_ratio_bp):
        raise OverMaximumRatio(
            "the order's shares pass the maximum ratio",
            shared_fen=shared,
            total_fen=total_fen,
            max_ratio_bp=max_ratio_bp,
        )
    return receivers


def out_order_no_of(order_id: str, split: int = 1) -> str:
    """The out_order_no of an order's `split`-th share ([0-9A-Za-z_|*@-]{1,64}): derived, never drawn."""
    number = f"PS{order_id}-{split}"
    if not _NUMBER.fullmatch(number):
        number = "PS" + hashlib.sha256(f"{order_id}#{split}".encode()).hexdigest()[:40] + f"-{split}"
    return number


def out_return_no_of(refund_id: str, account: str) -> str:
    """The out_return_no of what one merchant receiver gives back for one refund: derived."""
    return "PR" + hashlib.sha256(f"{refund_id}#{account}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class ProfitShare:
    """One share of one order's transaction as we keep it (`pk = ORDER#<id>`, `sk = SHARE#<out_order_no>`)."""

    out_order_no: str
    order_id: str
    transaction_id: str
    total_fen: int
    receivers: tuple[Receiver, ...]
    status: str = PENDING
    created_at_ms: int = 0
    updated_at_ms: int = 0
    next_check_at_ms: int | None = None
    order_no: str | None = None  # WeChat Pay's order_id of the share
    unfrozen: bool = False  # unfreeze_unsplit was asked for: the rest went to the merchant
    refusal: str | None = None
    attempts: int = 0
    version: int = 1
    returns: tuple[ShareReturn, ...] = field(default=())
    claimed: tuple[str, ...] = field(default=())  # ledger entry ids this share pays (its claim on them)
    settled_apart: tuple[SettledApart, ...] = field(default=())

    @property
    def claim(self) -> str:
        return claim_of(self.out_order_no)

    @property
    def claimed_entries(self) -> frozenset[str]:
        """Every ledger entry this share holds a claim on: those it pays and the clawbacks its merchant
        receivers give back (a FAILED return gives its clawbacks back to the next statement)."""
        returned = (e for r in self.returns if r.result != "FAILED" for e in r.entries)
        return frozenset((*self.claimed, *returned))

    @property
    def shared_fen(self) -> int:
        return sum(r.amount_fen for r in self.receivers)

    @property
    def returned_fen(self) -> int:
        return sum(r.amount_fen for r in self.returns if r.result == "SUCCESS")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def needs_attention(self) -> bool:
        return (
            self.status == REFUSED
            or any(r.result == "CLOSED" for r in self.receivers)
            or any(r.result == "FAILED" for r in self.returns)
        )

    def order_body(self, appid: str) -> dict[str, Any]:
        """`POST /v3/profitsharing/orders`: unfreeze_unsplit true, so what is not shared reaches the
        merchant in the same request (one share per order)."""
        return {
            "appid": appid,
            "transaction_id": self.transaction_id,
            "out_order_no": self.out_order_no,
            "receivers": [r.body() for r in self.receivers],
            "unfreeze_unsplit": True,
        }

    def unfreeze_body(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "out_order_no": self.out_order_no,
            "description": "unfreeze the rest",
        }

    def query_path(self) -> str:
        return f"{ORDERS_PATH}/{self.out_order_no}?transaction_id={self.transaction_id}"

    def answered(self, answer: ShareState, now_ms: int, query_after_ms: int) -> ProfitShare:
        """WeChat Pay's answer (request, query, unfreeze): FINISHED ends it; PROCESSING is checked again
        later, backing off; an end is never left (a late PROCESSING after FINISHED changes nothing)."""
        if self.status in (FINISHED, REFUSED, WAITING):
            return self
        results = {(r.type, r.account): r for r in answer.receivers}
        receivers = tuple(
            replace(r, result=results[(r.type, r.account)].result, fail_reason=results[(r.type, r.account)].fail_reason)
            if (r.type, r.account) in results
            else r
            for r in self.receivers
        )
        finished = answer.state == FINISHED
        open_for = max(now_ms - self.created_at_ms, query_after_ms)
        return replace(
            self,
            status=FINISHED if finished else PROCESSING,
            receivers=receivers,
            order_no=answer.order_no or self.order_no,
            unfrozen=self.unfrozen or finished,
            updated_at_ms=now_ms,
            next_check_at_ms=None if finished else now_ms + min(open_for, 3600 * 1000),
            attempts=self.attempts + 1,
            version=self.version + 1,
        )

    def with_receivers(
        self,
        receivers: tuple[Receiver, ...],
        now_ms: int,
        query_after_ms: int,
        claimed: tuple[str, ...] = (),
        settled_apart: tuple[SettledApart, ...] = (),
    ) -> ProfitShare:
        """WAITING -> PENDING: the entries became settleable; what each receiver gets is fixed now, and
        the entries it pays are claimed (in the same write)."""
        if self.status != WAITING:
            return self
        return replace(
            self,
            status=PENDING,
            receivers=receivers,
            claimed=claimed,
            settled_apart=settled_apart,
            updated_at_ms=now_ms,
            next_check_at_ms=now_ms + query_after_ms,
            version=self.version + 1,
        )

    def still_waiting(self, now_ms: int, wait_min_ms: int = WAIT_MIN_MS) -> ProfitShare:
        """Not settleable yet: looked at again after as long as it has waited (bounded)."""
        waited = max(now_ms - self.created_at_ms, wait_min_ms)
        return replace(
            self, next_check_at_ms=now_ms + min(waited, WAIT_MAX_MS), updated_at_ms=now_ms, version=self.version + 1
        )

    def refused(self, code: str, now_ms: int) -> ProfitShare:
        """Refused for good: nothing is paid, so its claims are released (the next statement pays them)."""
        return replace(
            self,
            status=REFUSED,
            refusal=code,
            claimed=(),
            updated_at_ms=now_ms,
            next_check_at_ms=None,
            version=self.version + 1,
        )

    def retry_later(self, now_ms: int, after_ms: int) -> ProfitShare:
        return replace(
            self,
            next_check_at_ms=now_ms + after_ms,
            attempts=self.attempts + 1,
            updated_at_ms=now_ms,
            version=self.version + 1,
        )

    def with_return(self, ret: ShareReturn) -> ProfitShare:
        kept = tuple(r for r in self.returns if r.out_return_no != ret.out_return_no)
        return replace(self, returns=(*kept, ret), version=self.version + 1)

    def view(self) -> dict[str, Any]:
        return {
            "out_order_no": self.out_order_no,
            "order_id": self.order_id,
            "transaction_id": self.transaction_id,
            "status": self.status,
            "total_fen": self.total_fen,
            "shared_fen": self.shared_fen,
            "returned_fen": self.returned_fen,
            "unfrozen": self.unfrozen,
            "refusal": self.refusal,
            "needs_attention": self.needs_attention,
            "receivers": [
                {
                    "payee": r.payee,
                    "type": r.type,
                    "amount_fen": r.amount_fen,
                    "result": r.result,
                    "fail_reason": r.fail_reason,
                }
                for r in self.receivers
            ],
            "returns": [
                {
                    "out_return_no": r.out_return_no,
                    "refund_id": r.refund_id,
                    "amount_fen": r.amount_fen,
                    "result": r.result,
                }
                for r in self.returns
            ],
            "claimed_entries": len(self.claimed),
            "settled_apart": [
                {"payee": a.payee, "entries": a.entries, "amount_fen": a.amount_fen} for a in self.settled_apart
            ],
        }


@dataclass(frozen=True)
class ShareReturn:
    """What a merchant receiver gives back (分账回退) because a refund clawed its share back."""

    out_return_no: str
    refund_id: str
    return_mchid: str
    amount_fen: int
    result: str = "PENDING"  # PROCESSING, SUCCESS, FAILED
    entries: tuple[str, ...] = ()  # the clawback entries it gives back (claimed while it is not FAILED)

    def body(self, out_order_no: str) -> dict[str, Any]:
        return {
            "out_order_no": out_order_no,
            "out_return_no": self.out_return_no,
            "return_mchid": self.return_mchid,
            "amount": self.amount_fen,
            "description": f"refund {self.refund_id}"[:80],
        }


def returns_for_refund(share: ProfitShare, refund_id: str, clawbacks: Sequence[OwedEntry]) -> tuple[ShareReturn, ...]:
    """The returns a refund needs: each merchant receiver (dealer, store) gives back what the refund
    clawed back from it (none when that is more than it still holds of this share), claiming those
    clawbacks so that no statement takes them again. A personal receiver (guide, distributor) cannot
    be returned from (WeChat Pay returns only from merchant receivers), and a clawback a run already
    settled was taken off a statement: those stay in the ledger, taken off the payee's statement."""
    back: dict[str, int] = {}
    entries: dict[str, list[str]] = {}
    for e in clawbacks:
        if e.amount_fen >= 0 or e.status != "SETTLEABLE" or e.payout not in (None, share.claim):
            continue  # a clawback a settlement run took off a statement already is not returned again
        receiver = next((r for r in share.receivers if r.payee == f"{e.role}:{e.payee_id}"), None)
        if receiver is None or receiver.type != MERCHANT_ID or receiver.result == "CLOSED":
            continue
        back[receiver.account] = back.get(receiver.account, 0) - e.amount_fen
        entries.setdefault(receiver.account, []).append(e.entry_id)
    out: list[ShareReturn] = []
    for account, amount in sorted(back.items()):
        holds = sum(r.amount_fen for r in share.receivers if r.account == account) - sum(
            r.amount_fen
            for r in share.returns
            if r.return_mchid == account and r.result != "FAILED" and r.refund_id != refund_id
        )
        if amount > holds:
            # More than it still holds of this share: nothing is returned, and its clawbacks stay
            # unclaimed, taken off its next statement (a part returned here would be taken twice).
            continue
        if amount > 0:
            claimed = tuple(sorted(entries[account]))
            out.append(ShareReturn(out_return_no_of(refund_id, account), refund_id, account, amount, entries=claimed))
    return tuple(out)


@dataclass(frozen=True)
class ReceiverState:
    type: str
    account: str
    amount_fen: int
    result: str
    fail_reason: str | None = None


@dataclass(frozen=True)
class ShareState:
    """WeChat Pay's answer about a share (the request's, the query's or the unfreeze's)."""

    out_order_no: str
    state: str  # PROCESSING, FINISHED
    order_no: str | None
    receivers: tuple[ReceiverState, ...]

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> ShareState:
        state = str(answer.get("state") or "")
        if state not in (PROCESSING, FINISHED) or not answer.get("out_order_no"):
            raise ValueError(f"not a profit sharing answer: state {state!r}")
        receivers = []
        for r in answer.get("receivers") or []:
            if not isinstance(r, Mapping):
                continue
            result = str(r.get("result") or "PENDING")
            receivers.append(
                ReceiverState(
                    str(r.get("type")),
                    str(r.get("account")),
                    int(r.get("amount") or 0),
                    result if result in RECEIVER_RESULTS else "PENDING",
                    str(r["fail_reason"]) if r.get("fail_reason") else None,
                )
            )
        order_no = answer.get("order_id")
        return cls(str(answer["out_order_no"]), state, str(order_no) if order_no else None, tuple(receivers))


# -- as stored ---------------------------------------------------------------------------------------
def share_to_dict(share: ProfitShare) -> dict[str, Any]:
    return {
        **{k: getattr(share, k) for k in _SCALARS},
        "receivers": [r.__dict__ for r in share.receivers],
        "returns": [{**r.__dict__, "entries": list(r.entries)} for r in share.returns],
        "claimed": list(share.claimed),
        "settled_apart": [a.__dict__ for a in share.settled_apart],
    }


def share_from_dict(data: Mapping[str, Any]) -> ProfitShare:
    scalars: dict[str, Any] = {k: data[k] for k in _SCALARS if k in data}
    return ProfitShare(
        **scalars,
        receivers=tuple(Receiver(**r) for r in data.get("receivers") or []),
        returns=tuple(
            ShareReturn(**{**r, "entries": tuple(r.get("entries") or ())}) for r in data.get("returns") or []
        ),
        claimed=tuple(data.get("claimed") or ()),  # absent on shares made before the claims
        settled_apart=tuple(SettledApart(**a) for a in data.get("settled_apart") or []),
    )


_SCALARS = (
    "out_order_no",
    "order_id",
    "transaction_id",
    "total_fen",
    "status",
    "created_at_ms",
    "updated_at_ms",
    "next_check_at_ms",
    "order_no",
    "unfrozen",
    "refusal",
    "attempts",
    "version",
)


def receiver_account_of(payout_account: str | None, name: str | None = None) -> ReceiverAccount | None:
    """A party's `payout_account` as WeChat Pay receives it: `wechatpay:merchant:<mchid>` (a dealer's or a
    store's own merchant id; `name`, the party's name, is sent as its 商户全称) or `wechatpay:openid:<openid>`
    (a guide's or a distributor's openid under our AppID; no name). Anything else (a bank account,
    nothing) cannot be paid through profit sharing: None."""
    kind, _, account = (payout_account or "").partition(":")[2].partition(":")
    if not (payout_account or "").startswith("wechatpay:") or not account:
        return None
    return {
        "merchant": ReceiverAccount(MERCHANT_ID, account, name or None),
        "openid": ReceiverAccount(PERSONAL_OPENID, account),
    }.get(kind)
