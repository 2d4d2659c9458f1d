from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class LocationItem(BaseItem, discriminator="Location"):
    """pk `LOCATION#<id>`, sk `LOCATION`; gsi1 `LOCATIONS` / `<id>` lists them. The warehouse `WH`
    and every store. `lat_e6` / `lng_e6` (micro-degrees) place a store for same-city delivery."""

    location_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # "warehouse" | "store"
    name = UnicodeAttribute()
    name_en = UnicodeAttribute(null=True)
    city = UnicodeAttribute(null=True)
    city_en = UnicodeAttribute(null=True)
    lat_e6 = NumberAttribute(null=True)
    lng_e6 = NumberAttribute(null=True)
    dealer_id = UnicodeAttribute(null=True)

    @staticmethod
    def key(location_id: str) -> tuple[str, str]:
        return f"LOCATION#{location_id}", "LOCATION"


class PartyItem(BaseItem, discriminator="Party"):
    """pk `PARTY#<id>`, sk `PARTY`: a dealer, guide or distributor who can earn commission."""

    party_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # "dealer" | "guide" | "distributor"
    name = UnicodeAttribute()
    store_id = UnicodeAttribute(null=True)
    dealer_id = UnicodeAttribute(null=True)

    @staticmethod
    def key(party_id: str) -> tuple[str, str]:
        return f"PARTY#{party_id}", "PARTY"
