"""Commission splits and clawbacks (shared/commission/model.py): the rules by example, and the
books-close properties over random orders, rules and partial-refund sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.commission.model import (
    CommissionLine,
    CommissionRules,
    Credited,
    Override,
    PayeeRole,
    Share,
    clawback_fen,
    split_line,
)
from shared.kernel.errors import ValidationFailed
from shared.kernel.money import unit_share

EVERYONE = Credited(dealer_id="D001", store_id="S001", guide_id="G001", distributor_1_id="M9", distributor_2_id="M8")
RULES = CommissionRules(
    version=1,
    shares={
        PayeeRole.DEALER: Share(rate_bp=500),
        PayeeRole.STORE: Share(rate_bp=800),
        PayeeRole.GUIDE: Share(rate_bp=300),
    },
)


def test_each_credited_payee_gets_its_rate_of_the_line_base_rounded_down() -> None:
    split = split_line(CommissionLine(sku="TEA-001", qty=3, base_fen=9_999), RULES, EVERYONE)

    assert {(e.role, e.payee_id, e.amount_fen) for e in split.earnings} == {
        (PayeeRole.DEALER, "D001", 499),
        (PayeeRole.STORE, "S001", 799),
        (PayeeRole.GUIDE, "G001", 299),
    }


def test_a_role_nobody_holds_earns_nothing_and_its_share_stays_with_the_merchant() -> None:
    split = split_line(CommissionLine(sku="TEA-001", qty=1, base_fen=10_000), RULES, Credited(store_id="S001"))

    assert [(e.role, e.amount_fen) for e in split.earnings] == [(PayeeRole.STORE, 800)]


def test_overrides_apply_guide_before_sku_before_category_per_role() -> None:
    rules = CommissionRules(
        version=2,
        shares=RULES.shares,
        overrides=(
            Override(category="tea", shares={PayeeRole.STORE: Share(rate_bp=100)}),
            Override(sku="TEA-001", shares={PayeeRole.STORE: Share(rate_bp=200), PayeeRole.GUIDE: Share(rate_bp=50)}),
            Override(guide_id="G001", shares={PayeeRole.GUIDE: Share(fixed_fen=7)}),
        ),
    )
    line = CommissionLine(sku="TEA-001", qty=2, base_fen=10_000, category="tea")

    amounts = {e.role: e.amount_fen for e in split_line(line, rules, EVERYONE).earnings}

    assert amounts == {PayeeRole.DEALER: 500, PayeeRole.STORE: 200, PayeeRole.GUIDE: 14}


def test_rates_that_could_sum_past_the_cap_are_refused_when_saved() -> None:
    with pytest.raises(ValidationFailed) as refused:
        CommissionRules(
            version=1,
            shares=RULES.shares,
            overrides=(Override(sku="TEA-001", shares={PayeeRole.DEALER: Share(rate_bp=2_000)}),),
        )
    assert refused.value.details["rates_bp"] == 3_100


def test_fixed_amounts_past_the_cap_are_scaled_down_to_exactly_the_cap() -> None:
    rules = CommissionRules(
        version=1, shares={PayeeRole.STORE: Share(fixed_fen=500), PayeeRole.GUIDE: Share(fixed_fen=300)}
    )

    split = split_line(CommissionLine(sku="X", qty=1, base_fen=1_001), rules, EVERYONE)

    assert split.commission_fen == 1_001 * 3_000 // 10_000


def test_refunding_a_line_in_parts_takes_back_exactly_what_was_earned() -> None:
    # A 3-unit line paid 3,000 fen, 100 fen earned on it; refunded 1,000 fen at a time.
    parts = [
        clawback_fen(100, 3_000, 0, 1_000),
        clawback_fen(100, 3_000, 1_000, 1_000),
        clawback_fen(100, 3_000, 2_000, 1_000),
    ]

    assert parts == [33, 33, 34]


def test_a_clawback_of_more_than_the_line_paid_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        clawback_fen(100, 3_000, 2_000, 1_001)


role_shares = st.dictionaries(
    st.sampled_from(list(PayeeRole)),
    st.one_of(st.builds(Share, rate_bp=st.integers(0, 600)), st.builds(Share, fixed_fen=st.integers(0, 5_000))),
    max_size=5,
)
lines = st.builds(
    CommissionLine,
    sku=st.sampled_from(["A", "B", "C"]),
    qty=st.integers(1, 12),
    base_fen=st.integers(0, 10**9),
    category=st.sampled_from([None, "tea", "cups"]),
)
credits = st.builds(
    Credited,
    dealer_id=st.sampled_from([None, "D1"]),
    store_id=st.sampled_from([None, "S1"]),
    guide_id=st.sampled_from([None, "G1", "G2"]),
    distributor_1_id=st.sampled_from([None, "M1"]),
    distributor_2_id=st.sampled_from([None, "M2"]),
)


@st.composite
def rules_and_refunds(draw: st.DrawFn) -> tuple[CommissionRules, list[CommissionLine], Credited, list[list[int]]]:
    overrides = tuple(
        draw(
            st.lists(
                st.one_of(
                    st.builds(Override, shares=role_shares, sku=st.sampled_from(["A", "B"])),
                    st.builds(Override, shares=role_shares, category=st.sampled_from(["tea", "cups"])),
                    st.builds(Override, shares=role_shares, guide_id=st.sampled_from(["G1", "G2"])),
                ),
                max_size=3,
            )
        )
    )
    try:
        rules = CommissionRules(
            version=1, shares=draw(role_shares), overrides=overrides, cap_bp=draw(st.integers(0, 3_000))
        )
    except ValidationFailed:
        rules = CommissionRules(version=1, shares={}, cap_bp=3_000)
    order = draw(st.lists(lines, min_size=1, max_size=4))
    refunds = [draw(st.lists(st.integers(1, 4), max_size=4)) for _ in order]
    return rules, order, draw(credits), refunds


@settings(max_examples=200, deadline=None)
@given(rules_and_refunds())
def test_the_books_close_for_every_order_after_any_partial_refunds(
    case: tuple[CommissionRules, list[CommissionLine], Credited, list[list[int]]],
) -> None:
    rules, order, credited, refund_sequences = case
    for line, sequence in zip(order, refund_sequences, strict=True):
        split = split_line(line, rules, credited)
        # Never past the cap, never negative.
        assert 0 <= split.commission_fen <= line.base_fen * rules.cap_bp // 10_000
        assert all(e.amount_fen > 0 for e in split.earnings)
        done = refunded = 0
        taken_back = dict.fromkeys(split.earnings, 0)
        for units in sequence:
            units = min(units, line.qty - done)
            if units == 0:
                break
            # The refund of those units is what they paid (the order's own unit split).
            refund = unit_share(line.base_fen, line.qty, done + units) - unit_share(line.base_fen, line.qty, done)
            for earning in split.earnings:
                taken_back[earning] += clawback_fen(earning.amount_fen, line.base_fen, refunded, refund)
            refunded += refund
            done += units
        for earning, back in taken_back.items():
            assert 0 <= back <= earning.amount_fen  # a clawback never exceeds what was earned on the line
            if done == line.qty:
                assert back == earning.amount_fen
        kept_commission = split.commission_fen - sum(taken_back.values())
        kept_paid = line.base_fen - refunded
        # What stays paid covers what stays shared out, within the cap (a fen of rounding per payee);
        # each payee keeps its pro-rata part of what it earned for what stays paid, within one fen.
        assert 0 <= kept_commission <= kept_paid
        assert kept_commission <= kept_paid * rules.cap_bp // 10_000 + len(split.earnings)
        for earning, back in taken_back.items():
            assert (
                0
                <= (earning.amount_fen - back) * line.base_fen - earning.amount_fen * kept_paid
                < max(line.base_fen, 1)
            )
