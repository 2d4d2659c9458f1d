"""Set-up for stock and checkout tests: the seeded locations, products through the admin API,
stock counts, members, and a counter of DynamoDB round trips (botocore events of the one client)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from infra.local.seed import CITY_EN, LOCATIONS
from shared.data.connection import events
from shared.data.items import MemberItem
from shared.data.stores.locations import DynamoLocations
from shared.inventory.locations import Location
from tests.conftest import bearer


def given_locations(*extra: Location) -> None:
    """WH, S001 (Shanghai) and S002 (Hangzhou) as `make dev` seeds them, plus `extra`."""
    store = DynamoLocations()
    now_ms = int(time.time() * 1000)
    for loc_id, kind, name, _name_en, city, lat, lng in LOCATIONS:
        store.put(Location(loc_id, kind, name, city, lat, lng, CITY_EN[city]), now_ms)
    for location in extra:
        store.put(location, now_ms)


def given_product(client, admin: str, sku: str, price_fen: int, member_price_fen: int | None = None, **extra) -> None:
    body = {"name": sku, "price_fen": price_fen, "member_price_fen": member_price_fen, **extra}
    response = client.http.put(f"/admin/products/{sku}", headers=bearer(admin), body=json.dumps(body))
    assert response.status_code in (200, 201), response.json_body


def put_stock(client, admin: str, sku: str, location: str, on_hand: int):
    body = json.dumps({"location": location, "on_hand": on_hand})
    return client.http.put(f"/admin/stock/{sku}", headers=bearer(admin), body=body)


def given_stock(client, admin: str, sku: str, **on_hand_by_location: int) -> None:
    for location, on_hand in on_hand_by_location.items():
        response = put_stock(client, admin, sku, location, on_hand)
        assert response.status_code in (200, 201), response.json_body


def given_member(customer_sub: str) -> None:
    pk, sk = MemberItem.key(customer_sub)
    MemberItem(pk, sk, customer_sub=customer_sub).save()


@contextmanager
def dynamodb_calls() -> Iterator[Counter]:
    """Counts DynamoDB API calls (round trips) made through the shared client while open."""
    calls: Counter = Counter()

    def on_call(event_name: str, **_: object) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    events().register("before-call.dynamodb", on_call)
    try:
        yield calls
    finally:
        events().unregister("before-call.dynamodb", on_call)
