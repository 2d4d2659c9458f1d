"""Paid membership's day arithmetic (shared/membership/paid.py) and its plans on a fake store."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kernel.errors import ConcurrentUpdate, NotFound
from shared.membership.paid import (
    DAY_MS,
    MembershipPlans,
    Plan,
    Term,
    TermKind,
    after_purchase,
    membership_end,
    running,
    shortened,
)

NOW = 1_800_000_000_000


def bought(order_id: str, rank: int, days: int, at: int) -> Term:
    return Term(order_id, f"p{rank}", f"tier{rank}", rank, days, at, TermKind.NEW, ())


def segments(terms) -> list[tuple[int, int]]:
    return sorted(seg for term in terms for seg in term.segments if seg[1] > seg[0])


def test_renewal_extends_from_the_later_of_now_and_the_end():
    terms, first = after_purchase((), bought("o1", 1, 30, NOW), NOW)
    assert first.kind is TermKind.NEW and first.segments == ((NOW, NOW + 30 * DAY_MS),)
    terms, second = after_purchase(terms, bought("o2", 1, 30, NOW + DAY_MS), NOW + DAY_MS)
    assert second.kind is TermKind.RENEWAL and second.segments == ((NOW + 30 * DAY_MS, NOW + 60 * DAY_MS),)
    late = NOW + 100 * DAY_MS  # lapsed: a new term from now
    terms, third = after_purchase(terms, bought("o3", 1, 10, late), late)
    assert third.kind is TermKind.NEW and third.start_ms == late


def test_an_upgrade_moves_the_lower_tiers_remaining_days_after_it():
    terms, _ = after_purchase((), bought("o1", 1, 30, NOW), NOW)
    at = NOW + 10 * DAY_MS
    terms, gold = after_purchase(terms, bought("o2", 2, 20, at), at)
    assert gold.kind is TermKind.UPGRADE and gold.segments == ((at, at + 20 * DAY_MS),)
    silver = terms[0]
    assert silver.segments == ((NOW, at), (at + 20 * DAY_MS, at + 40 * DAY_MS))
    assert running(terms, at + DAY_MS) is not None and running(terms, at + DAY_MS).rank == 2
    assert running(terms, at + 25 * DAY_MS).rank == 1
    assert membership_end(terms) == NOW + 50 * DAY_MS


def test_a_refund_shortens_its_term_and_closes_the_gap():
    terms, _ = after_purchase((), bought("o1", 1, 30, NOW), NOW)
    terms, _ = after_purchase(terms, bought("o2", 1, 30, NOW), NOW)
    at = NOW + 5 * DAY_MS
    terms = shortened(terms, "o1", at)
    assert terms[0].segments == ((NOW, at),) and terms[0].revoked_at_ms == at
    assert terms[1].segments == ((at, at + 30 * DAY_MS),)
    assert shortened(terms, "o1", at + DAY_MS) == terms  # once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 60), st.integers(0, 90)), min_size=1, max_size=12))
def test_days_bought_are_days_of_membership_without_overlap(purchases):
    terms: tuple[Term, ...] = ()
    at = NOW
    for n, (rank, days, gap_days) in enumerate(purchases):
        at += gap_days * DAY_MS // 3
        terms, placed = after_purchase(terms, bought(f"o{n}", rank, days, at), at)
        assert placed.start_ms >= at
        segs = segments(terms)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(segs)), segs
        assert sum(end - start for start, end in segs) == sum(d for _, d, _ in purchases[: n + 1]) * DAY_MS
        assert all(term.length_ms == term.days * DAY_MS for term in terms)
        # nothing bought is ever moved into the past
        assert running(terms, at) is not None


class FakePlans:
    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}

    def get(self, plan_id):
        return self.plans.get(plan_id)

    def list(self):
        return list(self.plans.values())

    def save(self, plan):
        stored = self.plans.get(plan.plan_id)
        if (stored.version if stored else 0) != plan.version - 1:
            raise ConcurrentUpdate("changed")
        self.plans[plan.plan_id] = plan


def test_plans_are_saved_as_the_next_version_conditional_on_the_one_read():
    admin = MembershipPlans(FakePlans())
    gold = Plan("gold", "金卡", 2, 19_900, 365, discount_bp=500)
    created, view = admin.save(gold, expected_version=0)
    assert created and view["version"] == 1
    created, view = admin.save(gold, expected_version=1)
    assert not created and view["version"] == 2
    with pytest.raises(ConcurrentUpdate):
        admin.save(gold, expected_version=1)
    assert admin.show("gold")["version"] == 2 and [p["plan_id"] for p in admin.all()] == ["gold"]
    with pytest.raises(NotFound):
        admin.show("silver")
