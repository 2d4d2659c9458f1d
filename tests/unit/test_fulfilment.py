"""Which location serves an order (shared/ordering/fulfilment.py)."""

from __future__ import annotations

import pytest

from shared.inventory.locations import Location
from shared.kernel.errors import OutOfStock, RuleViolation, SameCityUnavailable, UnknownStore
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType, choose_location, distance_km
from shared.ordering.pricing import CartLine

WH = Location("WH", "warehouse", "仓", "Jiaxing", 30746000, 120755000)
JINGAN = Location("S001", "store", "静安", "Shanghai", 31229000, 121448000)
XUHUI = Location("S003", "store", "徐汇", "Shanghai", 31188000, 121437000)
HANGZHOU = Location("S002", "store", "西湖", "Hangzhou", 30259000, 120130000)
NO_COORDS = Location("S004", "store", "浦东", "上海市")
LOCATIONS = [WH, JINGAN, XUHUI, HANGZHOU, NO_COORDS]
LINES = [CartLine("TEA", 2), CartLine("MUG", 1)]
NEAR_JINGAN = (31.2304, 121.4737)  # People's Square: ~2.5 km from Jing'an, ~5 km from Xuhui


def address(city="Shanghai", coords=None):
    lat, lng = coords or (None, None)
    return Address("王芳", "13800000000", city, "南京西路 1 号", lat, lng)


def stocked(*locations, tea=5, mug=5):
    return {key: n for loc in locations for key, n in (((("TEA", loc), tea)), (("MUG", loc), mug))}


def same_city(coords=None, city="Shanghai"):
    return Fulfilment(FulfilmentType.SAME_CITY, address=address(city, coords))


def test_delivery_ships_from_the_warehouse_whatever_the_stores_hold():
    fulfilment = Fulfilment(FulfilmentType.DELIVERY, address=address())
    assert choose_location(fulfilment, LINES, LOCATIONS, stocked("S001")) == "WH"


@pytest.mark.parametrize("kind", [FulfilmentType.PICKUP, FulfilmentType.SHIP_FROM_STORE])
def test_pickup_and_ship_from_store_use_the_named_store(kind):
    fulfilment = Fulfilment(kind, store_id="S002", address=address())
    assert choose_location(fulfilment, LINES, LOCATIONS, {}) == "S002"


@pytest.mark.parametrize("store_id", ["S999", "WH"])
def test_a_store_id_that_is_not_a_store_is_refused(store_id):
    with pytest.raises(UnknownStore) as refused:
        choose_location(Fulfilment(FulfilmentType.PICKUP, store_id=store_id), LINES, LOCATIONS, {})
    assert refused.value.details == {"store_id": store_id}


def test_same_city_takes_the_nearest_store_with_every_line():
    # Given both Shanghai stores stocked, When the address is near Jing'an
    assert choose_location(same_city(NEAR_JINGAN), LINES, LOCATIONS, stocked("S001", "S003")) == "S001"


def test_same_city_passes_over_a_nearer_store_short_of_one_line():
    availability = {**stocked("S003"), ("TEA", "S001"): 5, ("MUG", "S001"): 0}
    assert choose_location(same_city(NEAR_JINGAN), LINES, LOCATIONS, availability) == "S003"


def test_same_city_never_uses_the_warehouse_or_a_store_beyond_the_radius():
    # Hangzhou is ~165 km from Shanghai; the warehouse is not a store
    with pytest.raises(OutOfStock) as short:
        choose_location(same_city(NEAR_JINGAN), LINES, LOCATIONS, stocked("WH", "S002"))
    assert short.value.details == {"sku": "TEA", "location": "S001"}


def test_same_city_far_from_every_store_is_unavailable():
    with pytest.raises(SameCityUnavailable):
        choose_location(same_city((39.9042, 116.4074), "Beijing"), LINES, LOCATIONS, stocked("S001"))


def test_same_city_without_coordinates_matches_the_city_name():
    # "上海市" matches "上海" and "Shanghai " matches "shanghai", by store id order
    assert choose_location(same_city(city="上海"), LINES, LOCATIONS, stocked("S001", "S004")) == "S004"
    assert choose_location(same_city(city=" shanghai"), LINES, LOCATIONS, stocked("S001", "S003")) == "S001"
    with pytest.raises(SameCityUnavailable):
        choose_location(same_city(city="Suzhou"), LINES, LOCATIONS, stocked("S001"))


def test_choices_missing_their_store_or_address_are_refused():
    with pytest.raises(RuleViolation):
        Fulfilment(FulfilmentType.PICKUP)
    with pytest.raises(RuleViolation):
        Fulfilment(FulfilmentType.SAME_CITY, store_id="S001")
    with pytest.raises(RuleViolation):
        Fulfilment(FulfilmentType.SHIP_FROM_STORE, store_id="S001")


def test_distance_is_great_circle_kilometres():
    assert distance_km((31.2304, 121.4737), (30.259, 120.130)) == pytest.approx(165, abs=3)
    assert distance_km((0.0, 0.0), (0.0, 0.0)) == 0


def test_a_store_named_in_both_scripts_matches_either():
    # Given a store whose city is 上海 with its English name, as the seed's stores carry it
    both = Location("S005", "store", "静安寺", "上海", city_en="Shanghai")
    locations = [WH, HANGZHOU, both]
    # When an address without coordinates names the city in either script, Then it is served there
    for city in ("上海", "上海市", "Shanghai", " SHANGHAI ", "shang hai"):
        assert choose_location(same_city(city=city), LINES, locations, stocked("S005")) == "S005", city
    with pytest.raises(SameCityUnavailable):
        choose_location(same_city(city="杭州市外"), LINES, locations, stocked("S005"))
