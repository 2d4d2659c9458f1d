"""A paid membership's welcome pack, referral rebate and refund policy (shared/membership/welcome.py,
paid_refunds.py, and the rebate line of shared/commission/ledger_model.py) on in-memory ports."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.commission.ledger_model import PaidLine, book_paid_order, claw_back
from shared.coupons.model import Action, Status
from shared.kernel.clock import FakeClock
from shared.kernel.credited import Credited, PayeeRole
from shared.membership.paid_refunds import (
    DAY_MS,
    RefundKind,
    benefit_used,
    refund_due,
    refund_for_segments,
    refunded_membership_lines,
    revoke_unused,
    undo_welcome_pack,
)
from shared.membership.welcome import issue_welcome_pack, welcome_coupon_ids, welcome_on_paid
from tests.fakes.coupons import coupons_on_fakes, fixed_coupon_template

START = 1_800_000_000_000


@given(
    paid=st.integers(0, 10_000_000),
    days=st.integers(1, 3660),
    early=st.integers(0, 4000 * DAY_MS),
    later=st.integers(0, 4000 * DAY_MS),
    window=st.integers(0, 30),
    used=st.booleans(),
)
def test_a_refund_never_exceeds_what_was_paid_and_shrinks_as_days_are_used(paid, days, early, later, window, used):
    ends = START + days * DAY_MS
    first = refund_due(paid, START, ends, START + early, window, used)
    second = refund_due(paid, START, ends, START + early + later, window, used)
    assert 0 <= second.amount_fen <= first.amount_fen <= paid
    assert 0 <= first.used_days <= second.used_days <= days


@given(paid=st.integers(0, 10_000_000), days=st.integers(1, 3660), at=st.integers(0, 4000 * DAY_MS))
def test_pro_rata_is_the_floor_of_the_unused_whole_days(paid, days, at):
    quote = refund_due(paid, START, START + days * DAY_MS, START + at, 0, True)
    assert quote.kind is RefundKind.PRO_RATA
    assert quote.amount_fen == paid * quote.unused_days // days
    assert quote.amount_fen * days <= paid * quote.unused_days < (quote.amount_fen + 1) * days


def test_full_refund_within_the_window_only_when_no_benefit_was_used():
    ends = START + 30 * DAY_MS
    assert refund_due(9_900, START, ends, START + 6 * DAY_MS, 7, False).kind is RefundKind.FULL
    assert refund_due(9_900, START, ends, START + 6 * DAY_MS, 7, False).amount_fen == 9_900
    # A benefit used: pro rata of the unused days, a day begun counting as used (24 of 30 left)
    used = refund_due(9_900, START, ends, START + 6 * DAY_MS - 1, 7, True)
    assert (used.kind, used.used_days, used.amount_fen) == (RefundKind.PRO_RATA, 6, 9_900 * 24 // 30)
    # Past the window, nothing used: pro rata too; a day into the term, floor(9,900 x 29 / 30) = 9,570
    assert refund_due(9_900, START, ends, START + 8 * DAY_MS, 7, False).amount_fen == 9_900 * 22 // 30
    assert refund_due(9_900, START, ends, START + 1, 0, True).amount_fen == 9_570
    # A term queued after the current one has used nothing yet
    queued = refund_due(9_900, START + 30 * DAY_MS, START + 60 * DAY_MS, START + 10 * DAY_MS, 0, True)
    assert queued.amount_fen == 9_900 and queued.used_days == 0
    assert refund_due(9_900, START, ends, ends + DAY_MS, 7, True).amount_fen == 0


def test_a_split_term_counts_only_its_segments_before_now():
    # 10 days run, then an upgrade of 30 days, then the remaining 20 days: 12 days in, 10 are used
    segments = ((START, START + 10 * DAY_MS), (START + 40 * DAY_MS, START + 60 * DAY_MS))
    quote = refund_for_segments(3_000, segments, START + 12 * DAY_MS, 0, True)
    assert (quote.term_days, quote.used_days, quote.amount_fen) == (30, 10, 2_000)
    assert refund_for_segments(3_000, segments, START + 45 * DAY_MS, 0, True).used_days == 15


def test_benefit_used_means_a_welcome_coupon_taken_or_a_member_priced_order():
    assert not benefit_used([Status.AVAILABLE, Status.EXPIRED], 0)
    assert benefit_used([Status.AVAILABLE, Status.USED], 0)
    assert benefit_used([Status.LOCKED], 0)
    assert benefit_used([], 1)


def test_the_welcome_pack_is_issued_once_per_order_and_a_refund_revokes_only_the_unused():
    clock = FakeClock()
    ports, tables = coupons_on_fakes(clock)
    first = fixed_coupon_template(ports, 30 * DAY_MS, total=5, per_user_limit=3)
    second = fixed_coupon_template(ports, 30 * DAY_MS, total=5, per_user_limit=3)
    pack = issue_welcome_pack("o-1", "c-1", [first, second], ports)
    again = issue_welcome_pack("o-1", "c-1", [first, second], ports)  # the activation redelivered
    assert again == pack and len(pack.coupon_ids) == 2 and pack.refused == ()
    assert sorted(c.template_id for c in tables.coupons.values()) == sorted([first, second])
    wallet, _ = ports.coupons.of_customer("c-1", None, clock.now_ms(), 10, None)
    assert {c.coupon_id for c in wallet} == set(pack.coupon_ids)
    # Another membership order of the same member is another pack
    assert len(issue_welcome_pack("o-2", "c-1", [first], ports).coupon_ids) == 1
    # The member uses the first coupon on an order
    used = ports.coupons.get(pack.coupon_ids[0])
    assert used is not None
    locked = used.moved(Action.LOCK, clock.now_ms(), order_id="o-9")
    for before, after in ((used, locked), (locked, locked.moved(Action.USE, clock.now_ms()))):
        uow = ports.unit_of_work()
        uow.move(before, after)
        uow.commit()
    # When the membership is refunded
    revoked = revoke_unused(pack.coupon_ids, ports)
    assert revoked.revoked == (pack.coupon_ids[1],)
    assert revoked.kept == ((pack.coupon_ids[0], "USED"),)
    statuses = {cid: ports.coupons.get(cid).status for cid in pack.coupon_ids}  # type: ignore[union-attr]
    assert statuses == {pack.coupon_ids[0]: Status.USED, pack.coupon_ids[1]: Status.EXPIRED}
    # Asked again: nothing more to revoke; the ids are found from the order and the plan alone
    assert revoke_unused(pack.coupon_ids, ports).revoked == ()
    assert welcome_coupon_ids("o-1", [first, second], ports) == list(pack.coupon_ids)


def test_a_welcome_template_that_refuses_is_reported_and_the_others_are_issued():
    clock = FakeClock()
    ports, _ = coupons_on_fakes(clock)
    one = fixed_coupon_template(ports, 30 * DAY_MS, total=1, per_user_limit=1)
    other = fixed_coupon_template(ports, 30 * DAY_MS)
    issue_welcome_pack("o-0", "c-0", [one], ports)
    pack = issue_welcome_pack("o-1", "c-1", [one, other], ports)
    assert len(pack.coupon_ids) == 1 and pack.refused[0][0] == one


def test_the_rebate_is_the_bound_guides_entry_and_a_refund_claws_it_back_exactly():
    credited = Credited(store_id="S001", guide_id="g-1")
    line = PaidLine("MEMBERSHIP-gold", 1, 9_900, rebate_fen=1_500)
    book, entries = book_paid_order("o-1", [line], credited, None, START)
    assert [(e.role, e.payee_id, e.amount_fen) for e in entries] == [(PayeeRole.GUIDE, "g-1", 1_500)]
    current = {e.entry_id: e for e in entries}
    # A pro rata refund of 24 days of 30 takes back its share; the rest of the term refunded takes the rest
    part, back = claw_back(book, "r-1", [("MEMBERSHIP-gold", 9_900 * 24 // 30)], current, START + DAY_MS)
    _, rest = claw_back(part, "r-2", [("MEMBERSHIP-gold", 9_900 - 9_900 * 24 // 30)], current, START + DAY_MS)
    assert back[0].amount_fen == -(1_500 * 24 // 30)
    assert sum(e.amount_fen for e in [*entries, *back, *rest]) == 0
    # The books: paid - refunded = merchant net + commissions
    paid, refunded = 9_900, 9_900 * 24 // 30
    commissions = sum(e.amount_fen for e in [*entries, *back])
    merchant_net = paid - refunded - commissions
    assert merchant_net + commissions == paid - refunded and merchant_net >= 0
    # No guide bound: no rebate
    assert book_paid_order("o-2", [line], Credited(store_id="S001"), None, START)[1] == []


def test_a_refund_issued_of_a_membership_line_undoes_the_pack_and_an_ordinary_refund_does_not():
    clock = FakeClock()
    ports, _ = coupons_on_fakes(clock)
    template = fixed_coupon_template(ports, 30 * DAY_MS, total=5, per_user_limit=3)
    pack = issue_welcome_pack("o-1", "c-1", [template], ports)
    ordinary = {"order_id": "o-1", "refund_lines": [{"sku": "TEA-1", "amount_fen": 100}]}
    assert undo_welcome_pack(ordinary, [template], ports).revoked == ()
    refunded = {"order_id": "o-1", "refund_lines": [{"sku": "MEMBERSHIP-gold", "amount_fen": 9_900}]}
    assert undo_welcome_pack(refunded, [template], ports).revoked == pack.coupon_ids
    assert undo_welcome_pack(refunded, [template], ports).revoked == ()  # redelivered
    assert ports.coupons.get(pack.coupon_ids[0]).status is Status.EXPIRED  # type: ignore[union-attr]


def test_the_order_events_carry_the_pack_an_ordinary_order_has_none():
    clock = FakeClock()
    ports, tables = coupons_on_fakes(clock)
    template = fixed_coupon_template(ports, 30 * DAY_MS, total=5, per_user_limit=3)
    terms = {"plan_id": "gold", "welcome_coupon_template_ids": [template]}
    line = {"sku": "MEMBERSHIP-gold", "qty": 1, "payable_fen": 9_900, "amount_fen": 9_900}
    paid = {"order_id": "o-5", "customer_id": "c-5", "membership": terms, "lines": [line]}
    assert welcome_on_paid({"order_id": "o-6", "customer_id": "c-5", "lines": []}, ports).coupon_ids == ()
    pack = welcome_on_paid(paid, ports)
    assert welcome_on_paid(paid, ports) == pack and len(tables.coupons) == 1
    refunded = {**paid, "refund_lines": [line]}
    assert undo_welcome_pack(refunded, None, ports).revoked == pack.coupon_ids


def test_a_membership_line_refunded_for_0_fen_is_refunded_all_the_same():
    # a pro-rata refund that rounds to 0 fen still refunds the line's unit: the term ends
    zero = {"refund_lines": [{"sku": "MEMBERSHIP-gold", "qty": 1, "amount_fen": 0}]}
    assert refunded_membership_lines(zero) == ["MEMBERSHIP-gold"]
    untouched = {"refund_lines": [{"sku": "MEMBERSHIP-gold", "qty": 0, "amount_fen": 0}, {"sku": "TEA", "qty": 1}]}
    assert refunded_membership_lines(untouched) == []
    assert refunded_membership_lines({"refund_lines": [{"sku": "TEA", "qty": 1, "amount_fen": 0}]}) == []
