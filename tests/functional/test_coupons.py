"""Coupons on moto, through the routes (API.md "Coupons", docs/coupons.md): templates and their books,
claims (one transaction, idempotent, within the total and the per-user limit), the wallet, and
redemption in the store (only where allowed, with the verification code for customers, once)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from infra.local.faults import FaultInjector, Kind
from shared.coupons import claims, expiry, wallet
from shared.coupons.model import Status, verification_code
from shared.data.connection import events
from shared.data.items import CouponItem, EventItem, IdempotencyItem
from shared.kernel.clock import FakeClock, now_ms
from shared.kernel.errors import IdempotencyKeyReused
from shared.kernel.idempotency import IdempotentRequest
from shared.platform import bootstrap
from shared.web.auth import Role, issue_token
from tests.conftest import TEST_ENV
from tests.functional.coupons_support import (
    claim,
    claimant_counts,
    coupons_of,
    create_template,
    get,
    given_stores,
    iso_in,
    patch,
    post,
    template_body,
)
from tests.functional.events_support import announced
from tests.functional.orders_support import given_catalogue


@pytest.fixture
def stores(table):
    given_stores()


def staff_token(store: str, sub: str = "staff-x", role: Role = Role.STORE_STAFF) -> str:
    return issue_token(TEST_ENV["JWT_SECRET"], sub, role, store)


def store_code(store: str) -> str:
    ports = bootstrap.coupons()
    return verification_code(ports.verification_key, store, ports.policy.verification_step_s, now_ms())


# -- templates ---------------------------------------------------------------------------------
def test_an_admin_creates_a_template_and_sees_its_books(client, tokens, stores):
    # When a merchant admin creates a 满100减20 template of 10
    created = post(client, "/admin/coupon-templates", tokens["merchant_admin"], template_body(expected_peak_per_s=2000))
    assert created.status_code == 201, created.json_body
    template_id = created.json_body["template_id"]
    # Then it has ceil(2000 / 500) = 4 shards, and its books show 10 remaining, nothing claimed
    shown = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"])
    assert shown.status_code == 200
    assert shown.json_body["shards"] == 4
    assert shown.json_body["counts"] == {
        "total": 10,
        "remaining": 10,
        "claimed": 0,
        "available": 0,
        "locked": 0,
        "used": 0,
        "redeemed_offline": 0,
        "expired": 0,
    }
    # And it is in the admin's list
    listed = get(client, "/admin/coupon-templates?limit=5", tokens["merchant_admin"])
    assert [t["template_id"] for t in listed.json_body["items"]] == [template_id]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "threshold", "threshold_fen": None}, "threshold_fen"),
        ({"kind": "threshold", "amount_fen": 20000}, "amount_fen"),  # more off than the threshold
        ({"kind": "fixed", "amount_fen": None}, "amount_fen"),
        ({"kind": "percent", "amount_fen": None, "percent_off": None}, "percent_off"),
        ({"kind": "fixed", "percent_off": 10}, "percent_off"),
        ({"valid_to": iso_in(-10)}, "valid_to"),
        ({"claim_to": iso_in(7200)}, "claim_to"),  # claims after the coupons stop being usable
        ({"total": 0}, "total"),
        ({"per_user_limit": 0}, "per_user_limit"),
        ({"channels": []}, "channels"),
        ({"amount_fen": 12.5}, "amount_fen"),
    ],
)
def test_a_template_that_makes_no_sense_is_refused(client, tokens, stores, changes, field):
    refused = post(client, "/admin/coupon-templates", tokens["merchant_admin"], template_body(**changes))
    assert refused.status_code == 422, refused.json_body
    assert field in str(refused.json_body["details"])


def test_a_template_for_an_unknown_store_or_by_a_customer_is_refused(client, tokens, stores):
    unknown = post(client, "/admin/coupon-templates", tokens["merchant_admin"], template_body(stores=["S404"]))
    by_customer = post(client, "/admin/coupon-templates", tokens["customer"], template_body())
    assert (unknown.status_code, unknown.json_body["code"]) == (422, "UNKNOWN_STORE")
    assert by_customer.status_code == 403
    assert (
        get(client, "/admin/coupon-templates/ct000000000000000000000000", tokens["merchant_admin"]).status_code == 404
    )
    assert get(client, "/admin/coupon-templates/nonsense", tokens["merchant_admin"]).status_code == 404


def test_an_edit_changes_text_and_windows_but_never_the_remaining_quantity(client, tokens, stores):
    # Given a template of 10 of which 3 are claimed
    template_id = create_template(client, tokens)
    for who in ("c-a", "c-b", "c-c"):
        assert claim(template_id, who).status == 201
    # When the admin renames it and moves its end, as an incumbent's edit form would send it
    edited = patch(
        client,
        f"/admin/coupon-templates/{template_id}",
        tokens["merchant_admin"],
        {"name": "新名字", "description": "限时", "valid_to": iso_in(7200), "claim_to": iso_in(7000)},
    )
    # Then the text and window changed, and 7 are still left (not 10)
    assert edited.status_code == 200, edited.json_body
    shown = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body
    assert shown["name"] == "新名字" and shown["version"] == 1
    assert shown["counts"]["remaining"] == 7 and shown["counts"]["claimed"] == 3
    # And the coupons claimed before keep the name and window they were claimed under
    coupon = coupons_of(template_id)[0]
    assert coupon.name == "满100减20"


def test_stopping_a_template_ends_its_claims(client, tokens, stores):
    template_id = create_template(client, tokens)
    stopped = patch(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"], {"issuing": False})
    assert stopped.status_code == 200 and stopped.json_body["issuing"] is False
    refused = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"])
    assert (refused.status_code, refused.json_body["code"]) == (409, "ENDED")
    empty = patch(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"], {})
    assert empty.status_code == 422


# -- claims ------------------------------------------------------------------------------------
def test_a_claim_gives_a_coupon_with_an_offline_code_once_per_customer(client, tokens, stores):
    template_id = create_template(client, tokens)
    # When a customer claims, then claims again
    first = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"])
    again = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"])
    # Then the first is a coupon with a 12-character code and its QR payload; the second is 429
    assert first.status_code == 201, first.json_body
    coupon = first.json_body
    assert coupon["status"] == "AVAILABLE" and len(coupon["code"]) == 12
    assert coupon["qr_payload"] == f"RSCPN1:{coupon['code']}"
    assert coupon["threshold_fen"] == 10000 and coupon["amount_fen"] == 2000
    assert (again.status_code, again.json_body["code"]) == (429, "LIMIT_REACHED")
    # And the claim was announced (without the code), and the books moved by one
    # (derived from the coupon's INSERT on the stream, not an outbox item)
    claimed = [e for e in announced() if e["type"] == "CouponClaimed"]
    assert len(claimed) == 1 and coupon["code"] not in json.dumps(claimed[0])
    assert claimed[0]["aggregate_id"] == coupon["coupon_id"] and claimed[0]["payload"]["template_id"] == template_id
    assert not [e for e in EventItem.scan() if e.event_type == "CouponClaimed"]
    counts = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body["counts"]
    assert (counts["remaining"], counts["claimed"], counts["available"]) == (9, 1, 1)


def test_a_claim_is_one_transaction(client, tokens, stores):
    template_id = create_template(client, tokens)
    claim(template_id, "c-warm")  # the template is now known to this process
    calls: list[str] = []

    def record(**kwargs):
        calls.append(kwargs["model"].name)

    events().register("before-call.dynamodb", record)
    try:
        assert claim(template_id, "c-one").status == 201
    finally:
        events().unregister("before-call.dynamodb", record)
    assert calls == ["TransactWriteItems"]


def test_a_replayed_key_returns_the_same_coupon_even_after_the_template_ran_out(client, tokens, stores):
    template_id = create_template(client, tokens, total=1)
    first = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"], **{"Idempotency-Key": "k1"})
    other = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer2"])
    again = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"], **{"Idempotency-Key": "k1"})
    assert first.status_code == 201
    assert (other.status_code, other.json_body["code"]) == (409, "EXHAUSTED")
    assert again.status_code == 201 and again.json_body == first.json_body
    assert len(coupons_of(template_id)) == 1


def test_the_coupon_carries_the_claims_key_and_no_idempotency_record_is_written(client, tokens, stores):
    template_id = create_template(client, tokens, per_user_limit=2)
    # When a customer claims with a key, then replays it while holding one more coupon
    first = claim(template_id, "c-1", key="k1")
    again = claim(template_id, "c-1", key="k1")
    # Then the replay is answered the coupon as claimed, one coupon exists, and no record was put
    assert (again.status, again.body, again.replayed) == (201, first.body, True)
    assert [c.coupon_id for c in coupons_of(template_id)] == [first.body["coupon_id"]]
    assert not [i for i in IdempotencyItem.scan() if "coupon-claims" in i.pk]
    # And the key with another body is refused (and claims nothing)
    other = IdempotentRequest(f"coupon-claims:{template_id}:c-1", "k1", fingerprint="0" * 64)
    with pytest.raises(IdempotencyKeyReused):
        claims.claim(template_id, "c-1", other, bootstrap.coupons())
    assert len(coupons_of(template_id)) == 1


def test_exhausted_only_when_every_shard_is_empty(client, tokens, stores):
    # Given 4 units over 4 shards, one per shard
    template_id = create_template(client, tokens, total=4, expected_peak_per_s=2000)
    # When 6 customers claim (several start at the same shard)
    answers = []
    for i in range(6):
        try:
            answers.append(claim(template_id, f"c-{i}").status)
        except Exception as exc:
            answers.append(getattr(exc, "code", repr(exc)))
    # Then 4 got one and 2 were told EXHAUSTED, and no shard is below zero
    assert sorted(map(str, answers)) == ["201", "201", "201", "201", "EXHAUSTED", "EXHAUSTED"]
    assert bootstrap.coupons().templates.remaining(bootstrap.coupons().templates.get(template_id)) == [0, 0, 0, 0]


def test_claims_outside_the_claim_window(client, tokens, stores):
    later = create_template(client, tokens, claim_from=iso_in(600), claim_to=iso_in(1200))
    early = post(client, f"/coupon-templates/{later}/claim", tokens["customer"])
    assert (early.status_code, early.json_body["code"]) == (409, "NOT_STARTED")
    over = create_template(client, tokens, valid_from=iso_in(-120), claim_from=iso_in(-120), claim_to=iso_in(-60))
    late = post(client, f"/coupon-templates/{over}/claim", tokens["customer"])
    assert (late.status_code, late.json_body["code"]) == (409, "ENDED")
    assert post(client, "/coupon-templates/ct000000000000000000000000/claim", tokens["customer"]).status_code == 404


def test_a_per_user_limit_of_two(client, tokens, stores):
    template_id = create_template(client, tokens, per_user_limit=2)
    answers = [post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).status_code for _ in range(3)]
    assert answers == [201, 201, 429]
    assert claimant_counts(template_id) == {"c-1": 2}


def test_valid_days_from_the_claim(client, tokens, stores):
    template_id = create_template(client, tokens, valid_days=1, valid_to=iso_in(10 * 86400))
    coupon = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).json_body
    item = CouponItem.get(f"COUPON#{coupon['coupon_id']}", "COUPON")
    assert 86400_000 - 5_000 < int(item.use_to) - int(item.claimed_at) <= 86400_000


def test_a_lost_transaction_response_is_replayed_not_claimed_twice(client, tokens, stores):
    template_id = create_template(client, tokens, per_user_limit=3)
    claim(template_id, "c-warm")
    # Given the claim's transaction applies but its answer is lost
    faults = FaultInjector(
        rate=1.0, seed=1, kinds=[Kind.TIMEOUT_APPLIED], operations=["TransactWriteItems"], max_faults=1
    )
    with faults.attached():
        first = claim(template_id, "c-lost", key="k-lost")
    # Then the claim tries again (the next shard) and the idempotency record answers with the coupon
    # that was written: one coupon, one count, and a later replay gets the same answer
    assert faults.total == 1 and first.status == 201
    assert claimant_counts(template_id)["c-lost"] == 1 and len(coupons_of(template_id)) == 2
    assert claim(template_id, "c-lost", key="k-lost").body == first.body


# -- the wallet --------------------------------------------------------------------------------
def test_my_coupons_by_status_and_for_a_cart(client, tokens, stores):
    given_catalogue({})  # TEA-1 at 100 yuan, CUP-1 at 33.33 yuan
    tea_only = create_template(client, tokens, name="茶券", scope={"skus": ["TEA-1"]}, threshold_fen=5000)
    big = create_template(client, tokens, name="大额", amount_fen=5000, threshold_fen=50000)
    percent = create_template(
        client, tokens, kind="percent", amount_fen=None, threshold_fen=None, percent_off=10, cap_fen=500, name="九折"
    )
    for template_id in (tea_only, big, percent):
        assert post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).status_code == 201
    mine = get(client, "/me/coupons?status=AVAILABLE", tokens["customer"]).json_body
    assert {c["name"] for c in mine["items"]} == {"茶券", "大额", "九折"}
    assert get(client, "/me/coupons?status=USED", tokens["customer"]).json_body["items"] == []
    assert get(client, "/me/coupons?status=nope", tokens["customer"]).status_code == 400
    # For a cart of one tea and one cup: the tea coupon saves 20 yuan, 九折 saves 5 (capped), 大额 is out
    usable = get(client, "/me/coupons?cart=TEA-1:1,CUP-1:1", tokens["customer"]).json_body["items"]
    assert [(c["name"], c["saving_fen"]) for c in usable] == [("茶券", 2000), ("九折", 500)]
    assert get(client, "/me/coupons?cart=TEA-1", tokens["customer"]).status_code == 400
    assert get(client, "/me/coupons", tokens["customer2"]).json_body["items"] == []


# -- in the store ------------------------------------------------------------------------------
def test_store_staff_redeem_a_code_once_and_the_books_say_so(client, tokens, stores):
    template_id = create_template(client, tokens)
    coupon = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).json_body
    # When the store's staff scan the QR payload for a 120 yuan purchase
    path = "/stores/S001/coupon-redemptions"
    done = post(client, path, tokens["store_staff"], {"code": coupon["qr_payload"], "purchase_fen": 12000})
    again = post(client, path, tokens["store_staff"], {"code": coupon["code"]})
    # Then it is redeemed once, recorded with store, staff and time, and cannot be redeemed again
    assert done.status_code == 201, done.json_body
    assert {k: done.json_body[k] for k in ("store_id", "redeemed_by", "purchase_fen")} == {
        "store_id": "S001",
        "redeemed_by": "staff-1",
        "purchase_fen": 12000,
    }
    assert (again.status_code, again.json_body["code"]) == (409, "COUPON_NOT_AVAILABLE")
    mine = get(client, "/me/coupons", tokens["customer"]).json_body["items"]
    assert mine[0]["status"] == "REDEEMED_OFFLINE"
    counts = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body["counts"]
    assert (counts["claimed"], counts["available"], counts["redeemed_offline"]) == (1, 0, 1)
    assert [e.event_type for e in EventItem.scan() if e.event_type == "CouponRedeemedOffline"] == [
        "CouponRedeemedOffline"
    ]
    listed = get(client, "/stores/S001/coupon-redemptions", tokens["store_staff"]).json_body["items"]
    assert [r["redemption_id"] for r in listed] == [done.json_body["redemption_id"]]
    # And a merchant admin reads the same list, and gets 404 (not an empty page) for a store that does not exist
    admin = get(client, "/stores/S001/coupon-redemptions", tokens["merchant_admin"]).json_body["items"]
    assert [r["redemption_id"] for r in admin] == [done.json_body["redemption_id"]]
    assert get(client, "/stores/NO-SUCH/coupon-redemptions", tokens["merchant_admin"]).status_code == 404
    # And ?limit= is checked on the wallet even when ?cart= asks for the usable coupons instead
    for bad in ("limit=null", "status=%C2%A05", "cursor=%C2%B6"):
        assert get(client, f"/me/coupons?cart=TEA-1:1&{bad}", tokens["customer"]).status_code == 400, bad


def test_redemption_only_where_the_coupon_allows(client, tokens, stores):
    template_id = create_template(client, tokens, stores=["S002"], total=5, per_user_limit=5)
    online_only = create_template(client, tokens, channels=["online"])
    code = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).json_body["code"]
    online_code = post(client, f"/coupon-templates/{online_only}/claim", tokens["customer"]).json_body["code"]
    path = "/stores/S001/coupon-redemptions"
    at_other_store = post(client, path, tokens["store_staff"], {"code": code})
    online = post(client, path, tokens["store_staff"], {"code": online_code})
    below = post(client, "/stores/S002/coupon-redemptions", staff_token("S002"), {"code": code, "purchase_fen": 100})
    not_my_store = post(client, "/stores/S002/coupon-redemptions", tokens["store_staff"], {"code": code})
    unknown = post(client, path, tokens["store_staff"], {"code": "0000-0000-0000"})
    assert (at_other_store.status_code, at_other_store.json_body["details"]["reason"]) == (422, "store_not_allowed")
    assert (online.status_code, online.json_body["details"]["reason"]) == (422, "online_only")
    assert (below.status_code, below.json_body["details"]["reason"]) == (422, "below_threshold")
    assert not_my_store.status_code == 403
    assert unknown.status_code == 404
    ok = post(client, "/stores/S002/coupon-redemptions", staff_token("S002", role=Role.GUIDE), {"code": code.lower()})
    assert ok.status_code == 201 and ok.json_body["redeemed_by_role"] == "guide"


def test_a_customer_self_redeems_only_with_the_stores_current_code(client, tokens, stores):
    template_id = create_template(client, tokens)
    code = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).json_body["code"]
    path = "/stores/S001/coupon-redemptions"
    without = post(client, path, tokens["customer"], {"code": code})
    wrong_code = "000000" if store_code("S001") != "000000" else "111111"
    wrong = post(client, path, tokens["customer"], {"code": code, "verification_code": wrong_code})
    other_store = post(client, path, tokens["customer"], {"code": code, "verification_code": store_code("S002")})
    not_theirs = post(client, path, tokens["customer2"], {"code": code, "verification_code": store_code("S001")})
    assert (without.status_code, without.json_body["code"]) == (422, "VERIFICATION_CODE_REQUIRED")
    assert (wrong.status_code, wrong.json_body["code"]) == (422, "WRONG_VERIFICATION_CODE")
    assert other_store.status_code == 422
    assert not_theirs.status_code == 404
    shown = get(client, "/stores/S001/verification-code", tokens["store_staff"]).json_body
    done = post(client, path, tokens["customer"], {"code": code, "verification_code": shown["verification_code"]})
    assert done.status_code == 201 and done.json_body["redeemed_by"] == "c-1"
    assert get(client, "/stores/S002/verification-code", tokens["store_staff"]).status_code == 403


def test_an_admin_reverses_a_redemption_once_within_the_window(client, tokens, stores):
    template_id = create_template(client, tokens)
    code = post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).json_body["code"]
    redemption = post(client, "/stores/S001/coupon-redemptions", tokens["store_staff"], {"code": code}).json_body
    path = f"/admin/coupon-redemptions/{redemption['redemption_id']}/reversal"
    by_staff = post(client, path, tokens["store_staff"], {"reason": "扫错了"})
    reversed_ = post(client, path, tokens["merchant_admin"], {"reason": "扫错了"})
    twice = post(client, path, tokens["merchant_admin"], {"reason": "again"})
    assert by_staff.status_code == 403
    assert reversed_.status_code == 200, reversed_.json_body
    assert reversed_.json_body["reversed_by"] == "admin" and reversed_.json_body["coupon_status"] == "AVAILABLE"
    assert (twice.status_code, twice.json_body["code"]) == (409, "ALREADY_REVERSED")
    counts = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body["counts"]
    assert (counts["available"], counts["redeemed_offline"]) == (1, 0)
    # And the coupon can be redeemed again
    assert post(client, "/stores/S001/coupon-redemptions", tokens["store_staff"], {"code": code}).status_code == 201


def test_the_sweeper_expires_unused_coupons_and_the_books_reconcile(client, tokens, stores):
    template_id = create_template(client, tokens, total=3, per_user_limit=3, valid_to=iso_in(60), claim_to=iso_in(30))
    for _ in range(2):
        assert post(client, f"/coupon-templates/{template_id}/claim", tokens["customer"]).status_code == 201
    assert expiry.expire_lapsed(bootstrap.coupons()) == 0
    # When the use window has passed (a clock two minutes ahead)
    later = replace(bootstrap.coupons(), clock=FakeClock(now_ms() + 120_000))
    # Then the customer sees them EXPIRED at once, and the sweeper writes it, once
    shown, _ = wallet.my_coupons("c-1", Status.EXPIRED, 10, None, later)
    assert len(shown) == 2 and {c["status"] for c in shown} == {"EXPIRED"}
    assert expiry.expire_lapsed(later) == 2
    assert expiry.expire_lapsed(later) == 0
    counts = get(client, f"/admin/coupon-templates/{template_id}", tokens["merchant_admin"]).json_body["counts"]
    assert counts == {
        "total": 3,
        "remaining": 1,
        "claimed": 2,
        "available": 0,
        "locked": 0,
        "used": 0,
        "redeemed_offline": 0,
        "expired": 2,
    }
