"""The limit on wrong store verification codes (shared/coupons/wrong_codes.py; docs/coupons.md,
"Wrong verification codes"): the pure rule, then a customer's self-redemption on the fakes (counted
per customer over every store and per store over every customer, 429 past the limit whatever the
code until the window ends, the coupon never touched by a wrong code, staff unaffected, a right
code racing the limit refused in the transaction, concurrent wrong codes each counted)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from shared.coupons import claims, redemption
from shared.coupons.model import Status, verification_code
from shared.coupons.ports import CouponPolicy
from shared.coupons.redemption import OfflineRedemption
from shared.coupons.wrong_codes import CUSTOMER, STORE, WrongCodeLimit, attempts_left, beyond, locked
from shared.kernel.clock import FakeClock
from shared.kernel.errors import TooManyAttempts, WrongVerificationCode
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from tests.fakes.coupons import (
    InterleavedWrongCodes,
    a_wrong_verification_code,
    coupons_on_fakes,
    fixed_coupon_template,
)

WINDOW_S = 900
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z, where a 900 s window starts
ME = Principal("c-1", Role.CUSTOMER)
STAFF = Principal("staff-1", Role.STORE_STAFF, "S001")


# -- the rule ----------------------------------------------------------------------------------
def test_the_counters_are_the_customers_and_the_stores_in_the_window_of_now():
    limit = WrongCodeLimit(window_s=WINDOW_S, per_customer=5, per_store=50)
    mine, store = limit.counters("c-1", "S001", START_MS + 899_999)
    assert (mine.scope, mine.owner_id, mine.limit) == (CUSTOMER, "c-1", 5)
    assert (store.scope, store.owner_id, store.limit) == (STORE, "S001", 50)
    assert mine.window == store.window == START_MS // 900_000
    assert limit.counters("c-1", "S001", START_MS + 900_000)[0].window == mine.window + 1
    # the item may go once the next window has ended too (nothing reads an old window's key)
    assert mine.expires_at_s == START_MS // 1000 + 2 * WINDOW_S


def test_retry_after_is_the_rest_of_the_window_in_whole_seconds():
    limit = WrongCodeLimit(window_s=WINDOW_S)
    assert limit.retry_after_s(START_MS) == 900
    assert limit.retry_after_s(START_MS + 1) == 900  # 899.999 s rounds up
    assert limit.retry_after_s(START_MS + 899_500) == 1
    assert limit.retry_after_s(START_MS + 899_999) == 1


def test_locked_at_the_limit_beyond_only_past_it_and_the_attempts_left():
    counters = WrongCodeLimit(per_customer=5, per_store=50).counters("c-1", "S001", START_MS)
    assert locked(counters, (4, 49)) is None
    assert locked(counters, (5, 0)) == counters[0]
    assert locked(counters, (0, 50)) == counters[1]
    assert beyond(counters, (5, 50)) is None  # the fifth wrong code is answered, the sixth is not
    assert beyond(counters, (6, 1)) == counters[0]
    assert attempts_left(counters, (1, 1)) == 4
    assert attempts_left(counters, (1, 48)) == 2  # the store's counter is the closer one
    assert attempts_left(counters, (7, 0)) == 0


def test_a_limit_needs_a_window_and_limits():
    with pytest.raises(ValueError):
        WrongCodeLimit(window_s=0)
    with pytest.raises(ValueError):
        WrongCodeLimit(per_customer=0)


# -- on the fakes ------------------------------------------------------------------------------
@pytest.fixture
def clock():
    return FakeClock(START_MS)


@pytest.fixture
def world(clock):
    return coupons_on_fakes(clock, CouponPolicy(wrong_codes_per_customer=5, wrong_codes_per_store=8))


def a_coupon(ports, customer="c-1") -> str:
    template_id = fixed_coupon_template(ports, 24 * 3600 * 1000, total=50, per_user_limit=10)
    request = IdempotentRequest.of(f"coupon-claims:{template_id}:{customer}", None, {"template_id": template_id})
    return claims.claim(template_id, customer, request, ports).body["code"]


def right(ports, store="S001") -> str:
    return verification_code(ports.verification_key, store, ports.policy.verification_step_s, ports.clock.now_ms())


def wrong(ports, store="S001") -> str:
    return a_wrong_verification_code(ports, store)


def redeem(ports, code, who=ME, store="S001", verification=None):
    request = IdempotentRequest.of(f"coupon-redemptions:{who.sub}", None, {"code": code, "store": store})
    return redemption.redeem_offline(OfflineRedemption(store, code, None, verification), who, request, ports)


def give_wrong(ports, code, times, who=ME, store="S001") -> list[int]:
    """`times` wrong codes, each refused as such; the attempts left after each."""
    left = []
    for _ in range(times):
        with pytest.raises(WrongVerificationCode) as refused:
            redeem(ports, code, who=who, store=store, verification=wrong(ports, store))
        left.append(refused.value.details["attempts_left"])
    return left


def test_five_wrong_codes_are_each_refused_then_even_the_right_one_until_the_window_ends(world, clock):
    ports, tables = world
    code = a_coupon(ports)
    before = tables.coupons[tables.codes[code]]
    assert give_wrong(ports, code, 5) == [4, 3, 2, 1, 0]
    clock.advance(60)
    with pytest.raises(TooManyAttempts) as locked_out:
        redeem(ports, code, verification=right(ports))
    assert locked_out.value.retry_after_s == WINDOW_S - 60 and locked_out.value.details["retry_after_s"] == 840
    # The wrong codes never touched the coupon: still AVAILABLE at the same version
    assert tables.coupons[tables.codes[code]] == before and before.status is Status.AVAILABLE
    # And nothing else answers for a locked customer: no 404 telling a right code from a wrong one
    with pytest.raises(TooManyAttempts):
        redeem(ports, "0000-0000-0000", verification=right(ports))
    with pytest.raises(TooManyAttempts):
        redeem(ports, code, verification=wrong(ports))
    # And an attempt refused past the limit is not counted (nothing was tried)
    assert sorted(tables.wrong_codes.values()) == [5, 5]
    clock.advance(840)  # the next window
    assert redeem(ports, code, verification=right(ports)).status == 201


def test_a_right_code_inside_the_limit_redeems_and_leaves_the_count(world):
    ports, tables = world
    code = a_coupon(ports)
    give_wrong(ports, code, 4)
    assert redeem(ports, code, verification=right(ports)).status == 201
    assert sorted(tables.wrong_codes.values()) == [4, 4]


def test_guesses_spread_over_stores_count_on_the_customer(world):
    ports, _ = world
    code = a_coupon(ports)
    for store in ("S001", "S002", "S001", "S002", "S001"):
        give_wrong(ports, code, 1, store=store)
    with pytest.raises(TooManyAttempts):
        redeem(ports, code, store="S002", verification=right(ports, "S002"))


def test_a_store_guessed_at_by_many_customers_is_locked_for_self_redemption_not_for_its_staff(world):
    ports, _ = world
    for n in range(4):  # the store's limit here: 8 wrong codes, here 2 by each of 4 customers
        give_wrong(ports, "0000-0000-0000", 2, who=Principal(f"c-{n}", Role.CUSTOMER))
    other = a_coupon(ports, "c-9")
    with pytest.raises(TooManyAttempts):
        redeem(ports, other, who=Principal("c-9", Role.CUSTOMER), verification=right(ports))
    # A customer of the other store is not concerned, and the store's staff still redeem
    elsewhere = Principal("c-8", Role.CUSTOMER)
    assert (
        redeem(ports, a_coupon(ports, "c-8"), who=elsewhere, store="S002", verification=right(ports, "S002")).status
        == 201
    )
    assert redeem(ports, other, who=STAFF).status == 201


def test_staff_and_guides_never_meet_the_limit(world):
    ports, _ = world
    code = a_coupon(ports)
    give_wrong(ports, code, 5)
    assert redeem(ports, code, who=Principal("g-1", Role.GUIDE, "S001")).status == 201


def test_a_right_code_read_under_the_limit_is_refused_when_the_limit_is_reached_before_its_commit(world):
    ports, tables = world
    code = a_coupon(ports)
    # five wrong codes land between this attempt's read and its transaction
    raced = replace(ports, wrong_codes=InterleavedWrongCodes(ports.wrong_codes, then_wrong=5))
    with pytest.raises(TooManyAttempts):
        redeem(raced, code, verification=right(ports))
    coupon = tables.coupons[tables.codes[code]]
    assert coupon.status is Status.AVAILABLE and tables.redemptions == {}


def test_twenty_concurrent_wrong_codes_count_twenty(world):
    # Given 20 attempts that all read the counters before any of them counts (a barrier after the read)
    ports, tables = world
    ports = replace(ports, policy=replace(ports.policy, wrong_codes_per_store=100))
    code = a_coupon(ports)
    raced = replace(ports, wrong_codes=InterleavedWrongCodes(ports.wrong_codes, barrier=threading.Barrier(20)))

    def attempt(_: int) -> str:
        try:
            redeem(raced, code, verification=wrong(ports))
        except (WrongVerificationCode, TooManyAttempts) as refused:
            return refused.code
        return "redeemed"

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(attempt, range(20)))
    # Then each is counted (no update lost), five are answered as wrong codes, the rest as too many
    assert sorted(tables.wrong_codes.values()) == [20, 20]
    assert answers.count("WRONG_VERIFICATION_CODE") == 5 and answers.count("TOO_MANY_ATTEMPTS") == 15
    assert tables.coupons[tables.codes[code]].status is Status.AVAILABLE
