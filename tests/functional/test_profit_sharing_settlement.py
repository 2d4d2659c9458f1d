"""Profit sharing and settlement runs over the same ledger, on moto against the local WeChat Pay on HTTP
(docs/commission.md, "Two payout channels"; docs/payments.md, "Profit sharing and settlement runs"):
each ledger entry is claimed by one payout channel, so an order's commissions are paid once whichever
comes first, including when the two meet over the same entries (interleaved at the worst step, and
in threads against the serialised emulator)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from chalice.test import Client

from infra.local.runner import EventRunner
from infra.local.wechatpay_server import LocalWeChatPay
from shared.commission.ledger_model import entry_shard
from shared.data.stores.commission import DynamoLedger
from shared.data.stores.settlement import DynamoSettlements
from shared.kernel.clock import SYSTEM, iso, now_ms
from shared.payments import profit_sharing_model as ps
from shared.platform import bootstrap
from shared.settlement.runs import SettlementRuns
from tests.conftest import bearer
from tests.functional.commission_support import call, drain
from tests.functional.test_profit_sharing import later, paid_and_completed, share_item
from tests.functional.test_profit_sharing import wechatpay as wechatpay  # the fixture, re-exported
from tests.functional.test_wechatpay_refunds import refund_approved

EARNED = {"dealer:D001": 400, "store:S001": 640, "guide:G001": 240}  # 5%, 8%, 3% of 80 yuan
ACCOUNT_OF = {"dealer:D001": "1900000201", "store:S001": "1900000301", "guide:G001": "oGUIDE001"}


def settle_period(client: Client, finance: str) -> str:
    """A settlement run to the last whole second, over HTTP, worked off."""
    period_end = iso((now_ms() - 1) // 1000 * 1000)
    started = client.http.post(
        "/finance/settlements", headers=bearer(finance), body=json.dumps({"period_end": period_end})
    )
    assert started.status_code == 202, started.json_body
    drain()
    return str(started.json_body["run_id"])


def run_of(client: Client, finance: str, run_id: str) -> dict[str, Any]:
    return call(client, "get", f"/finance/settlements/{run_id}", finance).json_body


def statement(client: Client, finance: str, run_id: str) -> dict[str, dict[str, str]]:
    body = call(client, "get", f"/finance/settlements/{run_id}/statement.csv", finance).body
    text = (body.decode("utf-8") if isinstance(body, bytes) else body).lstrip("\ufeff")
    header, *lines = [line.split(",") for line in text.splitlines()]
    return {f"{r[0]}:{r[1]}": dict(zip(header, r, strict=True)) for r in lines}


def payouts(order_id: str) -> dict[str, str | None]:
    return {e.entry_id: e.payout for e in DynamoLedger().entries(order_id)}


def shared_at_wechatpay(wechatpay: LocalWeChatPay) -> dict[str, int]:
    """What the local WeChat Pay shared, per receiver account, over every share it was asked for."""
    shared: dict[str, int] = {}
    for share in wechatpay.profit_sharing.shares.values():
        for r in share.params.get("receivers") or []:
            shared[r["account"]] = shared.get(r["account"], 0) + r["amount"]
    return shared


def stored_share(order_id: str) -> ps.ProfitShare:
    return ps.share_from_dict(json.loads(share_item(order_id).doc))


def test_an_order_whose_entries_were_shared_is_not_on_the_next_statement_and_its_clawbacks_land_once(
    client, tokens, wechatpay
):
    finance = tokens["finance"]
    order = paid_and_completed(client, tokens, wechatpay)
    oid = order["order_id"]
    assert bootstrap.profit_sharing(later(3)).settle_due()["still_open"] == 1  # asked; PROCESSING
    claim = ps.claim_of(ps.out_order_no_of(oid))
    assert set(payouts(oid).values()) == {claim}  # claimed in the write that fixed the receivers
    assert shared_at_wechatpay(wechatpay) == {ACCOUNT_OF[p]: fen for p, fen in EARNED.items()}

    run_id = settle_period(client, finance)
    run = run_of(client, finance, run_id)
    assert (run["status"], run["processed"], run["total"], run["total_fen"]) == ("DONE", 3, 3, 0)
    assert (run["profit_shared_entries"], run["profit_shared_fen"]) == (3, 1_280)
    rows = statement(client, finance, run_id)
    assert {p: (r["gross_fen"], r["net_fen"], r["entries"]) for p, r in rows.items()} == {
        p: ("0", "0", "0") for p in EARNED
    }
    assert {p: (r["profit_shared_entries"], r["profit_shared_fen"]) for p, r in rows.items()} == {
        p: ("1", str(fen)) for p, fen in EARNED.items()
    }
    # the guide's ledger: paid (by profit sharing), none of it settleable again
    summary = call(client, "get", "/me/commissions", tokens["guide"]).json_body["summary"]
    assert (summary["settled_fen"], summary["settleable_fen"]) == (240, 0)

    # A refund after both: the merchant receivers give theirs back through WeChat Pay; the guide's
    # clawback (a personal receiver cannot return) is the next statement's negative line, once.
    wechatpay.profit_sharing.finish_shares()
    assert bootstrap.profit_sharing(later(60)).settle_due()["finished"] == 1
    refund_approved(client, tokens, oid, 2)
    EventRunner(quiet=True).drain(timeout_s=90, quiet_s=3)
    returns = {r.params["return_mchid"]: r.params["amount"] for r in wechatpay.profit_sharing.returns.values()}
    assert returns == {"1900000201": 400, "1900000301": 640}
    time.sleep(1.1)  # the next period ends after the clawbacks became due
    second = settle_period(client, finance)
    rows = statement(client, finance, second)
    assert (rows["guide:G001"]["clawbacks_fen"], rows["guide:G001"]["net_fen"]) == ("240", "-240")
    for payee in ("dealer:D001", "store:S001"):  # returned: left out, never deducted twice
        assert (rows[payee]["net_fen"], rows[payee]["profit_shared_fen"]) == ("0", str(-EARNED[payee]))
    # every entry of the order paid (or clawed back) by exactly one channel: the guide's clawback by
    # the second statement, everything else by profit sharing (shared, or returned)
    for entry_id, payout in payouts(oid).items():
        guides_clawback = entry_id.startswith("R#") and entry_id.endswith("#guide")
        assert payout == (f"settlement#{second}" if guides_clawback else claim), entry_id


def test_an_order_settled_first_is_not_shared_only_unfrozen_and_the_share_lists_it(client, tokens, wechatpay):
    finance = tokens["finance"]
    order = paid_and_completed(client, tokens, wechatpay)
    oid = order["order_id"]
    run_id = settle_period(client, finance)
    assert run_of(client, finance, run_id)["total_fen"] == 1_280
    assert set(payouts(oid).values()) == {f"settlement#{run_id}"}

    assert bootstrap.profit_sharing(later(3)).settle_due()["checked"] == 1
    share = stored_share(oid)
    assert share.status == ps.FINISHED and share.receivers == () and share.unfrozen and share.claimed == ()
    assert {a.payee: a.amount_fen for a in share.settled_apart} == EARNED
    assert shared_at_wechatpay(wechatpay) == {}  # nothing shared: the merchant got it all back
    assert wechatpay.profit_sharing.held_fen(wechatpay.transactions[oid[1:]]) == 0
    seen = call(client, "get", f"/finance/orders/{oid}/profit-sharing", finance).json_body
    assert {a["payee"]: a["amount_fen"] for a in seen["settled_apart"]} == EARNED


def test_a_run_that_read_the_entries_before_the_share_claimed_them_leaves_them_out(client, tokens, wechatpay):
    """The run's page is read, then the share job claims and asks, then the run's batch is written."""
    finance = tokens["finance"]
    order = paid_and_completed(client, tokens, wechatpay)
    oid = order["order_id"]
    ledger = bootstrap.commission_ledger_store()

    class ShareJobAfterTheRead:
        done = False

        def due(self, *args: Any) -> list:
            page = ledger.due(*args)
            if page and not self.done:
                self.done = True
                assert bootstrap.profit_sharing(later(3)).settle_due()["still_open"] == 1
            return page

    runs = SettlementRuns(DynamoSettlements(), ShareJobAfterTheRead(), lambda p: (None, None), SYSTEM)  # type: ignore[arg-type]
    run = runs.start((now_ms() - 1) // 1000 * 1000)
    assert runs.settle_shard(run.run_id, entry_shard(oid), first=True) == 3  # left out, not paid
    drain()  # the shards' messages: the other shards finish, this one finds nothing left
    view = run_of(client, finance, run.run_id)
    assert (view["status"], view["total_fen"], view["profit_shared_fen"]) == ("DONE", 0, 1_280)
    assert shared_at_wechatpay(wechatpay) == {ACCOUNT_OF[p]: fen for p, fen in EARNED.items()}
    assert set(payouts(oid).values()) == {ps.claim_of(ps.out_order_no_of(oid))}


def test_a_share_that_read_the_entries_before_a_run_settled_them_pays_none_of_them(
    client, tokens, wechatpay, monkeypatch: pytest.MonkeyPatch
):
    """The share job reads the entries, then a whole settlement run pays them, then the job claims."""
    finance = tokens["finance"]
    order = paid_and_completed(client, tokens, wechatpay)
    oid = order["order_id"]
    read = bootstrap.LedgerOwed.entries
    runs: list[str] = []

    def run_after_the_read(self: bootstrap.LedgerOwed, order_id: str) -> list[ps.OwedEntry]:
        seen = read(self, order_id)
        if not runs:
            runs.append(settle_period(client, finance))
        return seen

    monkeypatch.setattr(bootstrap.LedgerOwed, "entries", run_after_the_read)
    assert bootstrap.profit_sharing(later(3)).settle_due()["finished"] == 1
    (run_id,) = runs
    assert run_of(client, finance, run_id)["total_fen"] == 1_280
    share = stored_share(oid)
    assert share.receivers == () and share.unfrozen and {a.payee: a.amount_fen for a in share.settled_apart} == EARNED
    assert shared_at_wechatpay(wechatpay) == {}
    assert set(payouts(oid).values()) == {f"settlement#{run_id}"}


def test_a_run_and_the_share_job_at_once_pay_each_entry_exactly_once(client, tokens, wechatpay):
    finance = tokens["finance"]
    orders = [paid_and_completed(client, tokens, wechatpay)["order_id"] for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        shared = pool.submit(lambda: bootstrap.profit_sharing(later(3)).settle_due())
        settled = pool.submit(settle_period, client, finance)
        shared.result()
        run_id = settled.result()
    drain()
    view = run_of(client, finance, run_id)
    assert view["status"] == "DONE" and view["processed"] == view["total"] == 6
    at_wechatpay = sum(shared_at_wechatpay(wechatpay).values())
    by_run = {e: p for oid in orders for e, p in payouts(oid).items()}
    assert all(p is not None for p in by_run.values())  # every entry claimed by one channel
    # each order's 1,280 fen paid once: by the statement or by WeChat Pay, never by both
    assert view["total_fen"] + at_wechatpay == 2 * 1_280
    assert view["profit_shared_fen"] == at_wechatpay
    for oid in orders:
        share = stored_share(oid)
        on_statement = sum(a.amount_fen for a in share.settled_apart)
        assert share.shared_fen + on_statement == 1_280
