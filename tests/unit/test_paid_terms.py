"""The paid membership's stored terms (shared/membership/paid_terms.py): the state after a
purchase and after a refund, pure rules on the terms read."""

from __future__ import annotations

from dataclasses import replace

from shared.membership.paid import DAY_MS, Term, TermKind
from shared.membership.paid_terms import (
    Benefit,
    MemberStatus,
    PaidState,
    StoredTerm,
    TermStatus,
    purchased,
    refunded,
)

NOW = 1_767_225_600_000


def bought(order_id: str, rank: int = 1, days: int = 30, tier: str = "银卡", discount_bp: int = 300) -> StoredTerm:
    term = Term(order_id, f"p{rank}", tier, rank, days, NOW, TermKind.NEW, (), discount_bp=discount_bp, guide_id="g1")
    return StoredTerm("c1", term, paid_fen=9_900, refund_full_within_days=7)


def test_a_first_purchase_is_new_and_the_member_runs_to_its_end():
    state = purchased(PaidState("c1"), bought("o1"), NOW)
    (term,) = state.terms
    assert term.term.kind is TermKind.NEW and term.term.segments == ((NOW, NOW + 30 * DAY_MS),)
    assert state.member is not None and state.member.until_ms == NOW + 30 * DAY_MS
    assert state.member.tier == "银卡" and state.member.discount_bp == 300 and state.member.guide_id == "g1"


def test_an_upgrade_shows_the_higher_tier_and_moves_the_lower_rest_after_it():
    one = purchased(PaidState("c1"), bought("o1"), NOW)
    later = NOW + 10 * DAY_MS
    two = purchased(one, bought("o2", rank=2, days=60, tier="金卡", discount_bp=800), later)
    assert two.term("o2").term.kind is TermKind.UPGRADE
    assert two.term("o1").term.segments == ((NOW, later), (later + 60 * DAY_MS, later + 80 * DAY_MS))
    assert two.member.tier == "金卡" and two.member.discount_bp == 800
    assert two.member.until_ms == later + 80 * DAY_MS


def test_a_refund_ends_the_term_and_pulls_the_rest_forward():
    one = purchased(PaidState("c1"), bought("o1"), NOW)
    two = purchased(one, bought("o2"), NOW + DAY_MS)  # a renewal, after o1
    assert two.term("o2").term.kind is TermKind.RENEWAL
    at = NOW + 2 * DAY_MS
    after = refunded(two, "o1", at)
    assert after.term("o1").status is TermStatus.REFUNDED and after.term("o1").term.end_ms == at
    assert after.term("o2").term.segments == ((at, at + 30 * DAY_MS),)
    assert after.member.until_ms == at + 30 * DAY_MS and after.member.status is MemberStatus.ACTIVE
    assert refunded(after, "o1", at + DAY_MS) == after  # once


def test_refunding_the_only_term_expires_the_membership_now():
    one = purchased(PaidState("c1"), bought("o1"), NOW)
    stored = PaidState("c1", tuple(t.__class__(**{**t.__dict__, "version": 1}) for t in one.terms), one.member)
    at = NOW + 3 * DAY_MS
    after = refunded(stored, "o1", at)
    assert after.member.status is MemberStatus.EXPIRED and after.member.until_ms == at
    assert after.member.expired_for_ms == at
    # a purchase after it makes the member active again, from now
    again = purchased(after, bought("o3"), at + DAY_MS)
    assert again.term("o3").term.kind is TermKind.NEW and again.member.status is MemberStatus.ACTIVE


def test_a_lower_plan_queued_after_a_higher_one_gives_its_own_benefits_when_its_term_runs():
    # gold 30 days at 5% running, silver 30 days at 2% bought as a renewal: days 30..60 are silver's
    gold = purchased(PaidState("c1"), bought("g", rank=2, tier="金卡", discount_bp=500), NOW)
    both = purchased(gold, bought("s", rank=1, discount_bp=200), NOW + DAY_MS)
    member = both.member
    assert member.until_ms == NOW + 60 * DAY_MS
    assert member.benefit_at(NOW + 10 * DAY_MS).tier == "金卡"
    assert member.benefit_at(NOW + 10 * DAY_MS).discount_bp == 500
    later = member.benefit_at(NOW + 45 * DAY_MS)
    assert later is not None and (later.tier, later.rank, later.discount_bp) == ("银卡", 1, 200)
    assert member.benefit_at(NOW + 60 * DAY_MS) is None  # ended
    assert [Benefit.of_row(b.row()) for b in member.schedule] == list(member.schedule)  # as stored


def test_after_an_upgrade_ends_the_lower_terms_rest_resumes_with_its_benefits():
    silver = purchased(PaidState("c1"), bought("s", rank=1, discount_bp=200), NOW)
    at = NOW + 10 * DAY_MS
    up = purchased(silver, bought("g", rank=2, days=5, tier="金卡", discount_bp=500), at)
    member = up.member
    assert member.benefit_at(at + DAY_MS).discount_bp == 500
    assert member.benefit_at(at + 6 * DAY_MS).discount_bp == 200  # silver's 20 days left, after gold's 5
    assert member.benefit_at(NOW + 5 * DAY_MS).discount_bp == 200  # silver's first 10 days, before


def test_a_discount_only_plan_ahead_does_not_take_member_prices_from_the_plan_after_it():
    first = bought("d", rank=2, tier="金卡", discount_bp=800)
    first = replace(first, term=replace(first.term, member_price=False))
    one = purchased(PaidState("c1"), first, NOW)
    two = purchased(one, bought("s", rank=1, discount_bp=200), NOW + DAY_MS)
    assert two.member.benefit_at(NOW + DAY_MS).member_price is False
    assert two.member.benefit_at(NOW + 31 * DAY_MS).member_price is True


def test_a_refund_handled_after_the_membership_it_leaves_has_ended_expires_it_unannounced():
    gold = purchased(PaidState("c1"), bought("g", rank=2, tier="金卡", discount_bp=500), NOW)
    both = purchased(gold, bought("s", rank=1, discount_bp=200), NOW + DAY_MS)
    # the refund of gold on day 1, handled on day 40: silver, moved forward, ended on day 31
    late = refunded(both, "g", NOW + DAY_MS, handled_at_ms=NOW + 40 * DAY_MS)
    member = late.member
    assert (member.status, member.until_ms) == (MemberStatus.EXPIRED, NOW + 31 * DAY_MS)
    assert member.expired_for_ms is None and member.tier == "银卡"  # to be announced, the tier that ran last
    assert member.benefit_at(NOW + 10 * DAY_MS) is None
    # handled in time it stays ACTIVE to its end
    on_time = refunded(both, "g", NOW + DAY_MS, handled_at_ms=NOW + DAY_MS)
    assert on_time.member.status is MemberStatus.ACTIVE and on_time.member.until_ms == NOW + 31 * DAY_MS
