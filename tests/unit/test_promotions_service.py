"""The promotion use cases (shared/promotions/service.py) on the in-memory store: a PUT creates or
replaces on the version it read, so two PUTs cannot lose one; `running` lists what runs now."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.kernel.clock import FakeClock
from shared.kernel.errors import ConcurrentUpdate, ValidationFailed
from shared.promotions.model import Kind, Promotion, Tier
from shared.promotions.service import Promotions
from tests.fakes.promotions import InMemoryPromotions

CLOCK = FakeClock()
NOW = CLOCK.now_ms()


def draft(pid: str = "P1", off: int = 1000, starts: int = NOW - 1, ends: int = NOW + 10_000) -> Promotion:
    return Promotion(pid, Kind.SPEND_THRESHOLD, starts, ends, tiers=(Tier(threshold_fen=10000, off_fen=off),))


def test_a_put_creates_then_replaces_with_the_next_version():
    service = Promotions(InMemoryPromotions(), CLOCK)
    view, created = service.put(draft())
    assert created and view["version"] == 1 and view["status"] == "running"
    view, created = service.put(draft(off=2000))
    assert not created and view["version"] == 2 and view["tiers"] == [{"threshold_fen": 10000, "off_fen": 2000}]


def test_a_put_on_a_stale_version_is_refused_and_writes_nothing():
    store = InMemoryPromotions()
    service = Promotions(store, CLOCK)
    service.put(draft(), expected_version=0)
    service.put(draft(off=2000), expected_version=1)
    with pytest.raises(ConcurrentUpdate) as stale:
        service.put(draft(off=3000), expected_version=1)  # read before the second PUT
    assert stale.value.details["version"] == 2
    assert store.get("P1").tiers[0].off_fen == 2000 and store.puts == 2
    with pytest.raises(ConcurrentUpdate):
        service.put(draft("P1"), expected_version=0)  # create-only, but it exists


class RacingStore(InMemoryPromotions):
    """Another PUT lands between this PUT's read and its write, once."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    def put(self, promotion: Promotion, expected_version: int | None) -> None:
        if not self.raced:
            self.raced = True
            super().put(replace(promotion, name="the other PUT"), expected_version)
        super().put(promotion, expected_version)


def test_a_put_without_a_version_is_applied_after_the_one_that_won_the_race():
    store = RacingStore()
    view, _ = Promotions(store, CLOCK).put(draft())
    # Both PUTs are applied, one after the other: neither is lost
    assert store.puts == 2 and view["version"] == 2 and store.get("P1").version == 2
    with pytest.raises(ConcurrentUpdate):
        Promotions(RacingStore(), CLOCK).put(draft(), expected_version=0)  # a PUT with a version is told


def test_an_invalid_promotion_is_refused_before_anything_is_read():
    store = InMemoryPromotions()
    with pytest.raises(ValidationFailed) as refused:
        Promotions(store, CLOCK).put(draft(off=20000))
    assert refused.value.details["errors"][0]["field"] == "tiers.0.off_fen" and store.puts == 0


def test_running_lists_what_runs_now_a_page_at_a_time():
    store = InMemoryPromotions(
        *(Promotion.plan(draft(f"P{i}"), 1, NOW) for i in range(3)),
        Promotion.plan(draft("LATER", starts=NOW + 5, ends=NOW + 50), 1, NOW),
        Promotion.plan(draft("OVER", starts=NOW - 50, ends=NOW), 1, NOW),
    )
    service = Promotions(store, CLOCK)
    first, cursor = service.running(2, None)
    assert [p["promotion_id"] for p in first] == ["P0", "P1"] and cursor == "P1"
    rest, cursor = service.running(2, cursor)
    assert [p["promotion_id"] for p in rest] == ["P2"] and cursor is None
