"""Locations in DynamoDB (see LocationItem for keys): the warehouse and the stores.

`list()` is one Query on gsi1 `LOCATIONS`. The list changes when a store opens, so it is kept per
process for `CACHE_S` seconds: the catalogue listing and same-city checkout read it on every
request, and a new store appearing a minute late costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.data.connection import table_name
from shared.data.item_mapping import location_of
from shared.data.items import LocationItem
from shared.data.transactions import translated
from shared.inventory.locations import Location
from shared.kernel.clock import SYSTEM, Clock

LOCATIONS_PARTITION = "LOCATIONS"
CACHE_S = 60.0


@dataclass(frozen=True)
class _Cached:
    clock: Clock  # an entry counts only for the clock whose monotonic seconds `until` is on
    until: float
    locations: list[Location]


# Per process and table: stores are built per request, the list outlives them.
_cache: dict[str, _Cached] = {}


class DynamoLocations:
    def __init__(self, clock: Clock = SYSTEM) -> None:
        self.clock = clock

    def get(self, location_id: str) -> Location | None:
        with translated():
            try:
                return location_of(LocationItem.get(*LocationItem.key(location_id)))
            except LocationItem.DoesNotExist:
                return None

    def list(self) -> list[Location]:
        key = table_name()
        cached = _cache.get(key)
        if cached is not None and cached.clock is self.clock and cached.until > self.clock.monotonic():
            return cached.locations
        with translated():
            found = LocationItem.gsi1.query(LOCATIONS_PARTITION)
            locations = [location_of(item) for item in found if isinstance(item, LocationItem)]
        _cache[key] = _Cached(self.clock, self.clock.monotonic() + CACHE_S, locations)
        return locations

    def put(self, location: Location, now_ms: int) -> None:
        pk, sk = LocationItem.key(location.location_id)
        with translated():
            LocationItem(
                pk,
                sk,
                location_id=location.location_id,
                kind=location.kind,
                name=location.name,
                city=location.city,
                city_en=location.city_en,
                lat_e6=location.lat_e6,
                lng_e6=location.lng_e6,
                gsi1pk=LOCATIONS_PARTITION,
                gsi1sk=location.location_id,
                created_at=now_ms,
            ).save()
        _cache.pop(table_name(), None)
