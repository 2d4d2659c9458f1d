"""Member levels that may claim, on in-memory ports (tests/fakes/coupons.py over the membership
fakes of tests/fakes/membership.py): a template that names levels is claimed, and issued by guides,
only for a member whose current level is one of them (no member record: level 0), checked inside
the one commit; a template without levels never reads the level table. docs/coupons.md, "Member
levels"."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.coupons import claims, templates
from shared.coupons.model import MemberLevelRequired, Status, UnknownMemberLevel
from shared.coupons.ports import GuideOfMember
from shared.kernel.clock import FakeClock
from shared.kernel.errors import LimitReached, ValidationFailed
from shared.kernel.idempotency import IdempotentRequest
from shared.membership.model import Level, Member, MembershipRules
from tests.fakes.coupons import coupons_on_fakes, fixed_coupon_template

HOUR_MS = 3600 * 1000
LEVELS = MembershipRules(
    (Level(0, "普通会员", 0), Level(1, "银卡", 100_000), Level(2, "金卡", 500_000)),
    version=1,
)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def world(clock):
    ports, tables = coupons_on_fakes(clock)
    tables.rules.save(LEVELS)
    return ports, tables


def at_level(tables, customer: str, level: int) -> None:
    growth = LEVELS.level(min(level, 2)).min_growth_fen
    tables.members.members[customer] = Member(customer, 0, level=level, growth_fen=growth, version=1)


def given_template(ports, levels: list[str] | None, **changes) -> str:
    member_levels = None if levels is None else frozenset(levels)
    return fixed_coupon_template(ports, 2 * HOUR_MS, member_levels=member_levels, **changes)


def claim(ports, template_id, customer, key=None):
    request = IdempotentRequest.of(f"coupon-claims:{template_id}:{customer}", key, {"template_id": template_id})
    return claims.claim(template_id, customer, request, ports)


def issue(ports, template_id, guide, member):
    request = IdempotentRequest.of(f"coupon-guide-issues:{template_id}:{guide}", None, {"member_id": member})
    return claims.issue_by_guide(template_id, guide, member, request, ports)


class CountingLevels:
    """The level table port, counting its reads."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.reads = 0

    def names(self) -> tuple[str, ...]:
        self.reads += 1
        return self.inner.names()


# -- claims -----------------------------------------------------------------------------------------
def test_only_a_member_at_a_named_level_claims(world):
    ports, tables = world
    template_id = given_template(ports, ["银卡", "金卡"])
    at_level(tables, "c-gold", 2)
    at_level(tables, "c-silver", 1)
    at_level(tables, "c-plain", 0)
    # A member at a named level claims
    assert claim(ports, template_id, "c-gold").status == 201
    assert claim(ports, template_id, "c-silver").status == 201
    # Another level, and no member record yet (the lowest level): 403 naming the levels, nothing written
    for customer in ("c-plain", "c-new"):
        with pytest.raises(MemberLevelRequired) as refused:
            claim(ports, template_id, customer)
        assert refused.value.code == "MEMBER_LEVEL_REQUIRED"
        assert refused.value.details["member_levels"] == ["金卡", "银卡"]
    assert sorted(c.customer_id for c in tables.coupons.values()) == ["c-gold", "c-silver"]
    assert sorted(customer for (_, customer) in tables.claimants) == ["c-gold", "c-silver"]
    assert templates.show_template(template_id, ports)["counts"]["remaining"] == 8


def test_no_member_record_counts_as_the_lowest_level(world):
    ports, tables = world
    template_id = given_template(ports, ["普通会员"])
    at_level(tables, "c-silver", 1)
    # A customer never enrolled is at level 0, which this template names
    assert claim(ports, template_id, "c-new").status == 201
    with pytest.raises(MemberLevelRequired):
        claim(ports, template_id, "c-silver")


def test_the_level_is_checked_in_the_claims_one_commit(world):
    ports, tables = world
    template_id = given_template(ports, ["金卡"])
    at_level(tables, "c-gold", 2)
    claim(ports, template_id, "c-gold")  # the template and the level table are kept from here
    before = tables.commits
    at_level(tables, "c-2", 2)
    claim(ports, template_id, "c-2")
    assert tables.commits == before + 1
    # A refused level is a refused commit: the stored level decides, as the transaction runs
    at_level(tables, "c-3", 1)
    with pytest.raises(MemberLevelRequired):
        claim(ports, template_id, "c-3")
    assert tables.commits == before + 1 and "c-3" not in {c.customer_id for c in tables.coupons.values()}


def test_a_template_without_levels_never_reads_the_level_table(world):
    ports, tables = world
    counting = CountingLevels(ports.levels)
    ports = replace(ports, levels=counting)
    template_id = given_template(ports, None)
    for n in range(3):
        assert claim(ports, template_id, f"c-{n}").status == 201
    assert counting.reads == 0
    # A template that names levels reads it at its creation and once per template_cache_s when claimed
    named = given_template(ports, ["金卡"])
    assert counting.reads == 1
    for n in range(3):
        at_level(tables, f"g-{n}", 2)
        claim(ports, named, f"g-{n}")
    assert counting.reads == 2


def test_the_level_refusal_comes_before_the_limit_and_the_total(world):
    ports, tables = world
    template_id = given_template(ports, ["金卡"], total=1, per_user_limit=1)
    at_level(tables, "c-gold", 2)
    assert claim(ports, template_id, "c-gold").status == 201
    # The gold member holds the limit and the template is empty; once silver, the answer is the level
    at_level(tables, "c-gold", 1)
    with pytest.raises(MemberLevelRequired):
        claim(ports, template_id, "c-gold")
    at_level(tables, "c-gold", 2)
    with pytest.raises(LimitReached):
        claim(ports, template_id, "c-gold")


def test_a_level_change_after_the_claim_keeps_the_coupon_and_the_replay(world):
    ports, tables = world
    template_id = given_template(ports, ["金卡"], per_user_limit=2)
    at_level(tables, "c-1", 2)
    first = claim(ports, template_id, "c-1", key="k-1")
    # The member drops to silver (a refund): the coupon claimed stays theirs and usable
    at_level(tables, "c-1", 1)
    assert tables.coupons[first.body["coupon_id"]].status is Status.AVAILABLE
    # The same key answers the first coupon; a new claim is refused
    assert claim(ports, template_id, "c-1", key="k-1").body == first.body
    with pytest.raises(MemberLevelRequired):
        claim(ports, template_id, "c-1", key="k-2")
    assert [c.customer_id for c in tables.coupons.values()] == ["c-1"]


def test_a_level_the_merchant_removed_reads_as_the_top_level(world):
    ports, tables = world
    top = given_template(ports, ["金卡"])
    lower = given_template(ports, ["银卡"])
    # Stored level 3 from an older table of four levels: it reads as 金卡, the top one left
    at_level(tables, "c-old", 3)
    assert claim(ports, top, "c-old").status == 201
    with pytest.raises(MemberLevelRequired):
        claim(ports, lower, "c-old")


def test_a_renamed_level_admits_nobody_and_a_new_table_applies_after_the_cache(world, clock):
    ports, tables = world
    template_id = given_template(ports, ["银卡"], per_user_limit=3)
    at_level(tables, "c-1", 1)
    assert claim(ports, template_id, "c-1").status == 201
    renamed = replace(LEVELS, levels=(LEVELS.levels[0], replace(LEVELS.levels[1], name="白银"), LEVELS.levels[2]))
    tables.rules.save(renamed.next_version())
    # Within template_cache_s the process claims under the table it read a moment ago
    assert claim(ports, template_id, "c-1").status == 201
    # After it, no level is called 银卡: nobody is admitted, refused before any commit
    clock.advance(ports.policy.template_cache_s + 0.01)
    before = tables.commits
    with pytest.raises(MemberLevelRequired) as refused:
        claim(ports, template_id, "c-1")
    assert refused.value.details["member_levels"] == ["银卡"] and tables.commits == before


# -- templates -------------------------------------------------------------------------------------
def test_a_template_names_only_levels_the_rules_define(world):
    ports, tables = world
    with pytest.raises(UnknownMemberLevel) as refused:
        given_template(ports, ["金卡", "钻石"])
    assert refused.value.code == "UNKNOWN_MEMBER_LEVEL"
    assert refused.value.details == {"member_levels": ["钻石"], "levels_defined": ["普通会员", "银卡", "金卡"]}
    with pytest.raises(ValidationFailed) as empty:
        given_template(ports, [])
    assert [e["field"] for e in empty.value.details["errors"]] == ["member_levels"]
    assert tables.templates == {}


def test_before_any_rules_are_saved_the_default_level_is_the_one_name(clock):
    ports, _ = coupons_on_fakes(clock)
    with pytest.raises(UnknownMemberLevel):
        given_template(ports, ["金卡"])
    template_id = given_template(ports, ["会员"])
    assert claim(ports, template_id, "c-new").status == 201


# -- guides ----------------------------------------------------------------------------------------
def test_a_guide_issues_a_level_template_only_to_a_member_at_a_named_level(world):
    ports, tables = world
    template_id = given_template(ports, ["金卡"], total=10, guide_quota=5)
    for member in ("c-gold", "c-silver", "c-new"):
        tables.bindings[member] = GuideOfMember("G001", 1)
    at_level(tables, "c-gold", 2)
    at_level(tables, "c-silver", 1)
    assert issue(ports, template_id, "G001", "c-gold").status == 201
    for member in ("c-silver", "c-new"):
        with pytest.raises(MemberLevelRequired) as refused:
            issue(ports, template_id, "G001", member)
        assert refused.value.details["member_levels"] == ["金卡"]
    # The refusals moved neither the guide's count nor any member's
    assert tables.guide_issues == {(template_id, "G001"): 1}
    assert {c.customer_id for c in tables.coupons.values()} == {"c-gold"}


def test_a_template_without_levels_issues_to_any_level(world):
    ports, tables = world
    template_id = given_template(ports, None, total=10, guide_quota=5)
    tables.bindings["c-new"] = GuideOfMember("G001", 1)
    assert issue(ports, template_id, "G001", "c-new").status == 201
    assert [c.customer_id for c in tables.coupons.values()] == ["c-new"]
