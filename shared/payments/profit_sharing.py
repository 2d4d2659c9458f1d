"""Profit sharing (分账) through WeChat Pay v3 (docs/payments.md, "Profit sharing"): each paid order
whose commissions became settleable shares them out of its own transaction, once.

    share_order(order)  ledger entries all SETTLEABLE/SETTLED? -> receivers (net per payee, under the ratio)
                        (none at all, long after the payment: nobody was credited -> nothing to share)
                        store the share PENDING (the first one stands)
                        POST /v3/profitsharing/receivers/add for each receiver (WeChat Pay keeps them; idempotent;
                        a merchant's name encrypted with WeChat Pay's key, Wechatpay-Serial naming it)
                        POST /v3/profitsharing/orders {out_order_no, transaction_id, receivers, unfreeze_unsplit}
                        nothing to share: POST /v3/profitsharing/orders/unfreeze (the merchant gets it all)
    settle_due()        PENDING again (answer lost), PROCESSING asked: GET /v3/profitsharing/orders/{no}
    refund_issued()     a refund of a shared order: POST /v3/profitsharing/return-orders per merchant
                        receiver, for what the refund clawed back from it, before the refund is asked for

Every step is safe to repeat: the out_order_no and out_return_no are derived, WeChat Pay shares a number
once, the share is stored before it is asked for and every change is conditional on its version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from shared.kernel.clock import Clock
from shared.kernel.errors import TemporarilyUnavailable
from shared.payments import profit_sharing_model as ps
from shared.payments import wechatpay_crypto as crypto
from shared.payments.model import ProviderRefused, ProviderUnavailable
from shared.payments.ports import RecordedPayments
from shared.payments.versioned import write_decided
from shared.payments.wechatpay import PROVIDER, WeChatPayClient, WeChatPayMerchant
from shared.platform.observability import count, logger

RETRYABLE = frozenset({"FREQUENCY_LIMITED", "SYSTEM_ERROR", "SYSTEMERROR", "NOT_ENOUGH"})
QUERY_AFTER_MS = 60 * 1000
CLAIM_ATTEMPTS = 4
# A paid order whose ledger still has no entry ten first checks (and at least ten minutes) after its
# payment credited nobody (the commission consumer writes an order's entries at OrderPaid): its money is
# unfrozen to the merchant, not held frozen at WeChat Pay. An entry written later stays unclaimed: its
# statement pays it.
UNCREDITED_AFTER_WAITS, UNCREDITED_AFTER_MS = 10, 10 * 60 * 1000


class CommissionOwed(Protocol):
    def entries(self, order_id: str) -> list[ps.OwedEntry]:
        """Every commission ledger entry of the order (a consistent read), earnings and clawbacks."""
        ...


class ReceiverAccounts(Protocol):
    def account(self, role: str, payee_id: str) -> ps.ReceiverAccount | None:
        """Where the party is paid in WeChat Pay (a merchant id or an openid), None: nowhere."""
        ...


class ProfitShareStore(Protocol):
    def get(self, order_id: str, out_order_no: str) -> ps.ProfitShare | None: ...

    def open(self, share: ps.ProfitShare) -> ps.ProfitShare:
        """Store a new PENDING share unless one with its out_order_no exists; return the stored one."""
        ...

    def change(self, before: ps.ProfitShare, after: ps.ProfitShare) -> ps.ProfitShare | None:
        """Write `after` if the stored share is still `before` (its version); None when it changed.
        In the same transaction, the payout claims move with the share: each ledger entry in
        `after.claimed_entries` and not in `before`'s gets `payout = after.claim`, only if it is still
        SETTLEABLE with no payout (ps.EntryTaken, and nothing written, when one is not); each one in
        `before`'s and not in `after`'s loses it (only if the claim is still this share's)."""
        ...

    def due(self, now_ms: int, limit: int) -> list[ps.ProfitShare]:
        """Open shares whose next check is due, earliest first (an index query, no scan)."""
        ...

    def needing_attention(self, limit: int) -> list[ps.ProfitShare]:
        """REFUSED shares, closed receivers and failed returns, newest first."""
        ...


class ProfitSharing:
    def __init__(
        self,
        merchant: WeChatPayMerchant,
        client: WeChatPayClient,
        shares: ProfitShareStore,
        payments: RecordedPayments,
        owed: CommissionOwed,
        accounts: ReceiverAccounts,
        clock: Clock,
        max_ratio_bp: int = ps.MAX_RATIO_BP,
        query_after_ms: int = QUERY_AFTER_MS,
        wait_min_ms: int = ps.WAIT_MIN_MS,
    ) -> None:
        self._wait_min_ms = wait_min_ms
        self._merchant = merchant
        self._client = client
        self._shares = shares
        self._payments = payments
        self._owed = owed
        self._accounts = accounts
        self._clock = clock
        self._max_ratio_bp = max_ratio_bp
        self._query_after_ms = query_after_ms

    # -- sharing -------------------------------------------------------------------------------
    def watch(self, order_id: str) -> ps.ProfitShare | None:
        """A paid order whose money WeChat Pay froze for sharing: its share is kept WAITING in the job's
        index from now (the first one stands). None when WeChat Pay did not take the order's money."""
        out_order_no = ps.out_order_no_of(order_id)
        stored = self._shares.get(order_id, out_order_no)
        if stored is not None:
            return stored
        payment = self._payments.paying(order_id)
        if payment is None or payment.provider != PROVIDER:
            return None
        now = self._clock.now_ms()
        waiting = ps.ProfitShare(
            out_order_no=out_order_no,
            order_id=order_id,
            transaction_id=payment.transaction_id,
            total_fen=payment.amount_fen,
            receivers=(),
            status=ps.WAITING,
            created_at_ms=now,
            updated_at_ms=now,
            next_check_at_ms=now + self._wait_min_ms,
        )
        return self._shares.open(waiting)

    def share_order(self, order_id: str) -> ps.ProfitShare | None:
        """Share the order's commissions once its after-sale window closed (every ledger entry
        SETTLEABLE or SETTLED); until then it stays WAITING. Idempotent: a share asked for is answered
        as stored (and asked again, same number, only while PENDING)."""
        share = self.watch(order_id)
        return None if share is None else self._advance(share)

    def _advance(self, share: ps.ProfitShare) -> ps.ProfitShare:
        if share.status == ps.WAITING:
            return self._start(share)
        if share.status == ps.PENDING:
            return self._request(share)
        return share

    def _start(self, waiting: ps.ProfitShare) -> ps.ProfitShare:
        for _ in range(CLAIM_ATTEMPTS):
            try:
                return self._claim_and_request(waiting)
            except ps.EntryTaken:
                # A settlement run took some of the entries between our read and our claim: read the
                # entries again (those are now SETTLED, so left out) and decide again.
                count("WeChatPayProfitSharingEntriesTaken")
                waiting = self._shares.get(waiting.order_id, waiting.out_order_no) or waiting
        raise TemporarilyUnavailable("the order's entries keep moving; share it later", order_id=waiting.order_id)

    def _claim_and_request(self, waiting: ps.ProfitShare) -> ps.ProfitShare:
        if waiting.status != ps.WAITING:
            return self._advance(waiting)
        now = self._clock.now_ms()
        entries = self._owed.entries(waiting.order_id)
        credited_by = max(UNCREDITED_AFTER_WAITS * self._wait_min_ms, UNCREDITED_AFTER_MS)
        uncredited = not entries and now - waiting.created_at_ms >= credited_by
        if not ps.settleable(entries) and not uncredited:
            return self._write(waiting, lambda current: current.still_waiting(now, self._wait_min_ms))
        owed, apart = ps.open_to_share(entries, waiting.out_order_no)
        accounts = {(e.role, e.payee_id): self._accounts.account(e.role, e.payee_id) for e in owed}
        try:
            receivers = ps.receivers_of(owed, accounts, waiting.total_fen, self._max_ratio_bp)
        except (ps.OverMaximumRatio, ps.NoReceiverAccount) as exc:
            logger.error(
                "an order's shares cannot be asked for", extra={"order_id": waiting.order_id, "code": exc.code}
            )
            count("WeChatPayProfitSharingNeedingAttention")
            code = exc.code
            return self._write(waiting, lambda current: current.refused(code, now))
        if apart:
            # Reduced, never trimmed silently: what a run paid is listed on the share for finance.
            logger.warning(
                "a share leaves out entries a settlement run paid",
                extra={"order_id": waiting.order_id, "fen": sum(a.amount_fen for a in apart)},
            )
            count("WeChatPayProfitSharingSettledApart", sum(a.entries for a in apart))
        claimed = ps.claimed_by(owed)
        if len(claimed) > ps.MAX_CLAIMS:
            logger.error("an order's share has too many entries to claim", extra={"order_id": waiting.order_id})
            count("WeChatPayProfitSharingNeedingAttention")
            return self._write(waiting, lambda current: current.refused(ps.TOO_MANY_ENTRIES, now))
        pending = self._write(
            waiting, lambda current: current.with_receivers(receivers, now, self._query_after_ms, claimed, apart)
        )
        return self._request(pending) if pending.status == ps.PENDING else pending

    def share_orders(self, order_ids: Sequence[str]) -> dict[str, int]:
        """The scheduled job's pass over orders whose entries became settleable (the composition reads
        them from the ledger's index): each shared once, a failure left for the next pass."""
        counts = {"shared": 0, "waiting": 0, "not_paid": 0, "unavailable": 0, "refused": 0}
        for order_id in dict.fromkeys(order_ids):
            try:
                share = self.share_order(order_id)
            except ProviderUnavailable:
                counts["unavailable"] += 1
                continue
            if share is None:
                counts["not_paid"] += 1
            elif share.status == ps.WAITING:
                counts["waiting"] += 1
            elif share.status == ps.REFUSED:
                counts["refused"] += 1
            else:
                counts["shared"] += 1
        return counts

    def _request(self, share: ps.ProfitShare) -> ps.ProfitShare:
        try:
            if not share.receivers:
                answer = self._client.post(ps.UNFREEZE_PATH, share.unfreeze_body())
            else:
                for receiver in share.receivers:
                    self._add_receiver(receiver)
                answer = self._client.post(ps.ORDERS_PATH, share.order_body(self._merchant.appid))
        except ProviderRefused as exc:
            code = str(exc.details.get("provider_code", ""))
            if code in RETRYABLE:
                raise ProviderUnavailable("WeChat Pay cannot share now; retry", provider_code=code) from exc
            logger.error("WeChat Pay refused a share", extra={"out_order_no": share.out_order_no, "code": code})
            count("WeChatPayProfitSharingNeedingAttention")
            return self._write(share, lambda current: current.refused(code, self._clock.now_ms()))
        count("WeChatPayProfitSharingRequested")
        return self._settle(share, answer)

    def _add_receiver(self, receiver: ps.Receiver) -> None:
        """`receivers/add` (WeChat Pay keeps receivers; adding one again is harmless). A merchant receiver
        carries its 商户全称, which WeChat Pay requires, encrypted with WeChat Pay's key (RSAES-OAEP, its
        敏感信息加密), the request's Wechatpay-Serial naming that key; WeChat Pay checks the name against
        the merchant id and refuses a mismatch (PARAM_ERROR: the share is refused and listed)."""
        body = receiver.add_body(self._merchant.appid)
        if receiver.type != ps.MERCHANT_ID:
            self._client.post(ps.RECEIVERS_ADD_PATH, body)
            return
        account = self._accounts.account(receiver.role, receiver.payee_id)
        name = account.name if account is not None and account.account == receiver.account else None
        if not name:  # sent without: WeChat Pay refuses it, and the share is listed for finance
            logger.error("a merchant receiver has no name to add it with", extra={"payee": receiver.payee})
            self._client.post(ps.RECEIVERS_ADD_PATH, body)
            return
        key = self._merchant.platform.for_encryption(self._clock.now_ms() / 1000)
        body = receiver.add_body(self._merchant.appid, crypto.encrypt_sensitive(key.public_key, name))
        self._client.post(ps.RECEIVERS_ADD_PATH, body, encrypted_with=key.serial)

    def _settle(self, share: ps.ProfitShare, answer: dict[str, Any]) -> ps.ProfitShare:
        try:
            state = ps.ShareState.of(answer)
        except ValueError as exc:
            raise ProviderUnavailable("WeChat Pay's share answer is not one") from exc
        if state.out_order_no != share.out_order_no:
            raise ProviderUnavailable("WeChat Pay answered for another share", out_order_no=state.out_order_no)
        after = self._write(share, lambda current: current.answered(state, self._clock.now_ms(), self._query_after_ms))
        if after.needs_attention and not share.needs_attention:
            count("WeChatPayProfitSharingNeedingAttention")
        return after

    # -- finance -------------------------------------------------------------------------------
    def share_of(self, order_id: str) -> ps.ProfitShare | None:
        return self._shares.get(order_id, ps.out_order_no_of(order_id))

    def needing_attention(self, limit: int) -> list[ps.ProfitShare]:
        return self._shares.needing_attention(limit)

    # -- the query job -------------------------------------------------------------------------
    def settle_due(self, limit: int = 100) -> dict[str, int]:
        """Each open share whose check is due: a WAITING one is shared once its entries became
        settleable, a PENDING one (its answer was lost) is asked for again with its number, a PROCESSING
        one is queried. Resumable: a finished share leaves the index, an open one is checked later."""
        counts = {"checked": 0, "finished": 0, "still_open": 0, "unavailable": 0}
        for share in self._shares.due(self._clock.now_ms(), limit):
            counts["checked"] += 1
            try:
                if share.status in (ps.WAITING, ps.PENDING):
                    after = self._advance(share)
                else:
                    after = self._settle(share, self._client.get(share.query_path()))
            except (ProviderUnavailable, ProviderRefused) as exc:
                logger.warning("share query failed", extra={"out_order_no": share.out_order_no, "code": exc.code})
                counts["unavailable"] += 1
                self._write(share, lambda current: current.retry_later(self._clock.now_ms(), self._query_after_ms))
                continue
            counts["still_open" if after.is_open else "finished"] += 1
        return counts

    # -- refunds of shared orders -----------------------------------------------------------------
    def refund_issued(self, order_id: str, refund_id: str) -> ps.ProfitShare | None:
        """Before a refund of a shared order is asked for: each merchant receiver returns what the
        refund clawed back from it (the ledger's clawback entries of that refund), once per refund and
        receiver (out_return_no derived). None when the order was not shared. TemporarilyUnavailable
        while the share is still open or the ledger has not clawed back yet: the refund waits."""
        share = self._shares.get(order_id, ps.out_order_no_of(order_id))
        if share is None or share.status == ps.REFUSED:
            return None
        if share.status == ps.WAITING:
            return share  # nothing shared yet: the refund comes out of the frozen funds
        if share.is_open:
            raise TemporarilyUnavailable("the order's share is still being made; refund after it")
        # No clawback heard yet (the ledger's consumer is behind): nothing to return now; WeChat Pay then
        # refuses a refund the unshared funds cannot cover (NOT_ENOUGH, retried) until it has.
        clawbacks = [e for e in self._owed.entries(order_id) if e.refund_id == refund_id]
        decided = {r.out_return_no: r for r in share.returns if r.refund_id == refund_id}
        for ret in ps.returns_for_refund(share, refund_id, clawbacks):
            share = self._return(share, decided.get(ret.out_return_no, ret))
        return share

    def _return(self, share: ps.ProfitShare, ret: ps.ShareReturn) -> ps.ProfitShare:
        known = next((r for r in share.returns if r.out_return_no == ret.out_return_no), None)
        if known is not None and known.result in ("SUCCESS", "FAILED"):
            return share
        if known is None:
            # Kept (and its clawbacks claimed, so no statement takes them too) before it is asked for.
            try:
                share = self._write(share, lambda current: current.with_return(ret))
            except ps.EntryTaken as exc:
                raise TemporarilyUnavailable("a clawback was settled meanwhile; decide the returns again") from exc
        try:
            answer = self._client.post(ps.RETURNS_PATH, ret.body(share.out_order_no))
            result = str(answer.get("result") or "PROCESSING")
        except ProviderRefused as exc:
            code = str(exc.details.get("provider_code", ""))
            if code in RETRYABLE:
                raise ProviderUnavailable("WeChat Pay cannot return now; retry", provider_code=code) from exc
            logger.error("WeChat Pay refused a return", extra={"out_return_no": ret.out_return_no, "code": code})
            count("WeChatPayProfitSharingNeedingAttention")
            result = "FAILED"
        if result == "PROCESSING":
            # Not ended yet: keep it, and let the queue retry the refund until it is.
            self._write(share, lambda current: current.with_return(ret))
            raise TemporarilyUnavailable("the share's return is processing; retry", out_return_no=ret.out_return_no)
        # FAILED gives its clawbacks' claims back: the next statement takes them off the payee.
        return self._write(share, lambda current: current.with_return(_with_result(ret, result)))

    def _write(self, current: ps.ProfitShare, decide: Callable[[ps.ProfitShare], ps.ProfitShare]) -> ps.ProfitShare:
        return write_decided(
            current, decide, self._shares.change, lambda s: self._shares.get(s.order_id, s.out_order_no), "share"
        )


def _with_result(ret: ps.ShareReturn, result: str) -> ps.ShareReturn:
    return replace(ret, result=result if result in ("SUCCESS", "FAILED") else "PROCESSING")
