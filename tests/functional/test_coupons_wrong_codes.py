"""The limit on wrong store verification codes on moto (docs/coupons.md, "Wrong verification codes"):
through the route, five wrong codes then 429 TOO_MANY_ATTEMPTS with Retry-After even for the right
code, the coupon untouched, staff unaffected, the next window open again; the round trips of a right
code (as many as before the limit); the transaction's check against a right code racing the limit;
and 20 concurrent wrong codes counted 20 by the real ADD."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from shared.coupons import redemption
from shared.coupons.model import verification_code
from shared.coupons.redemption import OfflineRedemption
from shared.data.connection import events
from shared.data.items import CouponItem
from shared.data.items.coupons import CouponWrongCodesItem
from shared.data.stores.coupons import DynamoWrongCodes
from shared.kernel.clock import FakeClock, now_ms
from shared.kernel.errors import TooManyAttempts, WrongVerificationCode
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.platform import bootstrap
from tests.fakes.coupons import InterleavedWrongCodes, a_wrong_verification_code
from tests.functional.coupons_support import create_template, given_stores, post

PATH = "/stores/S001/coupon-redemptions"


@pytest.fixture
def stores(table):
    given_stores()


@pytest.fixture
def clock(monkeypatch):
    """The coupons' clock, at the start of a window of wrong codes (the route reads it too)."""
    window_ms = bootstrap.ready().coupon_wrong_code_window_s * 1000
    fake = FakeClock((now_ms() // window_ms + 1) * window_ms)
    real = bootstrap.coupons
    monkeypatch.setattr(bootstrap, "coupons", lambda: replace(real(), clock=fake))
    return fake


def right(store: str = "S001") -> str:
    ports = bootstrap.coupons()
    return verification_code(ports.verification_key, store, ports.policy.verification_step_s, ports.clock.now_ms())


def wrong(store: str = "S001") -> str:
    return a_wrong_verification_code(bootstrap.coupons(), store)


def a_coupon(client, tokens, token_name: str = "customer") -> str:
    template_id = create_template(client, tokens, total=20, per_user_limit=10)
    return post(client, f"/coupon-templates/{template_id}/claim", tokens[token_name]).json_body["code"]


def counted() -> dict[str, int]:
    return {item.pk.split("#")[1]: int(item.wrong) for item in CouponWrongCodesItem.scan()}


def test_past_five_wrong_codes_even_the_right_one_is_429_until_the_window_ends(client, tokens, stores, clock):
    code = a_coupon(client, tokens)
    before = CouponItem.scan(CouponItem.code == code).next()
    # When the customer gives five wrong codes
    answers = [post(client, PATH, tokens["customer"], {"code": code, "verification_code": wrong()}) for _ in range(5)]
    # Then each is 422 with the attempts left
    assert [(a.status_code, a.json_body["code"]) for a in answers] == [(422, "WRONG_VERIFICATION_CODE")] * 5
    assert [a.json_body["details"]["attempts_left"] for a in answers] == [4, 3, 2, 1, 0]
    # And then the right code is 429 TOO_MANY_ATTEMPTS, with Retry-After the rest of the window
    clock.advance(100)
    locked = post(client, PATH, tokens["customer"], {"code": code, "verification_code": right()})
    window_s = bootstrap.ready().coupon_wrong_code_window_s
    assert (locked.status_code, locked.json_body["code"]) == (429, "TOO_MANY_ATTEMPTS"), locked.json_body
    assert locked.headers["Retry-After"] == str(window_s - 100)
    assert locked.json_body["details"]["retry_after_s"] == window_s - 100
    # And so is a right code with a coupon code that does not exist (no 404 to tell right from wrong)
    unknown = post(client, PATH, tokens["customer"], {"code": "0000-0000-0000", "verification_code": right()})
    assert (unknown.status_code, unknown.json_body["code"]) == (429, "TOO_MANY_ATTEMPTS")
    # And the coupon was never touched, and the counters hold five each (the refused ones not counted)
    after = CouponItem.get(before.pk, before.sk, consistent_read=True)
    assert (after.status, after.version) == ("AVAILABLE", before.version)
    assert counted() == {"customer": 5, "store": 5}
    # And the next window lets the right code through
    clock.advance(window_s - 100)
    done = post(client, PATH, tokens["customer"], {"code": code, "verification_code": right()})
    assert done.status_code == 201, done.json_body


def test_staff_redeem_while_the_customer_is_locked_out(client, tokens, stores, clock):
    code = a_coupon(client, tokens)
    for _ in range(6):
        post(client, PATH, tokens["customer"], {"code": code, "verification_code": wrong()})
    assert post(client, PATH, tokens["customer"], {"code": code, "verification_code": right()}).status_code == 429
    assert post(client, PATH, tokens["store_staff"], {"code": code}).status_code == 201
    assert post(client, PATH, tokens["guide"], {"code": a_coupon(client, tokens)}).status_code == 201


def test_a_right_code_inside_the_limit_costs_no_round_trip_more(client, tokens, stores, clock):
    code = a_coupon(client, tokens)
    calls: list[str] = []

    def record(**kwargs):
        calls.append(kwargs["model"].name)

    events().register("before-call.dynamodb", record)
    try:
        done = post(client, PATH, tokens["customer"], {"code": code, "verification_code": right()})
    finally:
        events().unregister("before-call.dynamodb", record)
    assert done.status_code == 201, done.json_body
    # the store, the code's item with both counters, the coupon, the transaction (its two checks inside):
    # the four calls of a redemption before the limit, one of them a BatchGetItem instead of a GetItem
    assert calls == ["GetItem", "BatchGetItem", "GetItem", "TransactWriteItems"]


def redeem_as(ports, who: Principal, code: str, verification: str):
    request = IdempotentRequest.of(f"coupon-redemptions:{who.sub}", None, {"code": code})
    return redemption.redeem_offline(OfflineRedemption("S001", code, None, verification), who, request, ports)


def test_a_right_code_racing_the_limit_is_refused_by_the_transaction(client, tokens, stores, clock):
    code = a_coupon(client, tokens)
    # five wrong codes land between this attempt's read and its transaction
    ports = replace(bootstrap.coupons(), wrong_codes=InterleavedWrongCodes(DynamoWrongCodes(), then_wrong=5))
    with pytest.raises(TooManyAttempts):
        redeem_as(ports, Principal("c-1", Role.CUSTOMER), code, right())
    coupon = CouponItem.scan(CouponItem.code == code).next()
    assert coupon.status == "AVAILABLE"


def test_twenty_concurrent_wrong_codes_count_twenty(client, tokens, stores, clock):
    # Given 20 wrong codes that all read the counters before any of them counts
    code = a_coupon(client, tokens)
    ports = bootstrap.coupons()
    ports = replace(ports, policy=replace(ports.policy, wrong_codes_per_store=100))
    raced = replace(ports, wrong_codes=InterleavedWrongCodes(DynamoWrongCodes(), barrier=threading.Barrier(20)))
    guess = wrong()

    def attempt(_: int) -> str:
        try:
            redeem_as(raced, Principal("c-1", Role.CUSTOMER), code, guess)
        except (WrongVerificationCode, TooManyAttempts) as refused:
            return refused.code
        return "redeemed"

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(attempt, range(20)))
    # Then the ADDs count all twenty, five are answered as wrong codes and fifteen as too many
    assert counted() == {"customer": 20, "store": 20}
    assert answers.count("WRONG_VERIFICATION_CODE") == 5 and answers.count("TOO_MANY_ATTEMPTS") == 15, answers
    assert CouponItem.scan(CouponItem.code == code).next().status == "AVAILABLE"
