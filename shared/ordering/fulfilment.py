"""Which location's stock serves an order, from the customer's fulfilment choice (pure).

- `delivery`: the warehouse `WH`.
- `pickup` and `ship_from_store`: the named store; a store id that is not a store is refused
  (`UnknownStore`, 422). Every type but pickup needs an address (ship-from-store posts the parcel).
- `same_city`: a store near the address that has every line available in full (an order is
  served by one location; lines are never split). "Near" is:
    * with coordinates on the address: stores within `radius_km` (great-circle distance), the
      nearest first;
    * without: stores in the address's city, by store id. A store carries its city's name in
      both scripts (`city` 上海, `city_en` Shanghai); either matches, compared without case,
      spaces or a trailing "市".
  The first of those with every line available wins. None near at all: `SameCityUnavailable`
  (422). Some near, none with every line: `OutOfStock` (409) naming a SKU short at the nearest.

Availability is read before the order and only advises: the reservation itself is a conditional
write, so a unit taken in between turns into OUT_OF_STOCK at placement, never into an oversell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.inventory.locations import WAREHOUSE, Location
from shared.kernel.errors import OutOfStock, RuleViolation, SameCityUnavailable, UnknownStore
from shared.ordering.pricing import CartLine

SAME_CITY_RADIUS_KM = 30.0
EARTH_RADIUS_KM = 6371.0


class FulfilmentType(StrEnum):
    DELIVERY = "delivery"
    PICKUP = "pickup"
    SHIP_FROM_STORE = "ship_from_store"
    SAME_CITY = "same_city"


@dataclass(frozen=True)
class Address:
    recipient: str
    phone: str
    city: str
    detail: str
    lat: float | None = None
    lng: float | None = None

    @property
    def coordinates(self) -> tuple[float, float] | None:
        if self.lat is None or self.lng is None:
            return None
        return self.lat, self.lng


@dataclass(frozen=True)
class Fulfilment:
    type: FulfilmentType
    store_id: str | None = None
    address: Address | None = None

    def __post_init__(self) -> None:
        needs_store = self.type in (FulfilmentType.PICKUP, FulfilmentType.SHIP_FROM_STORE)
        if needs_store and not self.store_id:
            raise RuleViolation(f"{self.type} needs a store_id", fulfilment_type=str(self.type))
        needs_address = self.type != FulfilmentType.PICKUP
        if needs_address and self.address is None:
            raise RuleViolation(f"{self.type} needs an address", fulfilment_type=str(self.type))

    @property
    def fixed_location(self) -> str | None:
        """The location this choice names outright; None for same-city, which is searched."""
        if self.type == FulfilmentType.DELIVERY:
            return WAREHOUSE
        if self.type == FulfilmentType.SAME_CITY:
            return None
        return self.store_id


Availability = Mapping[tuple[str, str], int]  # (sku, location) -> available units


def choose_location(
    fulfilment: Fulfilment,
    lines: Sequence[CartLine],
    locations: Sequence[Location],
    availability: Availability,
    *,
    radius_km: float = SAME_CITY_RADIUS_KM,
) -> str:
    """The id of the location whose stock the order reserves (rules in the module docstring).
    Only same-city looks at availability; for the others the reservation decides."""
    if fulfilment.type == FulfilmentType.DELIVERY:
        return WAREHOUSE
    fixed = fulfilment.fixed_location
    if fixed is not None:
        store = next((loc for loc in locations if loc.location_id == fixed), None)
        if store is None or not store.is_store:
            raise UnknownStore("no such store", store_id=fixed)
        return fixed
    assert fulfilment.address is not None  # Fulfilment guarantees it for same-city
    near = stores_near(fulfilment.address, locations, radius_km)
    if not near:
        raise SameCityUnavailable("no store delivers same-city to this address", city=fulfilment.address.city)
    for store in near:
        if not shortages(lines, store.location_id, availability):
            return store.location_id
    short = shortages(lines, near[0].location_id, availability)
    raise OutOfStock("no store near this address has every line", sku=short[0], location=near[0].location_id)


def shortages(lines: Sequence[CartLine], location: str, availability: Availability) -> list[str]:
    """The SKUs of `lines` that `location` cannot supply in full, in line order."""
    return [line.sku for line in lines if availability.get((line.sku, location), 0) < line.qty]


def stores_near(address: Address, locations: Sequence[Location], radius_km: float) -> list[Location]:
    stores = [loc for loc in locations if loc.is_store]
    here = address.coordinates
    if here is not None:
        placed = [(distance_km(here, there), loc.location_id, loc) for loc in stores if (there := loc.coordinates)]
        return [loc for km, _, loc in sorted(placed, key=lambda t: t[:2]) if km <= radius_km]
    city = _city_key(address.city)  # 上海 or Shanghai: a store carries its city's name in both scripts
    named = (loc for loc in stores if city in {_city_key(name) for name in loc.city_names})
    return sorted(named, key=lambda loc: loc.location_id)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine); metres of error do not matter for choosing a store."""
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def _city_key(city: str) -> str:
    key = "".join(city.split()).casefold()
    return key.removesuffix("市")
