"""The coupon use cases on in-memory ports (tests/fakes/coupons.py) and a FakeClock: claims within the
total and the per-user limit (also with many threads), idempotency, the template a process keeps,
redemption in the store and its reversal, and the sweeper."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from shared.coupons import claims, expiry, redemption, templates, wallet
from shared.coupons.model import (
    Benefit,
    Channel,
    Kind,
    Status,
    TemplateDraft,
    TemplateEdit,
    Terms,
    verification_code,
)
from shared.coupons.ports import CouponPolicy
from shared.coupons.redemption import OfflineRedemption
from shared.kernel.clock import FakeClock
from shared.kernel.errors import (
    AlreadyReversed,
    CouponExhausted,
    CouponNotAvailable,
    Ended,
    Forbidden,
    LimitReached,
    NotFound,
    ReversalWindowClosed,
    TemporarilyUnavailable,
    UnknownStore,
    VerificationCodeRequired,
    WrongVerificationCode,
)
from shared.kernel.events import EventType
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Principal, Role
from tests.fakes.coupons import available, coupons_on_fakes, tallied

HOUR_MS = 3600 * 1000
STAFF = Principal("staff-1", Role.STORE_STAFF, "S001")
ADMIN = Principal("admin", Role.MERCHANT_ADMIN)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def world(clock):
    return coupons_on_fakes(clock)


def given_template(ports, total=10, per_user_limit=1, peak=2000, **terms):
    now = ports.clock.now_ms()
    draft = TemplateDraft(
        name="满100减20",
        description="",
        terms=Terms(Benefit(Kind.THRESHOLD, amount_fen=2000, threshold_fen=10000), **terms),
        total=total,
        per_user_limit=per_user_limit,
        claim_from_ms=now - HOUR_MS,
        claim_to_ms=now + HOUR_MS,
        valid_from_ms=now - HOUR_MS,
        valid_to_ms=now + 2 * HOUR_MS,
    )
    stored = templates.create_template(draft, peak, IdempotentRequest.of("t", None, {}), ports)
    return stored.body["template_id"]


def claim(ports, template_id, customer, key=None):
    request = IdempotentRequest.of(f"coupon-claims:{template_id}:{customer}", key, {"template_id": template_id})
    return claims.claim(template_id, customer, request, ports)


def outcome(ports, template_id, customer, key=None) -> str:
    try:
        return str(claim(ports, template_id, customer, key).status)
    except (CouponExhausted, LimitReached) as refused:
        return refused.code


# -- claims ----------------------------------------------------------------------------------------
def test_a_claim_is_one_commit_with_its_event(world):
    ports, tables = world
    template_id = given_template(ports)
    before = tables.commits
    coupon = claim(ports, template_id, "c-1").body
    assert tables.commits == before + 1
    assert [e.type for e in tables.events] == [EventType.COUPON_CLAIMED]
    assert "code" not in tables.events[0].payload and coupon["code"]


def test_many_threads_claim_exactly_the_total_and_nobody_passes_the_limit(world):
    ports, tables = world
    template_id = given_template(ports, total=25, per_user_limit=2, peak=3000)

    def attempts(i: int) -> list[str]:
        return [outcome(ports, template_id, f"c-{i % 20}") for _ in range(3)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = [a for batch in pool.map(attempts, range(40)) for a in batch]
    assert answers.count("201") == 25
    assert set(answers) == {"201", "EXHAUSTED", "LIMIT_REACHED"}
    per_customer = [n for (tid, _), n in tables.claimants.items() if tid == template_id]
    assert sum(per_customer) == 25 and max(per_customer) <= 2
    assert available(tables, template_id) == 25
    assert templates.show_template(template_id, ports)["counts"]["remaining"] == 0


def test_a_replayed_key_answers_with_the_first_coupon_even_when_exhausted(world):
    ports, _ = world
    template_id = given_template(ports, total=1)
    first = claim(ports, template_id, "c-1", key="k")
    with pytest.raises(CouponExhausted):
        claim(ports, template_id, "c-2")
    assert claim(ports, template_id, "c-1", key="k").body == first.body


def test_a_used_up_template_is_answered_after_one_read_of_its_shards(world):
    ports, tables = world
    template_id = given_template(ports, total=1)
    claim(ports, template_id, "c-1")
    with pytest.raises(CouponExhausted):
        claim(ports, template_id, "c-2")  # tries every shard once, then remembers
    before = tables.commits
    with pytest.raises(CouponExhausted):
        claim(ports, template_id, "c-3")
    assert tables.commits == before


def test_a_busy_database_is_a_retryable_answer_that_claims_nothing(world):
    ports, tables = world
    template_id = given_template(ports, peak=1)  # one shard
    tables.unavailable = 1
    with pytest.raises(TemporarilyUnavailable):
        claim(ports, template_id, "c-1", key="k")
    assert available(tables, template_id) == 0
    assert claim(ports, template_id, "c-1", key="k").status == 201


def test_a_stop_reaches_other_processes_within_the_template_cache_time(world, clock):
    ports, _ = world
    template_id = given_template(ports, total=5, per_user_limit=5)
    claim(ports, template_id, "c-1")  # this process now keeps the template
    # When another process stops it (its write; this process's cache still holds the old template)
    stored = ports.templates.get(template_id)
    uow = ports.unit_of_work()
    uow.replace_template(stored, stored.edited(TemplateEdit(issuing=False), clock.now_ms()))
    uow.commit()
    # Then claims go on for at most template_cache_s, and stop after it
    assert claim(ports, template_id, "c-1").status == 201
    clock.advance(ports.policy.template_cache_s + 0.01)
    with pytest.raises(Ended):
        claim(ports, template_id, "c-1")


def test_an_edit_in_this_process_applies_at_once_and_keeps_the_remaining_quantity(world):
    ports, _ = world
    template_id = given_template(ports, total=5, per_user_limit=5)
    claim(ports, template_id, "c-1")
    templates.edit_template(template_id, TemplateEdit(name="改名", issuing=False), ports)
    with pytest.raises(Ended):
        claim(ports, template_id, "c-1")
    shown = templates.show_template(template_id, ports)
    assert shown["name"] == "改名" and shown["counts"]["remaining"] == 4


def test_a_template_for_a_store_that_does_not_exist_is_refused(world):
    ports, _ = world
    with pytest.raises(UnknownStore):
        given_template(ports, stores=frozenset({"S404"}))


# -- in the store ----------------------------------------------------------------------------------
def redeem(ports, code, who=STAFF, store="S001", purchase=None, verification=None, key=None):
    request = IdempotentRequest.of(f"coupon-redemptions:{who.sub}", key, {"code": code, "store": store})
    cmd = OfflineRedemption(store, code, purchase, verification)
    return redemption.redeem_offline(cmd, who, request, ports)


def test_twenty_concurrent_redemptions_of_one_code_redeem_it_once(world):
    ports, tables = world
    template_id = given_template(ports)
    code = claim(ports, template_id, "c-1").body["code"]

    def attempt(i: int) -> str:
        staff = Principal(f"staff-{i}", Role.STORE_STAFF, "S001")
        try:
            return str(redeem(ports, code, who=staff).status)
        except CouponNotAvailable as refused:
            return refused.code

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(attempt, range(20)))
    assert answers.count("201") == 1 and answers.count("COUPON_NOT_AVAILABLE") == 19
    assert len(tables.redemptions) == 1
    assert tallied(tables, template_id)[Status.REDEEMED_OFFLINE] == 1


def test_a_customer_needs_the_stores_current_code(world, clock):
    ports, _ = world
    template_id = given_template(ports)
    code = claim(ports, template_id, "c-1").body["code"]
    me = Principal("c-1", Role.CUSTOMER)
    with pytest.raises(VerificationCodeRequired):
        redeem(ports, code, who=me)
    current = verification_code(ports.verification_key, "S001", ports.policy.verification_step_s, clock.now_ms())
    with pytest.raises(WrongVerificationCode):
        redeem(ports, code, who=me, verification="999999" if current != "999999" else "000000")
    with pytest.raises(NotFound):
        redeem(ports, code, who=Principal("c-2", Role.CUSTOMER), verification=current)
    clock.advance(ports.policy.verification_step_s)  # the code changed a moment ago: the previous one counts
    assert redeem(ports, code, who=me, verification=current).status == 201


def test_staff_of_another_store_and_unknown_stores_are_refused(world):
    ports, _ = world
    template_id = given_template(ports)
    code = claim(ports, template_id, "c-1").body["code"]
    with pytest.raises(Forbidden):
        redeem(ports, code, store="S002")
    with pytest.raises(NotFound):
        redeem(ports, code, who=Principal("x", Role.STORE_STAFF, "S404"), store="S404")
    with pytest.raises(Forbidden):
        redeem(ports, code, who=ADMIN)


def test_a_replayed_redemption_gets_its_first_answer(world):
    ports, _ = world
    template_id = given_template(ports)
    code = claim(ports, template_id, "c-1").body["code"]
    first = redeem(ports, code, key="r1")
    assert redeem(ports, code, key="r1").body == first.body
    with pytest.raises(CouponNotAvailable):
        redeem(ports, code, key="r2")


def test_a_reversal_within_the_window_once_and_never_after_it(world, clock):
    ports, tables = world
    ports = replace(ports, policy=CouponPolicy(reversal_window_s=600))
    template_id = given_template(ports, total=2, per_user_limit=2)
    first = claim(ports, template_id, "c-1").body["code"]
    second = claim(ports, template_id, "c-1").body["code"]
    done = redeem(ports, first).body["redemption_id"]
    reversed_ = redemption.reverse_redemption(done, "扫错", ADMIN, ports)
    assert reversed_["coupon_status"] == "AVAILABLE" and reversed_["reversed_by"] == "admin"
    with pytest.raises(AlreadyReversed):
        redemption.reverse_redemption(done, "again", ADMIN, ports)
    with pytest.raises(Forbidden):
        redemption.reverse_redemption(done, "x", STAFF, ports)
    late = redeem(ports, second).body["redemption_id"]
    clock.advance(601)
    with pytest.raises(ReversalWindowClosed):
        redemption.reverse_redemption(late, "too late", ADMIN, ports)
    assert [e.type for e in tables.events].count(EventType.COUPON_REDEMPTION_REVERSED) == 1


def test_a_reversal_after_the_use_window_leaves_the_coupon_expired(world, clock):
    ports, _ = world
    ports = replace(ports, policy=CouponPolicy(reversal_window_s=3 * 3600))
    template_id = given_template(ports)
    code = claim(ports, template_id, "c-1").body["code"]
    done = redeem(ports, code).body["redemption_id"]
    clock.advance(2.5 * 3600)  # past the coupon's use window, inside the reversal window
    assert redemption.reverse_redemption(done, "x", ADMIN, ports)["coupon_status"] == "EXPIRED"
    assert templates.show_template(template_id, ports)["counts"]["expired"] == 1


# -- the wallet and the sweeper --------------------------------------------------------------------
def test_the_wallet_for_a_cart_lists_usable_online_coupons_best_first(world):
    ports, _ = world
    teas = given_template(ports, per_user_limit=1)
    offline = given_template(ports, channels=frozenset({Channel.OFFLINE}))
    for template_id in (teas, offline):
        claim(ports, template_id, "c-1")
    usable = wallet.usable_for_cart("c-1", [("TEA-1", 1), ("CUP-1", 1)], ports)
    assert [c["template_id"] for c in usable] == [teas] and usable[0]["saving_fen"] == 2000
    assert wallet.usable_for_cart("c-1", [("CUP-1", 1)], ports) == []  # below the threshold


def test_the_sweeper_expires_only_what_is_due_and_the_books_reconcile(world, clock):
    ports, _ = world
    template_id = given_template(ports, total=4, per_user_limit=4)
    codes = [claim(ports, template_id, "c-1").body["code"] for _ in range(3)]
    redeem(ports, codes[0])
    assert expiry.expire_lapsed(ports) == 0
    clock.advance(2 * 3600)
    assert expiry.expire_lapsed(ports) == 2 and expiry.expire_lapsed(ports) == 0
    counts = templates.show_template(template_id, ports)["counts"]
    assert counts == {
        "total": 4,
        "remaining": 1,
        "claimed": 3,
        "available": 0,
        "locked": 0,
        "used": 0,
        "redeemed_offline": 1,
        "expired": 2,
    }
    mine, _ = wallet.my_coupons("c-1", Status.EXPIRED, 10, None, ports)
    assert len(mine) == 2


def test_one_thread_refreshes_an_expired_template_while_the_others_claim_under_the_last_read(world, clock):
    # Given a process that read the template, and a refresh that takes a while
    import threading

    ports, _tables = world
    template_id = given_template(ports)
    reads: list[str] = []
    started, release = threading.Event(), threading.Event()

    class SlowTemplates:
        def __init__(self, inner):
            self.inner = inner

        def get(self, found_id):
            reads.append(found_id)
            started.set()
            assert release.wait(5)
            return self.inner.get(found_id)

    slow = replace(ports, templates=SlowTemplates(ports.templates))
    kept = claims.ClaimMemory()
    release.set()
    first = kept.template(template_id, slow)
    release.clear()
    started.clear()
    # When the cache time runs out and one thread is refreshing it
    clock.advance(ports.policy.template_cache_s + 0.1)
    refresher = threading.Thread(target=kept.template, args=(template_id, slow))
    refresher.start()
    assert started.wait(5)
    # Then another thread claims under the template read before, without a read of its own
    assert kept.template(template_id, slow) == first
    release.set()
    refresher.join(5)
    assert reads == [template_id, template_id]
