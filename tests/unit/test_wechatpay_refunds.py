"""Refunds and closes through WeChat Pay (shared/payments/wechatpay_refunds.py, docs/payments.md "Refunds")
on in-memory ports, against the local WeChat Pay in-process: the refund request, out_refund_no, the
REFUND.* notifications, the query job, payments recorded for refund, closing unpaid transactions, and
finance's side (shared/payments/provider_refunds.py)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from infra.local.wechatpay_server import REFUNDS
from shared.kernel.errors import BadSignature, InvalidTransition, NotFound
from shared.kernel.events import DomainEvent, EventType
from shared.kernel.identity import Principal, Role
from shared.payments.model import (
    FOR_PAYMENT,
    FOR_REFUND,
    PENDING,
    NotOurs,
    ProviderRefund,
    ProviderRefused,
    ProviderUnavailable,
    RefundState,
    out_refund_no_of_payment,
    out_refund_no_of_refund,
)
from shared.payments.ports import RecordedPayment
from shared.payments.provider_refunds import RefundInProgress
from shared.payments.wechatpay import WeChatPayClient
from shared.payments.wechatpay_refunds import CLOSE_PATH, BuyerBankCard, WeChatPayConsumer
from tests.events import load
from tests.fakes.payments import NOTIFY_URL, WeChatPayRefundWorld, keys, merchant

FINANCE = Principal("fin-1", Role.FINANCE)
REFUND_ID = "r019aa1b2c3d4e5f6a7b8c9d0"
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_|*@-]{1,64}")


@pytest.fixture
def world() -> WeChatPayRefundWorld:
    return WeChatPayRefundWorld.build()


def refund_requests(world: WeChatPayRefundWorld) -> list[dict]:
    return [body for method, path, body in world.wechatpay.requests if method == "POST" and path == REFUNDS]


def issued(paid: RecordedPayment, refund_id: str = REFUND_ID, amount_fen: int | None = None) -> dict:
    return {"order_id": paid.order_id, "refund_id": refund_id, "amount_fen": amount_fen or paid.amount_fen}


def stored(world: WeChatPayRefundWorld, order_id: str, number: str) -> ProviderRefund:
    refund = world.refunds_store.get(order_id, number)
    assert refund is not None
    return refund


# -- pure rules ----------------------------------------------------------------------------------------
def test_out_refund_no_of_a_refund_is_its_id_and_of_a_payment_a_digest_of_its_key():
    assert out_refund_no_of_refund(REFUND_ID) == REFUND_ID
    first = out_refund_no_of_payment("4200001234" * 3, "o" + "ab" * 16)
    assert first == out_refund_no_of_payment("4200001234" * 3, "o" + "ab" * 16)  # a retry names the same refund
    assert OUT_REFUND_NO.fullmatch(first) and len(first) == 41 and first.startswith("p")
    assert first != out_refund_no_of_payment("4200001234" * 3, "o" + "cd" * 16)  # another order's payment
    assert OUT_REFUND_NO.fullmatch(out_refund_no_of_payment("x" * 500, "y" * 64))  # any length in, 41 out
    with pytest.raises(Exception, match="out_refund_no"):
        out_refund_no_of_refund("r 1")


def test_the_refund_request_names_the_transaction_the_amounts_and_the_notify_url():
    refund = ProviderRefund.pending(
        out_refund_no=REFUND_ID,
        order_id="o1",
        source=FOR_REFUND,
        source_id=REFUND_ID,
        transaction_id="4200000001",
        refund_fen=2900,
        total_fen=5800,
        reason="Refund r1",
        now_ms=0,
    )
    assert refund.request_body(NOTIFY_URL) == {
        "transaction_id": "4200000001",
        "out_refund_no": REFUND_ID,
        "reason": "Refund r1",
        "notify_url": NOTIFY_URL,
        "amount": {"refund": 2900, "total": 5800, "currency": "CNY"},
    }
    with pytest.raises(Exception, match="1 fen up to"):
        replace(refund).pending(**{**_fields(refund), "refund_fen": 5801})


def _fields(refund: ProviderRefund) -> dict:
    return {
        "out_refund_no": refund.out_refund_no,
        "order_id": refund.order_id,
        "source": refund.source,
        "source_id": refund.source_id,
        "transaction_id": refund.transaction_id,
        "refund_fen": refund.refund_fen,
        "total_fen": refund.total_fen,
        "reason": refund.reason,
        "now_ms": 0,
    }


def test_wechat_pays_published_refund_notification_and_answer_parse():
    # The examples of WeChat Pay's APIv3 docs: 退款结果通知 (the decrypted resource) and 申请退款 (the answer)
    note = RefundState.of(load("wechatpay_refund_notification_resource"))
    assert (note.status, note.out_refund_no, note.refund_fen) == ("SUCCESS", "7752501201407033233368018", 999)
    assert note.out_trade_no == "20150806125346" and note.provider_refund_id == "50200207182018070300011301001"
    assert note.mchid == "1900000100" and note.success_time == "2018-06-08T10:34:56+08:00"
    answer = RefundState.of(load("wechatpay_refund_answer"))
    assert (answer.status, answer.refund_fen, answer.mchid) == ("SUCCESS", 100, None)
    broken = [
        {"out_refund_no": "n1", "refund_status": "DONE"},  # not one of WeChat Pay's four states
        {"status": "SUCCESS"},  # no out_refund_no
        {"status": "SUCCESS", "out_refund_no": "a b"},  # not an out_refund_no
    ]
    for resource in broken:
        with pytest.raises(NotOurs):
            RefundState.of(resource)


# -- order refunds -------------------------------------------------------------------------------------
def test_an_issued_refund_is_requested_once_and_its_notification_settles_it(world):
    # Given an order paid through WeChat Pay, and a refund of half of it issued
    paid = world.paid_order(total_fen=5800)
    # When the payments consumer hears RefundIssued
    refund = world.refunds.refund_issued(issued(paid, amount_fen=2900))
    # Then WeChat Pay was asked once, by transaction id, for the allocated amount out of what was paid
    (body,) = refund_requests(world)
    assert body["out_refund_no"] == REFUND_ID and body["transaction_id"] == paid.transaction_id
    assert body["amount"] == {"refund": 2900, "total": 5800, "currency": "CNY"} and body["notify_url"] == NOTIFY_URL
    assert refund is not None and refund.status == "PROCESSING" and refund.provider_refund_id
    assert world.refunds_store.payout_status[(paid.order_id, REFUND_ID)] == "PROCESSING"
    # When WeChat Pay settles it and notifies, three times (it repeats its notifications)
    assert world.wechatpay.settle_refund(REFUND_ID) == [204]
    for _ in range(2):
        headers, body_bytes = world.wechatpay.refund_callback(world.wechatpay.refunds[REFUND_ID])
        assert world.base.deliver(NOTIFY_URL, headers, body_bytes) == 204
    # Then it is SUCCESS once, and the order's refund says so
    settled = stored(world, paid.order_id, REFUND_ID)
    assert settled.status == "SUCCESS" and settled.version == refund.version + 1 and settled.success_time
    assert world.refunds_store.payout_status[(paid.order_id, REFUND_ID)] == "SUCCESS"
    # And a redelivered RefundIssued asks nothing more
    world.refunds.refund_issued(issued(paid, amount_fen=2900))
    assert len(refund_requests(world)) == 1


def test_a_timed_out_refund_request_is_retried_with_the_same_number_and_refunds_once(world):
    paid = world.paid_order(total_fen=5800)
    # Given WeChat Pay makes the refund but its answer is lost (our timeout)
    world.base.transport.lose_next_answer = 1
    with pytest.raises(ProviderUnavailable):
        world.refunds.refund_issued(issued(paid))
    assert stored(world, paid.order_id, REFUND_ID).status == PENDING
    # When the consumer retries
    refund = world.refunds.refund_issued(issued(paid))
    # Then the same refund was answered: asked twice, refunded once
    assert refund is not None and refund.status == "PROCESSING"
    assert len(refund_requests(world)) == 2 and len(world.wechatpay.refunds) == 1
    assert world.wechatpay.refunds[REFUND_ID].requests == 2


def test_partial_refunds_each_once_and_more_than_is_left_is_refused_and_listed(world):
    paid = world.paid_order(total_fen=5800)
    first = world.refunds.refund_issued(issued(paid, "r1" + "0" * 22 + "a", 2000))
    second = world.refunds.refund_issued(issued(paid, "r1" + "0" * 22 + "b", 3000))
    assert first and second and first.status == second.status == "PROCESSING"
    # A third for more than is left (800) is refused by WeChat Pay: REFUSED, for finance
    third = world.refunds.refund_issued(issued(paid, "r1" + "0" * 22 + "c", 900))
    assert third is not None and third.status == "REFUSED" and third.provider_code == "INVALID_REQUEST"
    listed, cursor = world.finance.needing_attention(10, None)
    assert [r.out_refund_no for r in listed] == [third.out_refund_no] and cursor is None
    assert sum(r.refund_fen for r in world.wechatpay.refunds.values()) == 5000


@pytest.mark.parametrize("outcome", ["ABNORMAL", "CLOSED"])
def test_an_abnormal_or_closed_refund_is_recorded_and_listed_for_finance(world, outcome):
    paid = world.paid_order()
    world.refunds.refund_issued(issued(paid))
    assert world.wechatpay.settle_refund(REFUND_ID, outcome) == [204]
    assert stored(world, paid.order_id, REFUND_ID).status == outcome
    assert world.refunds_store.payout_status[(paid.order_id, REFUND_ID)] == outcome
    listed, _ = world.finance.needing_attention(10, None)
    assert [(r.out_refund_no, r.status) for r in listed] == [(REFUND_ID, outcome)]


def test_an_abnormal_refund_applied_for_goes_to_the_merchants_bank_card_once_and_settles(world):
    paid = world.paid_order()
    world.refunds.refund_issued(issued(paid))
    # Not ABNORMAL yet (PROCESSING): refused, nothing asked
    with pytest.raises(InvalidTransition):
        world.refunds.apply_abnormal_refund(paid.order_id, REFUND_ID)
    world.wechatpay.settle_refund(REFUND_ID, "ABNORMAL")
    reopened = world.refunds.apply_abnormal_refund(paid.order_id, REFUND_ID)
    assert reopened.status == "PROCESSING" and reopened.provider_code == "ABNORMAL_REFUND_APPLIED"
    (asked,) = [b for m, p, b in world.wechatpay.requests if p.endswith("/apply-abnormal-refund")]
    assert asked == {"out_refund_no": REFUND_ID, "type": "MERCHANT_BANK_CARD"}
    assert world.finance.needing_attention(10, None)[0] == []  # out of finance's list while it is paid
    with pytest.raises(InvalidTransition):  # applied once
        world.refunds.apply_abnormal_refund(paid.order_id, REFUND_ID)
    assert world.wechatpay.settle_refund(REFUND_ID, "SUCCESS") == [204]
    assert stored(world, paid.order_id, REFUND_ID).status == "SUCCESS"
    assert world.refunds_store.payout_status[(paid.order_id, REFUND_ID)] == "SUCCESS"
    with pytest.raises(NotFound):
        world.refunds.apply_abnormal_refund(paid.order_id, "r-none")


def test_a_refund_of_an_order_another_provider_took_or_of_nothing_calls_nobody(world):
    paid = world.paid_order()
    world.payments.replace(replace(paid, provider="hmac"))
    assert world.refunds.refund_issued(issued(paid)) is None
    assert world.refunds.refund_issued({"order_id": "o-unpaid", "refund_id": REFUND_ID, "amount_fen": 100}) is None
    assert refund_requests(world) == []


def test_refund_notifications_that_are_not_ours_change_nothing(world):
    paid = world.paid_order()
    world.refunds.refund_issued(issued(paid))
    known = world.wechatpay.refunds[REFUND_ID]
    known.status = "SUCCESS"
    resource = world.wechatpay.refund_notification_resource(known)
    hostile = [
        ({**resource, "mchid": "1900000109"}, "REFUND.SUCCESS"),  # another merchant
        (resource, "REFUND.CLOSED"),  # the event contradicts the state
        ({**resource, "amount": {**resource["amount"], "refund": 1}}, "REFUND.SUCCESS"),  # not our amount
    ]
    for body, event_type in hostile:
        headers, raw = world.wechatpay.notification(body, event_type=event_type, original_type="refund")
        assert world.base.deliver(NOTIFY_URL, headers, raw) == 422
    headers, raw = world.wechatpay.notification(resource, event_type="REFUND.SUCCESS", sign_with_other_key=True)
    with pytest.raises(BadSignature):
        world.base.payments.notified({k.lower(): v for k, v in headers.items()}, raw)
    assert stored(world, paid.order_id, REFUND_ID).status == "PROCESSING"
    # A refund we never asked for (made in the merchant platform) is acknowledged, nothing settled
    unknown = {**resource, "out_refund_no": "manual-1"}
    headers, raw = world.wechatpay.notification(unknown, event_type="REFUND.SUCCESS", original_type="refund")
    assert world.base.payments.notified({k.lower(): v for k, v in headers.items()}, raw) == "unknown"


# -- the query job ---------------------------------------------------------------------------------------
def test_the_query_job_settles_a_refund_whose_notification_never_came(world):
    paid = world.paid_order()
    world.wechatpay.faults.hold_refund_notifications = True
    world.refunds.refund_issued(issued(paid))
    world.wechatpay.settle_refund(REFUND_ID)  # settled at WeChat Pay, never notified
    # Not due yet: nothing asked
    assert world.refunds.settle_due()["checked"] == 0
    world.clock.advance(601)
    assert world.refunds.settle_due() == {"checked": 1, "settled": 1, "still_open": 0, "unavailable": 0}
    assert stored(world, paid.order_id, REFUND_ID).status == "SUCCESS"
    assert world.refunds.settle_due()["checked"] == 0  # settled: out of the job's index


def test_the_query_job_backs_off_while_processing_and_asks_again_for_a_refund_never_answered(world):
    paid, other = world.paid_order(), world.paid_order()
    world.refunds.refund_issued(issued(paid))
    # The other refund's request never got an answer, and its consumer gave up: PENDING in the table
    world.base.transport.fail_next = 1
    with pytest.raises(ProviderUnavailable):
        world.refunds.refund_issued(issued(other, "r2" + "0" * 23))
    world.clock.advance(601)
    assert world.refunds.settle_due() == {"checked": 2, "settled": 0, "still_open": 2, "unavailable": 0}
    assert len(world.wechatpay.refunds) == 2  # the PENDING one was requested again, with its number
    first = stored(world, paid.order_id, REFUND_ID)
    assert first.status == "PROCESSING" and first.next_check_ms >= world.clock.now_ms() + 600_000
    # WeChat Pay unreachable: the check moves on, nothing is lost
    world.clock.advance(1300)
    world.base.transport.fail_next = 5
    assert world.refunds.settle_due()["unavailable"] >= 1
    assert stored(world, paid.order_id, REFUND_ID).is_open


# -- payments recorded for refund --------------------------------------------------------------------------
def test_a_wechat_pay_payment_recorded_for_refund_is_refunded_whole_then_marked_refunded(world):
    # Given a paid transaction the payment path recorded NEEDS_REFUND (it came after the order's window)
    paid = world.paid_order(total_fen=4200)
    late = world.payments.record(replace(paid, status="NEEDS_REFUND", reason="payment arrived after the window"))
    payload = {"order_id": late.order_id, "transaction_id": late.transaction_id, "amount_fen": 4200}
    # When the consumer hears PaymentNeedsRefund, twice
    refund = world.refunds.payment_needs_refund(payload)
    world.refunds.payment_needs_refund(payload)
    # Then all of it goes back once, under the payment's derived number
    (body,) = refund_requests(world)
    number = out_refund_no_of_payment(late.transaction_id, late.order_id)
    assert body["out_refund_no"] == number and body["amount"] == {"refund": 4200, "total": 4200, "currency": "CNY"}
    assert refund is not None and refund.source == FOR_PAYMENT
    # Finance cannot mark it by hand meanwhile (it would be paid back twice)
    with pytest.raises(RefundInProgress):
        world.finance.mark_refunded(late.transaction_id, late.order_id, FINANCE, None)
    # And once settled the payment is REFUNDED, by WeChat Pay
    world.wechatpay.settle_refund(number)
    after = world.payments.recorded(late.transaction_id, late.order_id)
    assert after is not None and after.status == "REFUNDED" and str(after.refunded_by).startswith("wechatpay:")


def test_a_clashing_or_hmac_payment_is_left_to_finance_who_marks_it_refunded_once(world):
    clash = world.payments.record(RecordedPayment("o-y", "4200000009", 900, "wechatpay", "NEEDS_REFUND", clash=True))
    hmac = world.payments.record(RecordedPayment("o-z", "t-9", 700, "hmac", "NEEDS_REFUND"))
    for payment in (clash, hmac):
        payload = {"order_id": payment.order_id, "transaction_id": payment.transaction_id}
        assert world.refunds.payment_needs_refund(payload) is None
    assert refund_requests(world) == []
    marked = world.finance.mark_refunded("t-9", "o-z", FINANCE, "bank transfer 778")
    assert (marked.status, marked.refunded_by, marked.refund_note) == ("REFUNDED", "fin-1", "bank transfer 778")
    with pytest.raises(InvalidTransition):
        world.finance.mark_refunded("t-9", "o-z", FINANCE, None)
    with pytest.raises(NotFound):
        world.finance.mark_refunded("t-9", "o-other", FINANCE, None)
    assert world.finance.mark_refunded(clash.transaction_id, "o-y", FINANCE, None).status == "REFUNDED"


# -- closing ---------------------------------------------------------------------------------------------
def test_an_unpaid_order_that_closed_has_its_transaction_closed_so_it_cannot_be_paid(world):
    order = world.base.order("o" + "cd" * 16)
    world.base.payments.prepay(order.order_id, "c-1", "oOPENID")
    consumer = WeChatPayConsumer(world.refunds)
    consumer.handle(DomainEvent(EventType.ORDER_EXPIRED, order.order_id, {"order_id": order.order_id}))
    trade_no = order.order_id[1:]
    closes = [(m, p, b) for m, p, b in world.wechatpay.requests if p == CLOSE_PATH.format(trade_no)]
    assert closes == [("POST", CLOSE_PATH.format(trade_no), {"mchid": keys().mchid})]
    assert world.wechatpay.transactions[trade_no].trade_state == "CLOSED"
    # Closing again (a redelivered event) is fine; no prepay, no call; a paid one is WeChat Pay's ORDERPAID
    assert world.refunds.close(order.order_id) == "closed"
    assert world.refunds.close("o" + "ee" * 16) == "no_prepay"
    paid = world.paid_order()
    assert world.refunds.close(paid.order_id) == "ORDERPAID"


def test_an_abnormal_refund_paid_to_the_buyers_bank_card_sends_the_card_encrypted_for_wechat_pay(world):
    paid = world.paid_order()
    world.refunds.refund_issued(issued(paid))
    world.wechatpay.settle_refund(REFUND_ID, "ABNORMAL")
    card = BuyerBankCard("ICBC_DEBIT", "6222020200112233445", "张三")
    assert "6222020200112233445" not in repr(card) and "张三" not in repr(card)
    # When finance has it paid to the buyer's bank card
    reopened = world.refunds.apply_abnormal_refund(paid.order_id, REFUND_ID, card)
    assert reopened.status == "PROCESSING" and reopened.provider_code == "ABNORMAL_REFUND_APPLIED"
    # Then WeChat Pay got USER_BANK_CARD, the number and name encrypted (never in clear), and opened them
    (asked,) = [b for m, p, b in world.wechatpay.requests if p.endswith("/apply-abnormal-refund")]
    assert (asked["type"], asked["bank_type"]) == ("USER_BANK_CARD", "ICBC_DEBIT")
    assert "6222020200112233445" not in str(asked) and "张三" not in str(asked)
    assert world.wechatpay.cards_paid[REFUND_ID] == ("ICBC_DEBIT", "6222020200112233445", "张三")
    # And nothing of the card is kept with the refund
    assert "6222020200112233445" not in str(stored(world, paid.order_id, REFUND_ID))
    assert world.wechatpay.settle_refund(REFUND_ID, "SUCCESS") == [204]
    assert stored(world, paid.order_id, REFUND_ID).status == "SUCCESS"


def test_the_local_wechat_pay_refuses_a_buyers_card_not_encrypted_with_its_key(world):
    paid = world.paid_order()
    world.refunds.refund_issued(issued(paid))
    world.wechatpay.settle_refund(REFUND_ID, "ABNORMAL")
    provider_id = stored(world, paid.order_id, REFUND_ID).provider_refund_id
    body = {"out_refund_no": REFUND_ID, "type": "USER_BANK_CARD", "bank_type": "ICBC_DEBIT"}
    clear = {**body, "bank_account": "6222020200112233445", "real_name": "张三"}
    path = f"{REFUNDS}/{provider_id}/apply-abnormal-refund"
    client = WeChatPayClient(merchant(), world.base.transport, world.clock)
    # Sent in clear (what a client that skips the encryption would do): refused, still ABNORMAL
    with pytest.raises(ProviderRefused, match="not encrypted"):
        client.post(path, clear, encrypted_with=world.wechatpay.serial)
    # Encrypted, but the header names another key: refused
    with pytest.raises(ProviderRefused, match="Wechatpay-Serial"):
        client.post(path, clear, encrypted_with="PUB_KEY_ID_0000")
    assert world.wechatpay.refunds[REFUND_ID].status == "ABNORMAL" and world.wechatpay.cards_paid == {}
