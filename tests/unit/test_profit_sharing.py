"""Profit sharing through WeChat Pay (shared/payments/profit_sharing.py, docs/payments.md "Profit sharing")
on in-memory ports against the local WeChat Pay in-process: the share computation and the request
bodies (pure), then a share asked once and confirmed by query, its answer lost, PROCESSING answers,
refusals, the maximum ratio, and refunds that need the merchant receivers' shares returned first."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.local.wechatpay_profit_sharing import ORDERS, RECEIVERS_ADD, RETURNS, UNFREEZE
from shared.kernel.errors import TemporarilyUnavailable
from shared.payments import profit_sharing_model as ps
from shared.payments.model import ProviderUnavailable
from tests.fakes.profit_sharing import ACCOUNTS, ProfitSharingWorld, earnings

NUMBER = re.compile(r"[0-9A-Za-z_|*@-]{1,64}")
ORDER_ID = "o" + "ab" * 16


@pytest.fixture
def world() -> ProfitSharingWorld:
    return ProfitSharingWorld.build()


def posts(world: ProfitSharingWorld, path: str) -> list[dict]:
    return [body for method, p, body in world.base.wechatpay.requests if method == "POST" and p == path]


# -- pure: what is owed, to whom, within the ratio ------------------------------------------------------
def test_receivers_are_the_net_per_payee_and_one_per_account():
    entries = [
        *earnings(dealer=300, store=500, guide=800, distributor_1=200, distributor_2=100),
        ps.OwedEntry("guide", "G001", -300, "SETTLEABLE", refund_id="r1"),
        ps.OwedEntry("store", "S001", -500, "SETTLEABLE", refund_id="r1"),  # all of it clawed back
    ]
    receivers = ps.receivers_of(entries, ACCOUNTS, total_fen=10_000)
    got = {(r.type, r.account): r.amount_fen for r in receivers}
    assert got == {
        ("MERCHANT_ID", "1900000201"): 300,
        ("PERSONAL_OPENID", "oGUIDE001"): 500,
        ("PERSONAL_OPENID", "oLI"): 300,  # levels 1 and 2 of one distributor: one receiver
    }


def test_a_share_past_the_maximum_ratio_is_refused_whole_never_trimmed():
    entries = earnings(dealer=2000, guide=1001)
    assert sum(r.amount_fen for r in ps.receivers_of(earnings(dealer=2000, guide=1000), ACCOUNTS, 10_000)) == 3000
    with pytest.raises(ps.OverMaximumRatio):
        ps.receivers_of(entries, ACCOUNTS, 10_000)
    with pytest.raises(ps.OverMaximumRatio):
        ps.receivers_of(earnings(dealer=2000), ACCOUNTS, 10_000, max_ratio_bp=1999)


def test_a_payee_without_an_account_is_refused():
    with pytest.raises(ps.NoReceiverAccount):
        ps.receivers_of(earnings(dealer=100), {}, 10_000)


def test_not_settleable_until_every_entry_is():
    assert not ps.settleable([])
    assert not ps.settleable([*earnings(dealer=1), *earnings("FROZEN", guide=1)])
    assert ps.settleable([*earnings(dealer=1), *earnings("SETTLED", guide=1)])


def test_out_order_no_is_derived_and_in_wechat_pays_alphabet():
    assert ps.out_order_no_of(ORDER_ID) == ps.out_order_no_of(ORDER_ID)
    assert ps.out_order_no_of(ORDER_ID) != ps.out_order_no_of(ORDER_ID, split=2)
    assert NUMBER.fullmatch(ps.out_order_no_of(ORDER_ID))
    assert NUMBER.fullmatch(ps.out_order_no_of("an order / with spaces" * 5))
    assert NUMBER.fullmatch(ps.out_return_no_of("r1", "1900000201"))


def test_the_order_body_has_wechat_pays_fields():
    share = ps.ProfitShare(
        "PSo1-1", "o1", "4200000001", 10_000, ps.receivers_of(earnings(dealer=300, guide=200), ACCOUNTS, 10_000)
    )
    body = share.order_body("wxAPP")
    assert body == {
        "appid": "wxAPP",
        "transaction_id": "4200000001",
        "out_order_no": "PSo1-1",
        "receivers": [
            {"type": "MERCHANT_ID", "account": "1900000201", "amount": 300, "description": "commission dealer"},
            {"type": "PERSONAL_OPENID", "account": "oGUIDE001", "amount": 200, "description": "commission guide"},
        ],
        "unfreeze_unsplit": True,
    }
    assert share.receivers[0].add_body("wxAPP") == {
        "appid": "wxAPP",
        "type": "MERCHANT_ID",
        "account": "1900000201",
        "relation_type": "PARTNER",
    }
    assert share.query_path() == "/v3/profitsharing/orders/PSo1-1?transaction_id=4200000001"


amounts = st.integers(min_value=-500, max_value=2000)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(list(ACCOUNTS)), amounts), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=100_000),
)
def test_the_books_close_whatever_the_entries(pairs, total):
    """What is shared plus what stays in the payees' ledgers is exactly what the ledger owes, never more
    than the ratio of what was paid; the merchant keeps the rest (paid - shared)."""
    entries = [ps.OwedEntry(role, payee, fen, "SETTLEABLE") for (role, payee), fen in pairs]
    owed = ps.owed_by_payee(entries)
    try:
        receivers = ps.receivers_of(entries, ACCOUNTS, total)
    except ps.OverMaximumRatio:
        assert sum(v for v in owed.values() if v > 0) > total * 3000 // 10_000
        return
    shared = sum(r.amount_fen for r in receivers)
    carried = sum(v for v in owed.values() if v <= 0)
    assert shared + carried == sum(e.amount_fen for e in entries)
    assert shared <= total * 3000 // 10_000
    assert all(r.amount_fen > 0 for r in receivers)


# -- sharing against the local WeChat Pay -------------------------------------------------------------
def test_an_order_is_shared_once_and_confirmed_by_query(world):
    paid = world.paid_order(10_000, earnings(dealer=300, store=500, guide=800))
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.PROCESSING
    assert {b["account"] for b in posts(world, RECEIVERS_ADD)} == {"1900000201", "1900000301", "oGUIDE001"}
    (request,) = posts(world, ORDERS)
    assert request["transaction_id"] == paid.transaction_id and request["unfreeze_unsplit"] is True
    assert sum(r["amount"] for r in request["receivers"]) == 1600

    again = world.sharing.share_order(paid.order_id)  # the job's next pass: nothing asked
    assert again == share and len(posts(world, ORDERS)) == 1

    world.clock.advance(61_000 / 1000)
    assert world.sharing.settle_due()["still_open"] == 1  # WeChat Pay still PROCESSING
    world.base.wechatpay.profit_sharing.finish_shares()
    world.clock.advance(200_000 / 1000)
    assert world.sharing.settle_due() == {"checked": 1, "finished": 1, "still_open": 0, "unavailable": 0}
    done = world.shares.get(paid.order_id, share.out_order_no)
    assert done is not None and done.status == ps.FINISHED and done.unfrozen
    assert [r.result for r in done.receivers] == ["SUCCESS"] * 3
    world.clock.advance(10_000_000 / 1000)
    assert world.sharing.settle_due()["checked"] == 0  # left the index
    (kept,) = world.base.wechatpay.profit_sharing.shares.values()
    assert kept.requests == 1 and kept.unfrozen


def test_a_paid_order_waits_for_its_after_sale_window_then_the_job_shares_it(world):
    paid = world.paid_order(10_000, earnings("FROZEN", dealer=300))
    waiting = world.sharing.watch(paid.order_id)
    assert waiting is not None and waiting.status == ps.WAITING
    assert world.sharing.share_order("o" + "cd" * 16) is None  # not paid
    world.clock.advance(61)
    assert world.sharing.settle_due()["still_open"] == 1  # still FROZEN: waits again, backing off
    (stored,) = world.shares.items.values()
    assert stored.status == ps.WAITING and stored.next_check_at_ms > world.clock.now_ms() + 60_000
    assert posts(world, ORDERS) == []
    world.owed.by_order[paid.order_id] = earnings(dealer=300)  # the window closed: SETTLEABLE
    world.clock.advance(200)
    assert world.sharing.settle_due()["still_open"] == 1  # asked: PROCESSING
    (request,) = posts(world, ORDERS)
    assert request["receivers"][0]["amount"] == 300


def test_a_lost_answer_is_asked_again_with_the_same_number_and_shares_once(world):
    paid = world.paid_order(10_000, earnings(dealer=300, guide=200))
    wechatpay = world.base.wechatpay
    handle = wechatpay.handle

    def share_answer_lost(method, path, headers, body):
        reply = handle(method, path, headers, body)
        if path == ORDERS:
            wechatpay.handle = handle  # once
            world.base.transport.lose_next_answer = 1  # the share is made, its answer lost
        return reply

    wechatpay.handle = share_answer_lost
    with pytest.raises(ProviderUnavailable):
        world.sharing.share_order(paid.order_id)
    (stored,) = world.shares.items.values()
    assert stored.status == ps.PENDING
    world.clock.advance(61_000 / 1000)
    assert world.sharing.settle_due()["still_open"] == 1
    numbers = {b["out_order_no"] for b in posts(world, ORDERS)}
    assert numbers == {stored.out_order_no}
    (kept,) = world.base.wechatpay.profit_sharing.shares.values()
    assert kept.requests == 2 and kept.shared_fen() == 500  # asked twice, shared once


def test_no_answer_then_the_next_pass_shares_once(world):
    paid = world.paid_order(10_000, earnings(store=700))
    world.base.wechatpay.profit_sharing.faults.share_finish_s = None
    world.base.transport.lose_next_answer = 0
    world.base.transport.fail_next = 1  # WeChat Pay did not answer the receiver at all
    with pytest.raises(ProviderUnavailable):
        world.sharing.share_order(paid.order_id)
    assert posts(world, ORDERS) == []
    assert world.sharing.share_orders([paid.order_id, paid.order_id]) == {
        "shared": 1,
        "waiting": 0,
        "not_paid": 0,
        "unavailable": 0,
        "refused": 0,
    }
    assert len(posts(world, ORDERS)) == 1


def test_an_order_with_nothing_owed_is_unfrozen_whole(world):
    paid = world.paid_order(10_000, [*earnings(guide=300), ps.OwedEntry("guide", "G001", -300, "SETTLEABLE", "r1")])
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.FINISHED and share.unfrozen and share.receivers == ()
    assert posts(world, ORDERS) == [] and len(posts(world, UNFREEZE)) == 1
    assert world.sharing.share_order(paid.order_id) == share


def test_an_order_that_credited_nobody_is_unfrozen_whole_after_ten_waits_and_a_late_entry_is_left_unclaimed(world):
    # Given a paid order (flagged for sharing) whose ledger has no entry: nobody was credited
    paid = world.paid_order(10_000, [])
    assert world.sharing.watch(paid.order_id).status == ps.WAITING
    # When the job looks at it before ten first waits have passed, Then it keeps waiting (the
    # commission consumer may not have written the order's entries yet)
    world.clock.advance(9 * 60)
    assert world.sharing.settle_due()["still_open"] == 1
    assert posts(world, UNFREEZE) == [] and posts(world, ORDERS) == []
    # When it looks again after ten
    world.clock.advance(10 * 60)
    assert world.sharing.settle_due() == {"checked": 1, "finished": 1, "still_open": 0, "unavailable": 0}
    # Then its money is unfrozen to the merchant, nothing shared, nothing claimed
    share = world.shares.get(paid.order_id, ps.out_order_no_of(paid.order_id))
    assert share.status == ps.FINISHED and share.unfrozen and share.receivers == () and not share.claimed_entries
    assert len(posts(world, UNFREEZE)) == 1 and posts(world, ORDERS) == []
    # And an entry the ledger writes after that stays unclaimed, for its statement
    world.owed.by_order[paid.order_id] = earnings(dealer=300)
    assert world.sharing.share_order(paid.order_id) == share
    assert [e.payout for e in world.owed.entries(paid.order_id)] == [None]


def test_over_the_ratio_nothing_is_asked_and_finance_sees_it(world):
    paid = world.paid_order(1_000, earnings(dealer=301))
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.REFUSED and share.refusal == "PROFIT_SHARING_OVER_RATIO"
    assert posts(world, ORDERS) == [] and posts(world, RECEIVERS_ADD) == []
    assert world.shares.needing_attention(10) == [share]


def test_wechat_pays_refusal_is_final_and_listed(world):
    paid = world.paid_order(10_000, earnings(dealer=100))
    world.accounts.by_payee[("dealer", "D001")] = ps.ReceiverAccount(ps.MERCHANT_ID, world.base.wechatpay.keys.mchid)
    share = world.sharing.share_order(paid.order_id)  # the merchant itself cannot receive
    assert share is not None and share.status == ps.REFUSED and share.refusal == "INVALID_REQUEST"
    world.clock.advance(10_000_000 / 1000)
    assert world.sharing.settle_due()["checked"] == 0
    assert world.shares.needing_attention(10) == [share]


def test_a_closed_receiver_is_listed_for_finance(world):
    paid = world.paid_order(10_000, earnings(guide=100))
    world.base.wechatpay.profit_sharing.faults.share_receiver_outcome = "CLOSED"
    world.sharing.share_order(paid.order_id)
    world.base.wechatpay.profit_sharing.finish_shares()
    world.clock.advance(61_000 / 1000)
    world.sharing.settle_due()
    (share,) = world.shares.items.values()
    assert share.status == ps.FINISHED and share.receivers[0].result == "CLOSED" and share.needs_attention


def test_a_late_processing_answer_never_reopens_a_finished_share(world):
    paid = world.paid_order(10_000, earnings(dealer=100))
    first = world.sharing.share_order(paid.order_id)
    assert first is not None
    finished = first.answered(ps.ShareState(first.out_order_no, ps.FINISHED, "30x", ()), world.clock.now_ms(), 60_000)
    late = finished.answered(ps.ShareState(first.out_order_no, ps.PROCESSING, "30x", ()), 0, 60_000)
    assert late is finished


# -- refunds of shared orders ---------------------------------------------------------------------------
def test_a_refund_of_a_shared_order_returns_the_merchant_receivers_share_first(world):
    paid = world.paid_order(10_000, earnings(dealer=300, store=500, guide=800))
    world.sharing.share_order(paid.order_id)
    world.base.wechatpay.profit_sharing.finish_shares()
    world.clock.advance(61_000 / 1000)
    world.sharing.settle_due()
    # The whole order refunded: WeChat Pay refuses until the receivers' 1,600 fen are back.
    refund = {"order_id": paid.order_id, "refund_id": "r-all", "amount_fen": 10_000}
    with pytest.raises(ProviderUnavailable):  # NOT_ENOUGH: retried
        world.refunds.refund_issued(refund)
    world.owed.by_order[paid.order_id] += [
        ps.OwedEntry("dealer", "D001", -300, "SETTLEABLE", "r-all", "R#r-all#SKU-1#dealer"),
        ps.OwedEntry("store", "S001", -500, "SETTLEABLE", "r-all", "R#r-all#SKU-1#store"),
        ps.OwedEntry("guide", "G001", -800, "SETTLEABLE", "r-all", "R#r-all#SKU-1#guide"),
    ]
    share = world.sharing.refund_issued(paid.order_id, "r-all")
    assert share is not None and share.returned_fen == 800  # dealer and store; a guide cannot return
    # The returned clawbacks are the share's (no statement takes them again); the guide's is the next statement's.
    payouts = {e.entry_id: e.payout for e in world.owed.entries(paid.order_id) if e.refund_id}
    assert payouts == {
        "R#r-all#SKU-1#dealer": share.claim,
        "R#r-all#SKU-1#store": share.claim,
        "R#r-all#SKU-1#guide": None,
    }
    assert world.sharing.refund_issued(paid.order_id, "r-all") == share  # once
    assert sorted(b["amount"] for b in posts(world, RETURNS)) == [300, 500]
    # What the guide holds (800) still blocks a full refund: it is its ledger's to take back.
    with pytest.raises(ProviderUnavailable):
        world.refunds.refund_issued(refund)
    partial = world.refunds.refund_issued({**refund, "refund_id": "r-part", "amount_fen": 9_200})
    assert partial is not None and partial.refund_fen == 9_200
    # The books at WeChat Pay: paid = refunded + what the guide still holds; nothing is left unshared
    trade = world.base.wechatpay.transactions[paid.order_id[1:]]
    assert world.base.wechatpay.refunded_fen(trade) == 9_200
    assert world.base.wechatpay.profit_sharing.held_fen(trade) == 800
    assert world.base.wechatpay.unshared_fen(trade) == 0


def test_a_refund_before_sharing_returns_nothing(world):
    paid = world.paid_order(10_000, earnings("FROZEN", dealer=300))
    world.sharing.watch(paid.order_id)
    share = world.sharing.refund_issued(paid.order_id, "r1")
    assert share is not None and share.status == ps.WAITING and posts(world, RETURNS) == []
    assert world.refunds.refund_issued({"order_id": paid.order_id, "refund_id": "r1", "amount_fen": 10_000})


def test_a_refund_of_an_order_being_shared_waits(world):
    paid = world.paid_order(10_000, earnings(dealer=300))
    world.sharing.share_order(paid.order_id)
    with pytest.raises(TemporarilyUnavailable):
        world.sharing.refund_issued(paid.order_id, "r1")
    assert world.sharing.refund_issued("o" + "ef" * 16, "r1") is None  # never shared: nothing to return


def test_payout_accounts_name_a_merchant_id_or_an_openid():
    assert ps.receiver_account_of("wechatpay:merchant:1900000201") == ps.ReceiverAccount(ps.MERCHANT_ID, "1900000201")
    assert ps.receiver_account_of("wechatpay:openid:oGUIDE") == ps.ReceiverAccount(ps.PERSONAL_OPENID, "oGUIDE")
    for other in (None, "", "CMB 6225 0000", "wechatpay:merchant:", "wechatpay:bank:1", "alipay:openid:x"):
        assert ps.receiver_account_of(other) is None


def test_a_merchants_name_goes_with_its_account_and_a_persons_does_not():
    merchant = ps.receiver_account_of("wechatpay:merchant:1900000201", "华东经销商贸易有限公司")
    assert merchant == ps.ReceiverAccount(ps.MERCHANT_ID, "1900000201", "华东经销商贸易有限公司")
    assert ps.receiver_account_of("wechatpay:openid:oGUIDE", "王芳") == ps.ReceiverAccount(ps.PERSONAL_OPENID, "oGUIDE")


@pytest.mark.parametrize("mode", ["public_key", "certificate"])
def test_a_merchant_receiver_is_added_with_its_name_encrypted_for_wechat_pays_key(mode):
    world = ProfitSharingWorld.build(mode=mode)
    # Given an order owing a dealer, a store and a guide
    paid = world.paid_order(10_000, earnings(dealer=300, store=500, guide=800))
    # When it is shared
    assert world.sharing.share_order(paid.order_id) is not None
    # Then each merchant receiver was added with its 商户全称, never in clear: the local WeChat Pay opened
    # it with its platform key, named by the request's Wechatpay-Serial; the guide was added without one
    sent = {b["account"]: b for b in posts(world, RECEIVERS_ADD)}
    assert {a for a, b in sent.items() if "name" in b} == {"1900000201", "1900000301"}
    assert all(b["name"] not in ("华东经销商贸易有限公司", "上海静安茶叶店") for b in sent.values() if "name" in b)
    kept = world.base.wechatpay.profit_sharing.receivers
    assert kept[(ps.MERCHANT_ID, "1900000201")]["decrypted_name"] == "华东经销商贸易有限公司"
    assert kept[(ps.MERCHANT_ID, "1900000301")]["decrypted_name"] == "上海静安茶叶店"
    assert "name" not in kept[(ps.PERSONAL_OPENID, "oGUIDE001")]
    assert world.shares.get(paid.order_id, ps.out_order_no_of(paid.order_id)).status == ps.PROCESSING


def test_the_local_wechat_pay_refuses_a_merchant_receiver_without_its_encrypted_name(world):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from shared.payments import wechatpay_crypto as crypto

    local = world.base.wechatpay
    body = {"appid": local.keys.appid, "type": ps.MERCHANT_ID, "account": "1900000201", "relation_type": "PARTNER"}
    sealed = crypto.encrypt_sensitive(local.keys.platform_key.public_key(), "华东经销商贸易有限公司")
    another_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = crypto.encrypt_sensitive(another_key.public_key(), "华东经销商贸易有限公司")
    serial = {"wechatpay-serial": local.serial}

    def add(extra: dict, headers: dict) -> tuple[int, str]:
        reply = local.profit_sharing.route("POST", RECEIVERS_ADD, json.dumps({**body, **extra}).encode(), headers)
        assert reply is not None
        return reply.status, reply.json().get("code", "")

    assert add({}, serial) == (400, "PARAM_ERROR")  # no name
    assert add({"name": "华东经销商贸易有限公司"}, serial) == (400, "PARAM_ERROR")  # in clear
    assert add({"name": other}, serial) == (400, "PARAM_ERROR")  # another key's
    assert add({"name": sealed}, {}) == (400, "PARAM_ERROR")  # no Wechatpay-Serial
    assert add({"name": sealed}, {"wechatpay-serial": "PUB_KEY_ID_OTHER"}) == (400, "PARAM_ERROR")
    assert local.profit_sharing.receivers == {}
    assert add({"name": sealed}, serial)[0] == 200
    assert local.profit_sharing.receivers[(ps.MERCHANT_ID, "1900000201")]["decrypted_name"] == "华东经销商贸易有限公司"


def test_a_merchant_receiver_without_a_name_is_refused_by_wechat_pay_and_the_share_listed(world):
    world.accounts.by_payee[("dealer", "D001")] = ps.ReceiverAccount(ps.MERCHANT_ID, "1900000201")
    paid = world.paid_order(10_000, earnings(dealer=300, guide=800))
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.REFUSED and share.needs_attention
    assert posts(world, ORDERS) == []


def test_a_share_reads_back_as_stored():
    share = ps.ProfitShare(
        "PSo1-1", "o1", "42", 10_000, ps.receivers_of(earnings(dealer=300), ACCOUNTS, 10_000), status=ps.FINISHED
    ).with_return(ps.ShareReturn("PR1", "r1", "1900000201", 300, "SUCCESS"))
    assert ps.share_from_dict(ps.share_to_dict(share)) == share


def test_only_an_order_that_may_pay_commission_is_flagged_and_watched_with_profit_sharing_on(world):
    from dataclasses import replace as replaced

    from shared.payments.wechatpay import WeChatPayments
    from tests.fakes.payments import merchant

    watched: list[str] = []
    base = world.base
    # (profit sharing on, the order may pay commission): only an order that may, with the setting on
    cases = {"1": (False, True), "2": (True, True), "3": (True, False), "4": (False, False)}
    for digit, (sharing_on, may_credit) in cases.items():
        the_merchant = replaced(merchant(), profit_sharing=sharing_on)
        client = world.sharing._client
        base.payments = WeChatPayments(
            the_merchant, client, base.payables, base.prepays, base.applied, base.clock, None, watched.append
        )
        base.wechatpay.post = base.deliver
        order = base.order("o" + digit * 32, total_fen=500, may_credit=may_credit)
        base.payments.prepay(order.order_id, "c-1", "oOPENID")
        flagged = base.wechatpay.transactions[order.order_id[1:]].params.get("settle_info")
        assert flagged == ({"profit_sharing": True} if sharing_on and may_credit else None), digit
        assert base.wechatpay.pay(order.order_id[1:], retry=False) == [204]
    assert watched == ["o" + "2" * 32]


# -- one payout channel per ledger entry: profit sharing and settlement runs ------------------------------
def payouts(world: ProfitSharingWorld, order_id: str) -> dict[str, str | None]:
    return {e.entry_id: e.payout for e in world.owed.entries(order_id)}


def test_a_share_claims_the_entries_it_pays_in_the_write_that_fixes_its_receivers(world):
    paid = world.paid_order(10_000, earnings(dealer=300, store=500, guide=800))
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.PROCESSING
    assert set(payouts(world, paid.order_id).values()) == {share.claim}
    assert share.claimed == ("P#SKU-1#dealer", "P#SKU-1#guide", "P#SKU-1#store") and share.settled_apart == ()
    # a settlement run now finds them claimed: it pays none of them
    assert world.owed.settle(paid.order_id, "run-1") == []


def test_entries_a_run_settled_first_are_left_out_of_the_share_and_listed_on_it(world):
    paid = world.paid_order(10_000, earnings(dealer=300, store=500, guide=800))
    world.owed.settle(paid.order_id, "run-1", {"P#SKU-1#guide"})
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.PROCESSING
    (request,) = posts(world, ORDERS)
    assert sorted(r["amount"] for r in request["receivers"]) == [300, 500]  # the guide's 800 was paid
    assert share.settled_apart == (ps.SettledApart("guide:G001", 1, 800),)
    assert share.view()["settled_apart"] == [{"payee": "guide:G001", "entries": 1, "amount_fen": 800}]
    assert payouts(world, paid.order_id)["P#SKU-1#guide"] == "settlement#run-1"


def test_an_order_a_run_settled_whole_is_not_shared_only_unfrozen(world):
    paid = world.paid_order(10_000, earnings(dealer=300, guide=800))
    world.owed.settle(paid.order_id, "run-1")
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.FINISHED and share.receivers == () and share.unfrozen
    assert posts(world, ORDERS) == [] and len(posts(world, UNFREEZE)) == 1
    assert share.settled_apart == (ps.SettledApart("dealer:D001", 1, 300), ps.SettledApart("guide:G001", 1, 800))


def test_a_run_settling_between_the_shares_read_and_its_claim_is_left_out_not_paid_twice(world):
    paid = world.paid_order(10_000, earnings(dealer=300, guide=800))
    read = world.owed.entries

    def run_settles_after_the_read(order_id: str) -> list[ps.OwedEntry]:
        seen = read(order_id)
        if world.owed.entries is not read:
            world.owed.entries = read  # once
            world.owed.settle(order_id, "run-1", {"P#SKU-1#dealer"})
        return seen

    world.owed.entries = run_settles_after_the_read  # type: ignore[method-assign]
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.PROCESSING
    (request,) = posts(world, ORDERS)
    assert [r["amount"] for r in request["receivers"]] == [800]  # the dealer's 300: the run's, once
    assert payouts(world, paid.order_id) == {"P#SKU-1#dealer": "settlement#run-1", "P#SKU-1#guide": share.claim}


def test_a_payee_whose_net_is_not_positive_keeps_its_entries_for_its_statement(world):
    entries = [
        *earnings(dealer=300, guide=800),
        ps.OwedEntry("guide", "G001", -800, "SETTLEABLE", "r1", "R#r1#SKU-1#guide"),
    ]
    paid = world.paid_order(10_000, entries)
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.claimed == ("P#SKU-1#dealer",)
    assert payouts(world, paid.order_id) == {
        "P#SKU-1#dealer": share.claim,
        "P#SKU-1#guide": None,
        "R#r1#SKU-1#guide": None,
    }


def test_a_share_wechat_pay_refuses_for_good_gives_its_entries_back_to_the_next_statement(world):
    paid = world.paid_order(10_000, earnings(dealer=100))
    world.accounts.by_payee[("dealer", "D001")] = ps.ReceiverAccount(ps.MERCHANT_ID, world.base.wechatpay.keys.mchid)
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.REFUSED and share.claimed == ()
    assert payouts(world, paid.order_id) == {"P#SKU-1#dealer": None}
    assert [e.entry_id for e in world.owed.settle(paid.order_id, "run-1")] == ["P#SKU-1#dealer"]


def test_a_clawback_a_run_settled_is_not_returned_again(world):
    paid = world.paid_order(10_000, earnings(dealer=300, store=500))
    world.sharing.share_order(paid.order_id)
    world.base.wechatpay.profit_sharing.finish_shares()
    world.clock.advance(61_000 / 1000)
    world.sharing.settle_due()
    world.owed.by_order[paid.order_id] += [
        ps.OwedEntry("dealer", "D001", -300, "SETTLEABLE", "r1", "R#r1#SKU-1#dealer"),
        ps.OwedEntry("store", "S001", -500, "SETTLEABLE", "r1", "R#r1#SKU-1#store"),
    ]
    world.owed.settle(paid.order_id, "run-2", {"R#r1#SKU-1#store"})  # on a statement already
    share = world.sharing.refund_issued(paid.order_id, "r1")
    assert share is not None and [b["amount"] for b in posts(world, RETURNS)] == [300]
    assert payouts(world, paid.order_id)["R#r1#SKU-1#dealer"] == share.claim


def test_an_order_with_more_entries_than_one_transaction_claims_is_refused_and_left_to_its_statement(world):
    entries = [
        ps.OwedEntry("guide", "G001", 1, "SETTLEABLE", entry_id=f"P#SKU-{n}#guide") for n in range(ps.MAX_CLAIMS + 1)
    ]
    paid = world.paid_order(10_000, entries)
    share = world.sharing.share_order(paid.order_id)
    assert share is not None and share.status == ps.REFUSED and share.refusal == ps.TOO_MANY_ENTRIES
    assert posts(world, ORDERS) == [] and set(payouts(world, paid.order_id).values()) == {None}
    assert world.shares.needing_attention(10) == [share]
