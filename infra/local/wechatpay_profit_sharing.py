"""Profit sharing (分账) of the local WeChat Pay (docs/payments.md, "The local WeChat Pay"), as WeChat
Pay v3 does it for a merchant (not a service provider):

- `POST /v3/profitsharing/receivers/add` keeps a receiver per (type, account): MERCHANT_ID or
  PERSONAL_OPENID, with a relation_type; the merchant itself cannot be one (400 INVALID_REQUEST). A
  MERCHANT_ID receiver needs its `name` (商户全称), and a name, when sent, must be encrypted with the
  platform key (RSAES-OAEP) that the request's `Wechatpay-Serial` names: it is decrypted and kept
  (`decrypted_name`, in `GET /local/profit-sharing`); missing, in clear or under another serial: 400
  PARAM_ERROR.
- `POST /v3/profitsharing/orders` keeps one share per out_order_no: the transaction must be paid and
  flagged `settle_info.profit_sharing` (else 400 INVALID_REQUEST), each receiver added (400
  RECEIVER_INVALID), the amounts at least 1 fen and together within the maximum ratio of the
  transaction less what it refunded and shared (400 INVALID_REQUEST); the same number again answers
  the same share (counted in `requests`), other parameters 400 INVALID_REQUEST. It answers PROCESSING
  with each receiver PENDING and finishes a moment later (each receiver SUCCESS, or the outcome asked
  for); `unfreeze_unsplit` sends the rest to the merchant then.
- `GET /v3/profitsharing/orders/{out_order_no}?transaction_id=` answers it.
- `POST /v3/profitsharing/orders/unfreeze` unfreezes what a transaction has not shared (FINISHED).
- `POST /v3/profitsharing/return-orders` gives back from a merchant receiver of a finished share, once
  per out_return_no, at most what it received less what it gave back (400 INVALID_REQUEST); a personal
  receiver cannot return (400 INVALID_REQUEST). Answers SUCCESS.
- A refund of a shared transaction may take only what is not shared (less what was given back):
  `LocalWeChatPay` asks `unshared_fen` before refunding (400 NOT_ENOUGH otherwise).

Faults (`POST /local/faults`, beside the refund ones): `share_answer_delay_s` with `share_times`
(the share is made, its answer comes late: the client times out), `share_finish_s` (finish later;
null: only when `finish_shares()` is called, so the share stays PROCESSING for the query job),
`share_receiver_outcome` (`CLOSED`: the receivers' shares fail and come back to the merchant).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.kernel.errors import MalformedRequest
from shared.payments import wechatpay_crypto as crypto

ORDERS = "/v3/profitsharing/orders"
UNFREEZE = "/v3/profitsharing/orders/unfreeze"
RECEIVERS_ADD = "/v3/profitsharing/receivers/add"
RETURNS = "/v3/profitsharing/return-orders"
LOCAL_SHARES = "/local/profit-sharing"
RECEIVER_TYPES = ("MERCHANT_ID", "PERSONAL_OPENID")
RELATION_TYPES = (
    "STORE",
    "STAFF",
    "STORE_OWNER",
    "PARTNER",
    "HEADQUARTER",
    "BRAND",
    "DISTRIBUTOR",
    "USER",
    "SUPPLIER",
    "CUSTOM",
)
MAX_RATIO_BP = 3000


@dataclass
class ShareFaults:
    share_answer_delay_s: float = 0.0
    share_times: int = 0
    share_finish_s: float | None = 0.3
    share_receiver_outcome: str = "SUCCESS"

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> ShareFaults:
        finish = options.get("share_finish_s", 0.3)
        outcome = str(options.get("share_receiver_outcome", "SUCCESS"))
        if outcome not in ("SUCCESS", "CLOSED"):
            raise ValueError("share_receiver_outcome is SUCCESS or CLOSED")
        delay = float(options.get("share_answer_delay_s", 0.0))
        return cls(
            share_answer_delay_s=delay,
            share_times=int(options.get("share_times", 1 if delay else 0)),
            share_finish_s=None if finish is None else float(finish),
            share_receiver_outcome=outcome,
        )


@dataclass
class Share:
    out_order_no: str
    order_id: str
    params: dict[str, Any]
    trade_no: str
    created_at_s: float
    state: str = "PROCESSING"
    results: list[str] = field(default_factory=list)  # per receiver: PENDING, SUCCESS, CLOSED
    requests: int = 1
    unfrozen: bool = False

    def shared_fen(self) -> int:
        """What the receivers hold or may still get (a CLOSED one's share came back to the merchant)."""
        return sum(
            int(r["amount"])
            for r, result in zip(self.params.get("receivers", []), self.results, strict=True)
            if result != "CLOSED"
        )


@dataclass
class Return:
    out_return_no: str
    params: dict[str, Any]
    return_id: str
    out_order_no: str
    result: str = "SUCCESS"
    requests: int = 1


Reply = Any  # infra.local.wechatpay_server.Reply (imported there: no cycle)


class LocalProfitSharing:
    """The profit-sharing side of a `LocalWeChatPay` (`owner`): its transactions, its signed replies."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.receivers: dict[tuple[str, str], dict[str, Any]] = {}
        self.shares: dict[str, Share] = {}
        self.returns: dict[str, Return] = {}
        self.faults = ShareFaults()
        self._lock = threading.Lock()

    # -- routing -----------------------------------------------------------------------------------
    def route(self, method: str, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> Reply | None:
        """`headers`: the request's, names lower-cased (Wechatpay-Serial of an encrypted field)."""
        parts = urllib.parse.urlsplit(path)
        route = parts.path
        if method == "POST" and route == RECEIVERS_ADD:
            return self._add_receiver(body, headers or {})
        if method == "POST" and route == UNFREEZE:
            return self._unfreeze(body)
        if method == "POST" and route == ORDERS:
            return self._share(body)
        if method == "GET" and route.startswith(ORDERS + "/"):
            query = urllib.parse.parse_qs(parts.query)
            return self._query(route[len(ORDERS) + 1 :], (query.get("transaction_id") or [""])[0])
        if method == "POST" and route == RETURNS:
            return self._return(body)
        return None

    def _error(self, status: int, code: str, message: str) -> Reply:
        return self.owner._error(status, code, message)

    # -- receivers ---------------------------------------------------------------------------------
    def _add_receiver(self, raw: bytes, headers: Mapping[str, str]) -> Reply:
        body = _json(raw)
        kind, account, relation = body.get("type"), body.get("account"), body.get("relation_type")
        if body.get("appid") != self.owner.keys.appid:
            return self._error(400, "PARAM_ERROR", "appid does not match")
        if kind not in RECEIVER_TYPES or not isinstance(account, str) or not account or relation not in RELATION_TYPES:
            return self._error(400, "PARAM_ERROR", "type, account or relation_type")
        if relation == "CUSTOM" and not body.get("custom_relation"):
            return self._error(400, "PARAM_ERROR", "custom_relation is required for CUSTOM")
        if kind == "MERCHANT_ID" and account == self.owner.keys.mchid:
            return self._error(400, "INVALID_REQUEST", "分账接收方不能是分账方本身")
        name, refusal = self._name_of(kind, body, headers)
        if refusal is not None:
            return refusal
        with self._lock:
            self.receivers[(kind, account)] = {**body, **({} if name is None else {"decrypted_name": name})}
        answer = {k: body[k] for k in ("type", "account", "relation_type", "custom_relation") if k in body}
        return self.owner.signed_reply(200, answer)

    def _name_of(self, kind: object, body: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str | None, Any]:
        """The receiver's `name` decrypted with the platform key, as WeChat Pay opens it, and None; or
        None and the refusal. Required for a MERCHANT_ID receiver (its 商户全称), optional for a person;
        when sent it must be encrypted with the key the request's Wechatpay-Serial names (a name in clear
        does not open: PARAM_ERROR)."""
        encrypted = body.get("name")
        if encrypted is None:
            refused = kind == "MERCHANT_ID"
            return None, self._error(
                400, "PARAM_ERROR", "name is required for a MERCHANT_ID receiver"
            ) if refused else None
        if headers.get("wechatpay-serial") != self.owner.serial:
            return None, self._error(400, "PARAM_ERROR", "Wechatpay-Serial must name the key name is encrypted with")
        try:
            name = crypto.decrypt_sensitive(self.owner.keys.platform_key, str(encrypted))
        except MalformedRequest:
            return None, self._error(400, "PARAM_ERROR", "平台私钥解密失败")
        return (name, None) if name.strip() else (None, self._error(400, "PARAM_ERROR", "name is empty"))

    # -- shares ------------------------------------------------------------------------------------
    def _transaction(self, transaction_id: object) -> Any:
        return next(
            (t for t in self.owner.transactions.values() if transaction_id and t.transaction_id == transaction_id),
            None,
        )

    def _share(self, raw: bytes) -> Reply:
        body = _json(raw)
        number, receivers = body.get("out_order_no"), body.get("receivers")
        if (
            body.get("appid") != self.owner.keys.appid
            or not isinstance(number, str)
            or not 1 <= len(number) <= 64
            or not isinstance(receivers, list)
            or not 1 <= len(receivers) <= 50
            or not isinstance(body.get("unfreeze_unsplit"), bool)
        ):
            return self._error(400, "PARAM_ERROR", "appid, out_order_no, receivers or unfreeze_unsplit")
        for r in receivers:
            if (
                not isinstance(r, dict)
                or type(r.get("amount")) is not int
                or r["amount"] < 1
                or not r.get("description")
            ):
                return self._error(400, "PARAM_ERROR", "each receiver needs an amount of at least 1 fen")
            if (r.get("type"), r.get("account")) not in self.receivers:
                return self._error(400, "RECEIVER_INVALID", "分账接收方未添加")
        with self._lock:
            known = self.shares.get(number)
            if known is not None:
                if known.params != body:
                    return self._error(400, "INVALID_REQUEST", "商户分账单号重复，参数与之前请求不一致")
                known.requests += 1
                reply = self.owner.signed_reply(200, self.share_resource(known))
            else:
                reply = self._new_share(number, body)
            late = reply.status == 200 and self.faults.share_times > 0 and self.faults.share_answer_delay_s > 0
            if late:
                self.faults.share_times -= 1
        if late:
            time.sleep(self.faults.share_answer_delay_s)  # the share is made: only its answer is late
        return reply

    def _new_share(self, number: str, body: dict[str, Any]) -> Reply:
        paid = self._transaction(body.get("transaction_id"))
        refusal = self._not_shareable(paid)
        if refusal is not None:
            return refusal
        total = int(paid.params["amount"]["total"])
        asked = sum(int(r["amount"]) for r in body["receivers"])
        shared = sum(s.shared_fen() for s in self.shares.values() if s.trade_no == paid.out_trade_no)
        if shared + asked > total * MAX_RATIO_BP // 10_000 or asked > self.owner.unshared_fen(paid):
            return self._error(400, "INVALID_REQUEST", "分账金额超出最大分账比例或可分金额")
        known = Share(number, "30" + _digits(28), body, paid.out_trade_no, self.owner.clock())
        known.results = ["PENDING"] * len(body["receivers"])
        self.shares[number] = known
        if self.faults.share_finish_s is not None:
            self._later(self.faults.share_finish_s, lambda: self.finish_share(number))
        return self.owner.signed_reply(200, self.share_resource(known))

    def _not_shareable(self, paid: Any) -> Reply | None:
        """WeChat Pay's refusal of a share or an unfreeze of this transaction, None when it may."""
        if paid is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if paid.trade_state != "SUCCESS" or not (paid.params.get("settle_info") or {}).get("profit_sharing"):
            return self._error(400, "INVALID_REQUEST", "订单未支付或不支持分账")
        if self.unfrozen(paid):
            return self._error(400, "INVALID_REQUEST", "订单已解冻，剩余资金不可分账")
        return None

    def finish_share(self, number: str) -> bool:
        with self._lock:
            known = self.shares[number]
            if known.state != "PROCESSING":
                return False
            known.results = [self.faults.share_receiver_outcome for _ in known.results]
            known.state = "FINISHED"
            known.unfrozen = bool(known.params.get("unfreeze_unsplit"))
        return True

    def finish_shares(self) -> dict[str, bool]:
        return {number: self.finish_share(number) for number in list(self.shares)}

    def unfrozen(self, paid: Any) -> bool:
        return any(s.unfrozen for s in self.shares.values() if s.trade_no == paid.out_trade_no)

    def share_resource(self, known: Share) -> dict[str, Any]:
        paid = self.owner.transactions[known.trade_no]
        receivers = []
        for r, result in zip(known.params.get("receivers", []), known.results, strict=True):
            receiver = {
                "amount": r["amount"],
                "description": r["description"],
                "type": r["type"],
                "account": r["account"],
                "result": result,
                "detail_id": "36" + _digits(28),
                "create_time": _china_now(self.owner),
            }
            if result == "CLOSED":
                receiver["fail_reason"] = "ACCOUNT_ABNORMAL"
            if result != "PENDING":
                receiver["finish_time"] = _china_now(self.owner)
            receivers.append(receiver)
        return {
            "transaction_id": paid.transaction_id,
            "out_order_no": known.out_order_no,
            "order_id": known.order_id,
            "state": known.state,
            "receivers": receivers,
        }

    def _query(self, number: str, transaction_id: str) -> Reply:
        known = self.shares.get(number)
        if known is None or self.owner.transactions[known.trade_no].transaction_id != transaction_id:
            return self._error(404, "RESOURCE_NOT_EXISTS", "记录不存在")
        return self.owner.signed_reply(200, self.share_resource(known))

    def _unfreeze(self, raw: bytes) -> Reply:
        body = _json(raw)
        number = body.get("out_order_no")
        if not isinstance(number, str) or not number or not body.get("description"):
            return self._error(400, "PARAM_ERROR", "transaction_id, out_order_no and description")
        with self._lock:
            known = self.shares.get(number)
            if known is not None:
                if known.params != body:
                    return self._error(400, "INVALID_REQUEST", "商户分账单号重复")
                known.requests += 1
                return self.owner.signed_reply(200, self.share_resource(known))
            paid = self._transaction(body.get("transaction_id"))
            refusal = self._not_shareable(paid)
            if refusal is not None:
                return refusal
            known = Share(number, "30" + _digits(28), body, paid.out_trade_no, self.owner.clock(), "FINISHED")
            known.unfrozen = True
            self.shares[number] = known
        return self.owner.signed_reply(200, self.share_resource(known))

    # -- returns -----------------------------------------------------------------------------------
    def _return(self, raw: bytes) -> Reply:
        body = _json(raw)
        number, mchid, amount = body.get("out_return_no"), body.get("return_mchid"), body.get("amount")
        if (
            not isinstance(number, str)
            or not number
            or type(amount) is not int
            or amount < 1
            or not body.get("description")
        ):
            return self._error(400, "PARAM_ERROR", "out_return_no, return_mchid, amount or description")
        with self._lock:
            known = self.returns.get(number)
            if known is not None:
                if known.params != body:
                    return self._error(400, "INVALID_REQUEST", "回退单号重复，参数与之前请求不一致")
                known.requests += 1
                return self.owner.signed_reply(200, self.return_resource(known))
            share = self.shares.get(str(body.get("out_order_no")))
            if share is None:
                return self._error(404, "RESOURCE_NOT_EXISTS", "分账单不存在")
            got = sum(
                int(r["amount"])
                for r, result in zip(share.params.get("receivers", []), share.results, strict=True)
                if r["type"] == "MERCHANT_ID" and r["account"] == mchid and result == "SUCCESS"
            )
            if got == 0:
                return self._error(400, "INVALID_REQUEST", "只能对分账成功的商户接收方回退")
            given = sum(
                int(r.params["amount"])
                for r in self.returns.values()
                if r.out_order_no == share.out_order_no and r.params["return_mchid"] == mchid
            )
            if amount > got - given:
                return self._error(400, "INVALID_REQUEST", "回退金额超过可回退金额")
            known = Return(number, body, "38" + _digits(28), share.out_order_no)
            self.returns[number] = known
        return self.owner.signed_reply(200, self.return_resource(known))

    def return_resource(self, known: Return) -> dict[str, Any]:
        share = self.shares[known.out_order_no]
        return {
            "order_id": share.order_id,
            "out_order_no": known.out_order_no,
            "out_return_no": known.out_return_no,
            "return_id": known.return_id,
            "return_mchid": known.params["return_mchid"],
            "amount": known.params["amount"],
            "description": known.params["description"],
            "result": known.result,
            "create_time": _china_now(self.owner),
            "finish_time": _china_now(self.owner),
        }

    def held_fen(self, paid: Any) -> int:
        """What the receivers of a transaction hold: shared less given back (the refund limit's part)."""
        shares = [s for s in self.shares.values() if s.trade_no == paid.out_trade_no]
        given = sum(
            int(r.params["amount"]) for r in self.returns.values() if r.out_order_no in {s.out_order_no for s in shares}
        )
        return sum(s.shared_fen() for s in shares) - given

    def summary(self) -> dict[str, Any]:
        return {
            "receivers": [dict(v) for v in self.receivers.values()],
            "shares": [
                {
                    "out_order_no": s.out_order_no,
                    "out_trade_no": s.trade_no,
                    "state": s.state,
                    "requests": s.requests,
                    "unfrozen": s.unfrozen,
                    "receivers": [
                        {**r, "result": result}
                        for r, result in zip(s.params.get("receivers", []), s.results, strict=True)
                    ],
                }
                for s in self.shares.values()
            ],
            "returns": [
                {
                    "out_return_no": r.out_return_no,
                    "out_order_no": r.out_order_no,
                    "amount": r.params["amount"],
                    "return_mchid": r.params["return_mchid"],
                    "requests": r.requests,
                }
                for r in self.returns.values()
            ],
        }

    def _later(self, delay_s: float, action: Callable[[], object]) -> None:
        self.owner._later(delay_s, action)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


def _china_now(owner: Any) -> str:
    from shared.payments.model import china_time

    return china_time(int(owner.clock() * 1000))
