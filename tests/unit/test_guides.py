"""The organisation and binding rules (shared/guides), on in-memory ports (tests/fakes/guides.py)."""

from __future__ import annotations

import pytest

from shared.guides.binding import MemberBinding
from shared.guides.model import (
    DAY_MS,
    AlreadyBound,
    BindingPolicy,
    ChangeKind,
    Dealer,
    DistributorCycle,
    Guide,
    SelfBinding,
    Store,
    UnknownParty,
)
from shared.guides.organisation import OrgAdmin
from shared.kernel.clock import FakeClock
from shared.kernel.credited import Credited
from shared.kernel.errors import NotFound
from tests.fakes.guides import MemoryBindings, MemoryOrgDirectory


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def org(clock: FakeClock) -> OrgAdmin:
    admin = OrgAdmin(MemoryOrgDirectory(), clock)
    admin.put_dealer(Dealer("D001", "华东经销商"))
    admin.put_store(Store("S001", "上海静安店", dealer_id="D001"))
    admin.put_store(Store("S009", "直营店"))  # self-operated
    admin.put_guide(Guide("G001", "王芳", "S001", member_id="c-wang"))
    admin.put_guide(Guide("G002", "李明", "S001"))
    admin.put_guide(Guide("G009", "赵敏", "S009"))
    return admin


def binder(org: OrgAdmin, clock: FakeClock, days: int = 0) -> MemberBinding:
    return MemberBinding(org.directory, MemoryBindings(), BindingPolicy(expire_after_days=days), clock)


# -- organisation ---------------------------------------------------------------------------------
def test_a_store_of_a_dealer_that_does_not_exist_is_refused(org: OrgAdmin):
    with pytest.raises(UnknownParty):
        org.put_store(Store("S777", "x", dealer_id="D404"))


def test_a_guide_of_a_store_that_does_not_exist_is_refused(org: OrgAdmin):
    with pytest.raises(UnknownParty):
        org.put_guide(Guide("G777", "x", "S404"))


def test_the_guides_of_one_store_are_listed_apart(org: OrgAdmin):
    guides, _ = org.list_guides("S001", 10, None)
    assert [g.guide_id for g in guides] == ["G001", "G002"]


def test_distributors_form_an_upline_but_never_a_cycle(org: OrgAdmin):
    org.put_distributor("m-a", "A", None, None)
    org.put_distributor("m-b", "B", "m-a", None)
    org.put_distributor("m-c", "C", "m-b", None)
    # a -> c would close a -> c -> b -> a
    with pytest.raises(DistributorCycle):
        org.put_distributor("m-a", "A", "m-c", None)
    with pytest.raises(SelfBinding):
        org.put_distributor("m-a", "A", "m-a", None)
    with pytest.raises(UnknownParty):
        org.put_distributor("m-d", "D", "m-nobody", None)
    assert org.directory.get_distributor("m-a").parent_id is None  # type: ignore[union-attr]


# -- binding --------------------------------------------------------------------------------------
def test_a_member_binds_to_the_guide_and_so_to_its_store_and_dealer(org: OrgAdmin, clock: FakeClock):
    binding = binder(org, clock).bind("G001", "c-1")
    assert (binding.guide_id, binding.store_id, binding.dealer_id, binding.expires_at_ms) == (
        "G001",
        "S001",
        "D001",
        None,
    )


def test_the_first_binding_wins_and_binding_to_the_same_guide_again_changes_nothing(org: OrgAdmin, clock: FakeClock):
    members = binder(org, clock)
    first = members.bind("G001", "c-1")
    assert members.bind("G001", "c-1") == first
    with pytest.raises(AlreadyBound):
        members.bind("G002", "c-1")
    _, history = members.binding_of("c-1")
    assert [c.kind for c in history] == [ChangeKind.BIND]


def test_under_an_expiring_policy_a_lapsed_binding_may_be_replaced(org: OrgAdmin, clock: FakeClock):
    members = binder(org, clock, days=30)
    members.bind("G001", "c-1")
    clock.advance(29 * 86400)
    with pytest.raises(AlreadyBound):
        members.bind("G002", "c-1")
    clock.advance(86400)
    again = members.bind("G002", "c-1")
    assert again.guide_id == "G002" and again.expires_at_ms == clock.now_ms() + 30 * DAY_MS
    _, history = members.binding_of("c-1")
    assert [(c.kind, c.from_guide_id, c.to_guide_id) for c in history] == [
        (ChangeKind.BIND, "G001", "G002"),
        (ChangeKind.BIND, None, "G001"),
    ]


def test_a_guide_cannot_bind_to_themselves(org: OrgAdmin, clock: FakeClock):
    with pytest.raises(SelfBinding):
        binder(org, clock).bind("G001", "c-wang")  # G001's own member account
    with pytest.raises(SelfBinding):
        binder(org, clock).bind("G001", "G001")


def test_an_unknown_guide_is_not_found(org: OrgAdmin, clock: FakeClock):
    with pytest.raises(NotFound):
        binder(org, clock).bind("G404", "c-1")


def test_an_admin_reassigns_whatever_the_policy_and_the_trail_says_who_and_why(org: OrgAdmin, clock: FakeClock):
    members = binder(org, clock)
    members.bind("G001", "c-1")
    clock.advance(60)
    moved = members.reassign("c-1", "G009", "admin-1", "guide left the store")
    assert (moved.guide_id, moved.store_id, moved.dealer_id) == ("G009", "S009", None)
    _, history = members.binding_of("c-1")
    latest = history[0]
    assert (latest.kind, latest.from_guide_id, latest.to_guide_id, latest.by, latest.reason) == (
        ChangeKind.REASSIGN,
        "G001",
        "G009",
        "admin-1",
        "guide left the store",
    )


# -- share links and credit -----------------------------------------------------------------------
def test_the_binding_credits_the_guide_store_and_dealer(org: OrgAdmin, clock: FakeClock):
    members = binder(org, clock)
    members.bind("G001", "c-1")
    assert members.credited_for("c-1") == Credited(dealer_id="D001", store_id="S001", guide_id="G001")


def test_the_last_share_within_24_hours_credits_the_distributor_and_its_upline(org: OrgAdmin, clock: FakeClock):
    org.put_distributor("m-up", "Up", None, None)
    org.put_distributor("m-1", "One", "m-up", None)
    members = binder(org, clock)
    members.bind("G001", "c-1")
    members.record_share("c-1", "G002")
    members.record_share("c-1", "m-1")  # the last share wins
    assert members.credited_for("c-1") == Credited(
        dealer_id="D001", store_id="S001", guide_id="G001", distributor_1_id="m-1", distributor_2_id="m-up"
    )
    clock.advance(24 * 3600)
    assert members.credited_for("c-1") == Credited(dealer_id="D001", store_id="S001", guide_id="G001")


def test_a_guide_who_shares_is_the_orders_guide_and_the_binding_keeps_the_store(org: OrgAdmin, clock: FakeClock):
    members = binder(org, clock)
    members.bind("G001", "c-1")
    members.record_share("c-1", "G009")
    assert members.credited_for("c-1") == Credited(dealer_id="D001", store_id="S001", guide_id="G009")
    # an unbound member's order goes to the sharing guide's store
    members.record_share("c-2", "G009")
    assert members.credited_for("c-2") == Credited(store_id="S009", guide_id="G009")


def test_nobody_is_credited_for_their_own_order(org: OrgAdmin, clock: FakeClock):
    org.put_distributor("m-1", "One", None, None)
    org.put_distributor("m-2", "Two", "m-1", None)
    members = binder(org, clock)
    with pytest.raises(SelfBinding):
        members.record_share("m-1", "m-1")
    members.record_share("m-1", "m-2")  # m-2's upline is the buyer: not credited as level 2
    assert members.credited_for("m-1") == Credited(distributor_1_id="m-2")
    members.record_share("c-wang", "G001")  # G001's own account buys through G001's link
    assert members.credited_for("c-wang") == Credited()


def test_a_share_of_an_unknown_id_is_refused(org: OrgAdmin, clock: FakeClock):
    with pytest.raises(UnknownParty):
        binder(org, clock).record_share("c-1", "nobody")
