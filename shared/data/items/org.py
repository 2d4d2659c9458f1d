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
    dealer_id = UnicodeAttribute(null=True)  # a store's dealer; none: self-operated
    payout_account = UnicodeAttribute(null=True)  # where a store's commission is paid (statements)

    @staticmethod
    def key(location_id: str) -> tuple[str, str]:
        return f"LOCATION#{location_id}", "LOCATION"


class PartyItem(BaseItem, discriminator="Party"):
    """pk `PARTY#<id>`, sk `PARTY`: a dealer or a guide, who can earn commission (distributors are
    members: `DistributorItem`). gsi1 `PARTIES#<kind>` / `<id>` (dealers) or `<store_id>#<id>`
    (guides) lists them; a store's guides are a `begins_with` of that."""

    party_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # "dealer" | "guide"
    name = UnicodeAttribute()
    store_id = UnicodeAttribute(null=True)
    dealer_id = UnicodeAttribute(null=True)
    member_id = UnicodeAttribute(null=True)  # a guide's own customer account
    payout_account = UnicodeAttribute(null=True)

    @staticmethod
    def key(party_id: str) -> tuple[str, str]:
        return f"PARTY#{party_id}", "PARTY"
