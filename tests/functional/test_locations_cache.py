"""The locations list is kept per process for CACHE_S seconds, on the store's clock."""

from __future__ import annotations

from shared.data.items import LocationItem
from shared.data.stores.locations import CACHE_S, DynamoLocations
from shared.inventory.locations import Location
from shared.kernel.clock import FakeClock

STORE = Location("S001", "store", "静安店", "上海", 31_228_000, 121_448_000)


def test_a_store_written_behind_the_cache_appears_when_the_cache_runs_out(table):
    clock = FakeClock()
    locations = DynamoLocations(clock)
    # Given the list was read once
    assert locations.list() == []
    # When a store is written without the store (as another process would)
    pk, sk = LocationItem.key(STORE.location_id)
    LocationItem(
        pk, sk, location_id="S001", kind="store", name="静安店", city="上海", gsi1pk="LOCATIONS", gsi1sk="S001"
    ).save()
    # Then the list stays as it was until CACHE_S have passed on the clock, and then shows it
    clock.advance(CACHE_S - 1)
    assert locations.list() == []
    clock.advance(1)
    assert [place.location_id for place in locations.list()] == ["S001"]


def test_a_put_through_the_store_is_seen_at_once(table):
    locations = DynamoLocations(FakeClock())
    assert locations.list() == []
    locations.put(STORE, now_ms=0)
    assert locations.list() == [STORE]
