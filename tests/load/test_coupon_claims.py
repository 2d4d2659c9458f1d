"""Many claimants at once against the serialised local server, through the service layer: a coupon
template never issues more than its total, nobody passes the per-user limit, every claimant gets a
definite answer, also with throttling, conflicts and lost responses injected; and one code
redeemed in the store by 20 clerks at once is redeemed exactly once."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.local.faults import FaultInjector, Kind
from shared.coupons import redemption
from shared.coupons.redemption import OfflineRedemption
from shared.kernel.errors import CouponExhausted, CouponNotAvailable, DomainError, LimitReached, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from shared.platform import bootstrap
from tests.functional.coupons_support import (
    claim,
    claimant_counts,
    claims_per_customer,
    coupons_of,
    given_stores,
    iso_in,
    template_body,
)

pytestmark = pytest.mark.load

CLAIMANTS = 300
ATTEMPTS = 3
TOTAL = 100
LIMIT = 2


def given_template(**changes) -> str:
    from functions.coupons.models import CouponTemplateIn
    from shared.coupons import templates

    body = CouponTemplateIn.model_validate(template_body(**changes))
    stored = templates.create_template(
        body.to_draft(), body.expected_peak_per_s, IdempotentRequest.of("t", None, {}), bootstrap.coupons()
    )
    return stored.body["template_id"]


def attempt(template_id: str, customer: str, key: str, retries: int = 4) -> str:
    for _ in range(retries + 1):
        try:
            claim(template_id, customer, key=key)
            return "201"
        except CouponExhausted:
            return "EXHAUSTED"
        except LimitReached:
            return "LIMIT_REACHED"
        except TemporarilyUnavailable:
            continue
    return "503"


def crowd(template_id: str, claimants: int = CLAIMANTS, attempts: int = ATTEMPTS) -> Counter[str]:
    """Every claimant tries `attempts` times, each with its own Idempotency-Key; a 503 is retried
    with the same key, as a client should."""

    def one(i: int) -> list[str]:
        return [attempt(template_id, f"cc-{i}", f"cc-{i}-{n}") for n in range(attempts)]

    with ThreadPoolExecutor(max_workers=32) as pool:
        return Counter(answer for answers in pool.map(one, range(claimants)) for answer in answers)


def books_of(template_id: str) -> dict[str, int]:
    ports = bootstrap.coupons()
    return ports.templates.tally(ports.templates.get(template_id)).to_dict()


def test_a_crowd_claims_exactly_the_total_and_nobody_passes_the_limit(table):
    # Given 100 coupons, two per customer, sharded for 2,000 claims/s (4 shards)
    given_stores()
    template_id = given_template(total=TOTAL, per_user_limit=LIMIT, expected_peak_per_s=2000)
    # When 300 customers try three times each, all at once
    answers = crowd(template_id)
    print("coupon crowd:", dict(answers))
    # Then exactly 100 coupons exist, nobody holds more than two, and the books say so
    held = claims_per_customer(template_id)
    assert answers["201"] == TOTAL and len(coupons_of(template_id)) == TOTAL, answers
    assert max(held.values()) <= LIMIT and claimant_counts(template_id) == dict(held)
    assert set(answers) <= {"201", "EXHAUSTED", "LIMIT_REACHED"}
    assert books_of(template_id)["remaining"] == 0 and books_of(template_id)["available"] == TOTAL


def test_the_same_crowd_with_faults_on_the_hot_items(table):
    # Given 10% throttling, conflicts and lost responses on every coupon item's writes
    given_stores()
    template_id = given_template(total=TOTAL, per_user_limit=LIMIT, expected_peak_per_s=2000)
    faults = FaultInjector(
        rate=0.10,
        seed=11,
        kinds=[Kind.THROTTLING, Kind.THROUGHPUT, Kind.CONFLICT, Kind.TIMEOUT_UNSENT, Kind.TIMEOUT_APPLIED],
        operations=["TransactWriteItems"],
        partitions=lambda pk: pk.startswith(("CPNTPL#", "COUPON#", "CPNCODE#")),
    )
    with faults.attached():
        answers = crowd(template_id)
    print("coupon crowd under faults:", dict(answers), faults.report())
    # Then faults happened, every answer is definite, exactly the total was issued (a lost answer
    # was replayed, never claimed twice), nobody is over the limit, and the counts match the coupons
    held = claims_per_customer(template_id)
    assert faults.total > 20, faults.report()
    assert set(answers) <= {"201", "EXHAUSTED", "LIMIT_REACHED", "503"}, answers
    assert len(coupons_of(template_id)) == TOTAL == answers["201"], (answers, faults.report())
    assert max(held.values()) <= LIMIT and claimant_counts(template_id) == dict(held)
    assert books_of(template_id)["remaining"] == 0


def test_twenty_clerks_redeeming_one_code_at_once_redeem_it_once(table):
    given_stores()
    template_id = given_template(total=3, per_user_limit=3, stores=["S001"])
    codes = [claim(template_id, "c-redeem").body["code"] for _ in range(3)]
    ports = bootstrap.coupons()

    def redeem(store: str, code: str, who: Principal, verification: str | None = None) -> str:
        request = IdempotentRequest.of(f"coupon-redemptions:{who.sub}", None, {"code": code})
        try:
            cmd = OfflineRedemption(store, code, None, verification)
            return str(redemption.redeem_offline(cmd, who, request, ports).status)
        except CouponNotAvailable as refused:
            return refused.code
        except DomainError as refused:
            return refused.code

    def at(store: str, code: str, customer: bool = False):
        def one(i: int) -> str:
            who = Principal("c-redeem", Role.CUSTOMER) if customer else Principal(f"clerk-{i}", Role.STORE_STAFF, store)
            return redeem(store, code, who)

        with ThreadPoolExecutor(max_workers=20) as pool:
            return Counter(pool.map(one, range(20)))

    # At the allowed store: exactly one succeeds
    allowed = at("S001", codes[0])
    assert allowed["201"] == 1 and allowed["COUPON_NOT_AVAILABLE"] == 19, allowed
    # At a store the coupon does not allow: none
    other = at("S002", codes[1])
    assert other == Counter({"COUPON_NOT_USABLE": 20}), other
    # A customer without the store's verification code: none
    unverified = at("S001", codes[2], customer=True)
    assert unverified == Counter({"VERIFICATION_CODE_REQUIRED": 20}), unverified
    assert books_of(template_id)["redeemed_offline"] == 1 and books_of(template_id)["available"] == 2


def test_the_books_of_a_busy_template_reconcile(table):
    given_stores()
    template_id = given_template(total=40, per_user_limit=1, expected_peak_per_s=4000, valid_to=iso_in(3600))
    crowd(template_id, claimants=60, attempts=1)
    counts = books_of(template_id)
    assert counts["remaining"] + counts["claimed"] == counts["total"] == 40
    assert counts["available"] == counts["claimed"] == 40


def test_thirty_orders_racing_for_one_coupon_one_holds_it_and_the_rest_hold_nothing(table):
    from dataclasses import replace

    from functions.checkout.models import CartIn
    from shared.data.items import CouponItem
    from shared.data.stores.ordering_uow import unit_of_work
    from shared.kernel.clock import SYSTEM, FakeClock, now_ms
    from shared.kernel.errors import CouponInUse
    from shared.ordering.placement import OrderPlacement
    from tests.functional.orders_support import given_catalogue, stock_of

    # Given a coupon in a customer's wallet (usable for ten minutes) and stock for every cart
    given_stores()
    given_catalogue({("TEA-1", "WH"): 200, ("CUP-1", "WH"): 200})
    template_id = given_template(total=1, valid_to=iso_in(600), claim_to=iso_in(300))
    coupon_id = claim(template_id, "c-race").body["coupon_id"]
    address = {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"}

    def body(i: int) -> dict:
        lines = [{"sku": "TEA-1", "qty": 1 + i % 3}] + ([{"sku": "CUP-1", "qty": 1}] if i % 2 else [])
        return {"lines": lines, "coupon_ids": [coupon_id], "fulfilment": {"type": "delivery", "address": address}}

    def place(i: int, placement: OrderPlacement | None = None) -> str:
        cart = CartIn.model_validate(body(i))
        request = IdempotentRequest.of("orders:c-race", f"race-{i}-{now_ms()}", body(i))
        try:
            return (placement or bootstrap.ordering()).place_order(cart, "c-race", request).body["order_id"]
        except CouponInUse as refused:
            return refused.code

    # When 30 different carts (different keys) are placed at once with it
    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(place, range(30)))
    # Then exactly one order holds it; 29 are COUPON_IN_USE and hold no stock
    orders = [a for a in answers if a != "COUPON_IN_USE"]
    print("thirty orders, one coupon:", Counter("201" if a in orders else a for a in answers))
    assert len(orders) == 1 and answers.count("COUPON_IN_USE") == 29, answers
    winner = orders[0]
    held = CouponItem.get(f"COUPON#{coupon_id}", "COUPON", consistent_read=True)
    assert (held.status, held.order_id) == ("LOCKED", winner)
    reserved = sum(stock_of(sku)[1] for sku in ("TEA-1", "CUP-1"))
    won = body(answers.index(winner))
    assert reserved == sum(line["qty"] for line in won["lines"])
    # When that order is cancelled, the coupon is usable again
    bootstrap.order_lifecycle().cancel(winner, Principal("c-race", Role.CUSTOMER))
    assert place(100) not in ("COUPON_IN_USE",)
    again = CouponItem.get(f"COUPON#{coupon_id}", "COUPON", consistent_read=True)
    assert again.status == "LOCKED" and again.order_id != winner
    # And once its use window has ended (and that order is cancelled) it is not
    bootstrap.order_lifecycle().cancel(again.order_id, Principal("c-race", Role.CUSTOMER))
    late_checkout = replace(bootstrap.checkout(), clock=FakeClock(now_ms() + 601_000))
    late = OrderPlacement(unit_of_work, bootstrap.orders(), late_checkout, SYSTEM, bootstrap.order_coupons())
    try:
        place(101, late)
        raise AssertionError("an expired coupon was accepted")
    except DomainError as refused:
        assert refused.code == "COUPON_EXPIRED"
