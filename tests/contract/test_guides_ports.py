"""The guides ports (shared.guides.ports): one class of tests against the in-memory fakes and
against the DynamoDB stores on a moto table from infra/template.yaml."""

from __future__ import annotations

import pytest

from shared.guides.model import Binding, BindingChange, ChangeKind, Dealer, Distributor, Guide, ShareVisit, Store
from shared.guides.ports import BindingStore, OrgDirectory
from shared.kernel.errors import ConcurrentUpdate, Conflict
from tests.fakes.guides import MemoryBindings, MemoryOrgDirectory

NOW = 1_795_392_000_000


@pytest.fixture(params=["memory", "dynamodb"])
def ports(request: pytest.FixtureRequest) -> tuple[OrgDirectory, BindingStore]:
    if request.param == "memory":
        return MemoryOrgDirectory(), MemoryBindings()
    request.getfixturevalue("table")
    from shared.data.stores.guides import DynamoBindings, DynamoOrgDirectory
    from shared.data.stores.locations import DynamoLocations
    from shared.inventory.locations import Location

    DynamoLocations().put(Location(location_id="WH", kind="warehouse", name="仓"), NOW)
    return DynamoOrgDirectory(), DynamoBindings()


def binding(version: int, guide: str = "G1") -> Binding:
    return Binding("c-1", guide, "S1", "D1", NOW, None, version)


def change(guide: str = "G1") -> BindingChange:
    return BindingChange("c-1", ChangeKind.BIND, guide, None, "c-1", NOW)


class TestGuidesPorts:
    def test_parties_read_back_as_written_and_list_in_id_order(self, ports):
        directory, _ = ports
        directory.put_dealer(Dealer("D2", "乙", "acct-2"), NOW)
        directory.put_dealer(Dealer("D1", "甲"), NOW)
        directory.put_store(Store("S1", "店", dealer_id="D1", city="上海", payout_account="wx-s1"), NOW)
        directory.put_store(Store("S2", "直营"), NOW)
        directory.put_guide(Guide("G1", "王", "S1", member_id="c-w"), NOW)
        directory.put_guide(Guide("G2", "李", "S2"), NOW)
        assert directory.get_dealer("D2") == Dealer("D2", "乙", "acct-2")
        assert directory.get_store("S1") == Store("S1", "店", "D1", "上海", "wx-s1")
        assert directory.get_store("S2").self_operated  # type: ignore[union-attr]
        assert directory.get_guide("G1") == Guide("G1", "王", "S1", member_id="c-w")
        assert [d.dealer_id for d in directory.list_dealers(10, None)[0]] == ["D1", "D2"]
        assert [s.store_id for s in directory.list_stores(10, None)[0]] == ["S1", "S2"]
        assert [g.guide_id for g in directory.list_guides("S2", 10, None)[0]] == ["G2"]
        assert directory.get_dealer("G1") is None and directory.get_guide("D1") is None

    def test_a_page_continues_where_the_last_ended(self, ports):
        directory, _ = ports
        for n in range(5):
            directory.put_dealer(Dealer(f"D{n}", "x"), NOW)
        first, cursor = directory.list_dealers(3, None)
        rest, _ = directory.list_dealers(3, cursor)
        assert [d.dealer_id for d in first + rest] == [f"D{n}" for n in range(5)]

    def test_the_warehouse_is_not_made_a_store(self, ports):
        directory, _ = ports
        with pytest.raises(Conflict):
            directory.put_store(Store("WH", "not a store"), NOW)

    def test_a_distributor_is_written_only_over_what_was_read(self, ports):
        directory, _ = ports
        up = Distributor("m-up", "Up")
        directory.put_distributor(up, None, [], NOW)
        one = Distributor("m-1", "One", parent_id="m-up")
        directory.put_distributor(one, None, [up], NOW)
        with pytest.raises(ConcurrentUpdate):
            directory.put_distributor(Distributor("m-1", "One again"), None, [], NOW)  # it exists now
        # the upline changed since it was read: refused
        directory.put_distributor(Distributor("m-up", "Up", version=2), up, [], NOW)
        with pytest.raises(ConcurrentUpdate):
            directory.put_distributor(Distributor("m-2", "Two", parent_id="m-up"), None, [up], NOW)
        assert directory.get_distributor("m-1") == one

    def test_a_binding_is_written_only_over_the_version_read_with_its_audit_line(self, ports):
        _, bindings = ports
        bindings.save(None, binding(1), change())
        with pytest.raises(ConcurrentUpdate):
            bindings.save(None, binding(1, "G2"), change("G2"))
        bindings.save(binding(1), binding(2, "G2"), change("G2"))
        with pytest.raises(ConcurrentUpdate):
            bindings.save(binding(1), binding(2, "G3"), change("G3"))
        assert bindings.get("c-1") == binding(2, "G2")
        assert [c.to_guide_id for c in bindings.history("c-1", 10)] == ["G2", "G1"]

    def test_the_last_share_visit_replaces_the_one_before(self, ports):
        _, bindings = ports
        bindings.record_share(ShareVisit("c-1", "m-1", NOW))
        bindings.record_share(ShareVisit("c-1", "G1", NOW + 5))
        assert bindings.last_share("c-1") == ShareVisit("c-1", "G1", NOW + 5)
        assert bindings.last_share("c-2") is None

    def test_the_binding_and_the_last_share_are_read_together(self, ports):
        _, bindings = ports
        assert bindings.binding_and_share("c-1") == (None, None)
        bindings.save(None, binding(1), change())
        assert bindings.binding_and_share("c-1") == (binding(1), None)
        bindings.record_share(ShareVisit("c-1", "m-1", NOW))
        assert bindings.binding_and_share("c-1") == (binding(1), ShareVisit("c-1", "m-1", NOW))
