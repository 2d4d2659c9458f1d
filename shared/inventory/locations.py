"""Where stock is kept: the warehouse `WH` and the stores (pure domain; see LocationItem for keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

WAREHOUSE = "WH"


@dataclass(frozen=True)
class Location:
    location_id: str
    kind: str  # "warehouse" | "store"
    name: str
    city: str | None = None
    lat_e6: int | None = None  # micro-degrees, so coordinates stay exact integers in DynamoDB
    lng_e6: int | None = None
    city_en: str | None = None  # the city's name in the other script: same-city matches either

    @property
    def is_store(self) -> bool:
        return self.kind == "store"

    @property
    def city_names(self) -> tuple[str, ...]:
        return tuple(name for name in (self.city, self.city_en) if name)

    @property
    def coordinates(self) -> tuple[float, float] | None:
        if self.lat_e6 is None or self.lng_e6 is None:
            return None
        return self.lat_e6 / 1e6, self.lng_e6 / 1e6


class LocationRepository(Protocol):
    def get(self, location_id: str) -> Location | None: ...

    def list(self) -> list[Location]:
        """Every location (a handful: the warehouse and the stores), ordered by id."""
        ...
