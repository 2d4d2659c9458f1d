"""`next_cursor` is opaque and continues only the list it came from: any other string is a 400 with
the error body, never a start key handed to DynamoDB (a malformed key made the query fail: 500)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import bearer


def put_product(client, sku: str, token: str) -> None:
    body = json.dumps({"name": sku, "price_fen": 100})
    assert client.http.put(f"/admin/products/{sku}", headers=bearer(token), body=body).status_code == 201


def key_as_cursor(key: object) -> str:
    """What an unsigned cursor looked like: the start key, base64 JSON."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


FORGED = [
    key_as_cursor({"pk": "PRODUCT#A", "sk": "A"}),  # not DynamoDB's typed form: the query failed
    key_as_cursor({"pk": 5}),
    key_as_cursor({"pk": {"S": "CUSTOMER#c-2"}, "sk": {"S": "ORDER#o1"}}),
    key_as_cursor([1]),
    "%%%",
    "a.b",
    ".",
]


@pytest.mark.parametrize("cursor", FORGED)
@pytest.mark.parametrize("path", ["/products", "/orders"])
def test_a_cursor_the_api_did_not_give_out_is_400(client, tokens, path, cursor):
    # When a list is asked to continue from a made-up cursor
    response = client.http.get(f"{path}?cursor={cursor}", headers=bearer(tokens["customer"]))
    # Then it is refused as malformed, with the error body
    assert response.status_code == 400
    assert response.json_body["code"] == "MALFORMED_REQUEST"


def test_a_cursor_continues_its_own_list_and_no_other(client, tokens):
    # Given a cursor into the catalogue
    for sku in ("A-1", "A-2", "A-3"):
        put_product(client, sku, tokens["merchant_admin"])
    first = client.http.get("/products?limit=2").json_body
    # When it continues the catalogue, and when it is handed to the customer's order list
    second = client.http.get(f"/products?limit=2&cursor={first['next_cursor']}")
    elsewhere = client.http.get(f"/orders?cursor={first['next_cursor']}", headers=bearer(tokens["customer"]))
    # Then the catalogue continues where it stopped, and the order list refuses it
    assert [p["sku"] for p in second.json_body["items"]] == ["A-3"]
    assert elsewhere.status_code == 400
