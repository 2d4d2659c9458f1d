"""The pure rules of coupons: what each kind saves (never more than what it applies to), scope and
stores, windows and validity, the status machine, the books, codes and stores' verification codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.coupons.model import (
    DAY_MS,
    TRANSITIONS,
    Action,
    Benefit,
    CartItem,
    Channel,
    Coupon,
    Kind,
    Scope,
    Status,
    Tally,
    Template,
    TemplateDraft,
    TemplateEdit,
    Terms,
    Validity,
    Window,
    eligible_amount,
    new_code,
    next_status,
    normalise_code,
    tally_moves,
    verification_code,
    verification_matches,
)
from shared.kernel.errors import (
    CouponExpired,
    CouponInUse,
    CouponNotAvailable,
    CouponNotUsable,
    Ended,
    NotStarted,
    ValidationFailed,
)

NOW = 1_767_225_600_000
HOUR = 3600 * 1000


def draft(**changes) -> TemplateDraft:
    values = {
        "name": "满100减20",
        "description": "",
        "terms": Terms(Benefit(Kind.THRESHOLD, amount_fen=2000, threshold_fen=10000)),
        "total": 10,
        "per_user_limit": 1,
        "claim_from_ms": NOW - HOUR,
        "claim_to_ms": NOW + HOUR,
        "valid_from_ms": NOW - HOUR,
        "valid_to_ms": NOW + 2 * HOUR,
    }
    return TemplateDraft(**{**values, **changes})


def template(**changes) -> Template:
    return Template.plan(draft(**changes), "ct1", shards=4, now_ms=NOW)


def coupon(status: Status = Status.AVAILABLE, **terms_changes) -> Coupon:
    claimed = Coupon.claimed(template(**terms_changes), "c-1", "cp1", shard=0, now_ms=NOW)
    return Coupon(**{**claimed.__dict__, "status": status})


# -- what a coupon saves -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("benefit", "eligible", "shipping", "saving"),
    [
        (Benefit(Kind.FIXED, amount_fen=500), 10000, 0, 500),
        (Benefit(Kind.FIXED, amount_fen=500), 300, 0, 300),  # never more than the eligible amount
        (Benefit(Kind.THRESHOLD, amount_fen=2000, threshold_fen=10000), 9999, 0, 0),
        (Benefit(Kind.THRESHOLD, amount_fen=2000, threshold_fen=10000), 10000, 0, 2000),
        (Benefit(Kind.PERCENT, percent_off=15), 3333, 0, 499),  # rounds down: the merchant's favour
        (Benefit(Kind.PERCENT, percent_off=50, cap_fen=1000), 10000, 0, 1000),
        (Benefit(Kind.SHIPPING), 100, 1000, 1000),  # free shipping
        (Benefit(Kind.SHIPPING, amount_fen=600), 100, 1000, 600),
        (Benefit(Kind.SHIPPING, amount_fen=600), 100, 0, 0),  # pickup: nothing to take off
        (Benefit(Kind.SHIPPING, threshold_fen=5000), 4999, 1000, 0),
        (Benefit(Kind.FIXED, amount_fen=500), 0, 0, 0),
    ],
)
def test_what_each_kind_saves(benefit, eligible, shipping, saving):
    assert benefit.saving(eligible, shipping) == saving


@given(
    kind=st.sampled_from(list(Kind)),
    amount=st.one_of(st.none(), st.integers(1, 10**6)),
    percent=st.integers(1, 99),
    cap=st.one_of(st.none(), st.integers(1, 10**6)),
    threshold=st.integers(0, 10**6),
    eligible=st.integers(0, 10**7),
    shipping=st.integers(0, 5000),
)
def test_a_saving_is_never_negative_nor_more_than_what_it_applies_to(
    kind, amount, percent, cap, threshold, eligible, shipping
):
    percent_kind = kind is Kind.PERCENT
    benefit = Benefit(
        kind,
        amount_fen=None if percent_kind else amount,
        percent_off=percent if percent_kind else None,
        cap_fen=cap if percent_kind else None,
        threshold_fen=threshold,
    )
    saving = benefit.saving(eligible, shipping)
    assert 0 <= saving <= (shipping if kind is Kind.SHIPPING else eligible)
    if eligible < threshold:
        assert saving == 0


def test_scope_exclusions_win_and_an_empty_scope_covers_everything():
    everything = Scope()
    teas_but_one = Scope(categories=frozenset({"tea"}), exclude_skus=frozenset({"TEA-2"}))
    assert everything.covers("ANY", None)
    assert teas_but_one.covers("TEA-1", "tea") and not teas_but_one.covers("TEA-2", "tea")
    assert not teas_but_one.covers("CUP-1", "home")
    assert not Scope(exclude_categories=frozenset({"home"})).covers("CUP-1", "home")
    terms = Terms(Benefit(Kind.FIXED, amount_fen=1), scope=teas_but_one)
    items = [CartItem("TEA-1", "tea", 10000), CartItem("TEA-2", "tea", 5000), CartItem("CUP-1", "home", 3333)]
    assert eligible_amount(terms, items) == 10000


# -- templates -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"terms": Terms(Benefit(Kind.THRESHOLD, amount_fen=2000))}, "threshold_fen"),
        ({"terms": Terms(Benefit(Kind.THRESHOLD, amount_fen=20000, threshold_fen=10000))}, "amount_fen"),
        ({"terms": Terms(Benefit(Kind.FIXED))}, "amount_fen"),
        ({"terms": Terms(Benefit(Kind.PERCENT))}, "percent_off"),
        ({"terms": Terms(Benefit(Kind.PERCENT, percent_off=10, amount_fen=5))}, "amount_fen"),
        ({"terms": Terms(Benefit(Kind.FIXED, amount_fen=5, cap_fen=5))}, "percent_off"),
        ({"terms": Terms(Benefit(Kind.FIXED, amount_fen=5), channels=frozenset())}, "channels"),
        ({"valid_to_ms": NOW - 1, "claim_to_ms": NOW - 2}, "valid_to"),
        ({"claim_to_ms": NOW + 3 * HOUR}, "claim_to"),
        ({"claim_from_ms": NOW + HOUR}, "claim_to"),
        ({"total": 0}, "total"),
        ({"per_user_limit": 101}, "per_user_limit"),
        ({"valid_days": 0}, "valid_days"),
    ],
)
def test_a_template_that_makes_no_sense_is_refused(changes, field):
    with pytest.raises(ValidationFailed) as refused:
        template(**changes)
    assert field in {problem["field"] for problem in refused.value.details["errors"]}


def test_claims_only_inside_the_claim_window_and_while_issuing():
    found = template(claim_from_ms=NOW, claim_to_ms=NOW + HOUR)
    with pytest.raises(NotStarted):
        found.check_claim(NOW - 1)
    found.check_claim(NOW)
    with pytest.raises(Ended):
        found.check_claim(NOW + HOUR)
    stopped = found.edited(TemplateEdit(issuing=False), NOW)
    with pytest.raises(Ended) as refused:
        stopped.check_claim(NOW)
    assert refused.value.details["reason"] == "stopped"


def test_an_edit_moves_the_version_and_keeps_the_quantity_and_terms():
    found = template()
    edited = found.edited(TemplateEdit(name="新", valid_to_ms=NOW + 5 * HOUR), NOW)
    assert (edited.name, edited.version, edited.total, edited.terms) == ("新", 1, found.total, found.terms)
    assert edited.validity.valid_to_ms == NOW + 5 * HOUR
    with pytest.raises(ValidationFailed):
        found.edited(TemplateEdit(valid_to_ms=NOW), NOW)  # before the claim window's end


def test_validity_n_days_from_the_claim_never_past_the_campaign():
    validity = Validity(NOW, NOW + 10 * DAY_MS, days=3)
    assert validity.for_claim_at(NOW + DAY_MS) == Window(NOW + DAY_MS, NOW + 4 * DAY_MS)
    assert validity.for_claim_at(NOW + 9 * DAY_MS) == Window(NOW + 9 * DAY_MS, NOW + 10 * DAY_MS)
    assert Validity(NOW, NOW + DAY_MS).for_claim_at(NOW + HOUR) == Window(NOW, NOW + DAY_MS)


def test_a_coupon_copies_the_terms_it_was_claimed_under():
    found = template()
    claimed = Coupon.claimed(found, "c-1", "cp1", shard=2, now_ms=NOW)
    edited = found.edited(TemplateEdit(name="改了", valid_to_ms=NOW + 9 * HOUR), NOW)
    assert claimed.name == "满100减20" and claimed.use_window.ends_ms == NOW + 2 * HOUR
    assert edited.name != claimed.name and claimed.terms == found.terms and claimed.shard == 2


# -- the status machine --------------------------------------------------------------------------
@pytest.mark.parametrize(("before", "action"), sorted(TRANSITIONS))
def test_every_transition_of_the_table(before, action):
    assert next_status(coupon(before), action, NOW) is TRANSITIONS[(before, action)]


def test_a_coupon_coming_back_after_its_window_is_expired():
    lapsed = NOW + 3 * HOUR
    assert next_status(coupon(Status.LOCKED), Action.RETURN, lapsed) is Status.EXPIRED
    assert next_status(coupon(Status.REDEEMED_OFFLINE), Action.REVERSE, lapsed) is Status.EXPIRED
    assert next_status(coupon(Status.LOCKED), Action.RETURN, NOW) is Status.AVAILABLE


@pytest.mark.parametrize(
    ("status", "action", "error"),
    [
        (Status.USED, Action.LOCK, CouponNotAvailable),
        (Status.LOCKED, Action.LOCK, CouponInUse),
        (Status.LOCKED, Action.REDEEM, CouponInUse),
        (Status.REDEEMED_OFFLINE, Action.REDEEM, CouponNotAvailable),
        (Status.EXPIRED, Action.RETURN, CouponNotAvailable),
        (Status.AVAILABLE, Action.USE, CouponNotAvailable),
    ],
)
def test_moves_the_table_does_not_have_are_refused(status, action, error):
    with pytest.raises(error):
        next_status(coupon(status), action, NOW)


def test_offline_checks_channel_store_window_and_threshold():
    store_only = coupon(terms=Terms(Benefit(Kind.FIXED, amount_fen=500), stores=frozenset({"S002"})))
    with pytest.raises(CouponNotUsable) as wrong_store:
        store_only.check_offline("S001", NOW, None)
    assert wrong_store.value.details["reason"] == "store_not_allowed"
    store_only.check_offline("S002", NOW, None)
    online = coupon(terms=Terms(Benefit(Kind.FIXED, amount_fen=500), channels=frozenset({Channel.ONLINE})))
    with pytest.raises(CouponNotUsable):
        online.check_offline("S001", NOW, None)
    with pytest.raises(CouponNotUsable) as below:
        coupon().check_offline("S001", NOW, 9999)
    assert below.value.details["reason"] == "below_threshold"
    with pytest.raises(CouponExpired):
        coupon().check_offline("S001", NOW + 2 * HOUR, None)
    assert coupon().shown_status(NOW + 2 * HOUR) is Status.EXPIRED


def test_the_books_move_with_each_status():
    assert tally_moves(Status.AVAILABLE, Status.LOCKED) == {Status.LOCKED: 1}
    assert tally_moves(Status.LOCKED, Status.USED) == {Status.LOCKED: -1, Status.USED: 1}
    assert tally_moves(Status.LOCKED, Status.AVAILABLE) == {Status.LOCKED: -1}
    tally = Tally(total=10, remaining=6, claimed=4, by_status={Status.USED: 1, Status.EXPIRED: 1})
    assert tally.available == 2 and tally.reconciles


# -- codes ---------------------------------------------------------------------------------------
def test_codes_are_unguessable_and_read_back_however_they_are_typed():
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == 12 for c in codes)
    assert not set("ILOU") & set("".join(codes))
    assert normalise_code(" rscpn1:7k3m-9qxa-2rtw ") == "7K3M9QXA2RTW"
    assert normalise_code("O1IL") == "0111"


def test_a_stores_verification_code_rotates_and_the_previous_one_still_counts():
    key, step_s = b"k", 300
    now_code = verification_code(key, "S001", step_s, NOW)
    assert len(now_code) == 6 and now_code.isdigit()
    assert verification_matches(key, "S001", step_s, NOW + step_s * 1000, now_code)  # the previous step
    assert not verification_matches(key, "S001", step_s, NOW + 2 * step_s * 1000, now_code)
    assert verification_code(key, "S002", step_s, NOW) != now_code or verification_code(
        key, "S002", step_s, NOW + step_s * 1000
    ) != verification_code(key, "S001", step_s, NOW + step_s * 1000)
