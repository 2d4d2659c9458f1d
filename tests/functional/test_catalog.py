from __future__ import annotations

import json

from tests.conftest import bearer


def put(client, sku, body, token):
    return client.http.put(f"/admin/products/{sku}", headers=bearer(token), body=json.dumps(body))


def test_admin_creates_then_updates_a_product(client, tokens):
    # Given a new SKU
    first = put(client, "TEA-9", {"name": "龙井", "price_fen": 1000}, tokens["merchant_admin"])
    # When it is saved again with a member price
    second = put(
        client, "TEA-9", {"name": "龙井", "price_fen": 1200, "member_price_fen": 1100}, tokens["merchant_admin"]
    )
    # Then the first save created it and the second replaced it
    assert first.status_code == 201
    assert second.status_code == 200
    got = client.http.get("/products/TEA-9").json_body
    assert got["price_fen"] == 1200 and got["member_price_fen"] == 1100 and got["name"] == "龙井"


def test_catalogue_is_listed_in_pages_in_sku_order(client, tokens):
    for i in range(5):
        assert (
            put(client, f"SKU-{i}", {"name": f"p{i}", "price_fen": 100 + i}, tokens["merchant_admin"]).status_code
            == 201
        )
    page1 = client.http.get("/products?limit=2").json_body
    page2 = client.http.get(f"/products?limit=2&cursor={page1['next_cursor']}").json_body
    page3 = client.http.get(f"/products?limit=2&cursor={page2['next_cursor']}").json_body
    skus = [p["sku"] for page in (page1, page2, page3) for p in page["items"]]
    assert skus == [f"SKU-{i}" for i in range(5)]


def test_unknown_sku_is_404_with_the_error_body(client):
    response = client.http.get("/products/NOPE-1")
    assert response.status_code == 404
    assert response.json_body == {"code": "NOT_FOUND", "message": "no such product", "details": {"sku": "NOPE-1"}}


def test_no_token_or_expired_token_is_401(client, tokens):
    body = json.dumps({"name": "x", "price_fen": 1})
    no_token = client.http.put("/admin/products/A-1", headers={"Content-Type": "application/json"}, body=body)
    expired = client.http.put("/admin/products/A-1", headers=bearer(tokens["expired"]), body=body)
    forged = client.http.put("/admin/products/A-1", headers=bearer(tokens["customer"] + "x"), body=body)
    assert [r.status_code for r in (no_token, expired, forged)] == [401, 401, 401]
    assert expired.json_body["code"] == "UNAUTHENTICATED"


def test_wrong_role_is_403(client, tokens):
    response = put(client, "A-1", {"name": "x", "price_fen": 1}, tokens["customer"])
    assert response.status_code == 403
    assert response.json_body["code"] == "FORBIDDEN"


def test_malformed_json_is_400_and_writes_nothing(client, tokens):
    response = client.http.put("/admin/products/A-1", headers=bearer(tokens["merchant_admin"]), body='{"name": "x",')
    assert response.status_code == 400
    assert response.json_body["code"] == "MALFORMED_REQUEST"
    assert client.http.get("/products/A-1").status_code == 404


def test_float_negative_or_missing_price_is_422_and_writes_nothing(client, tokens):
    admin = tokens["merchant_admin"]
    for body in (
        {"name": "x", "price_fen": 12.5},
        {"name": "x", "price_fen": -1},
        {"name": "x"},
        {"name": "x", "price_fen": "100"},
        {"name": "x", "price_fen": 100, "member_price_fen": 101},
    ):
        response = put(client, "A-1", body, admin)
        assert response.status_code == 422, body
        assert response.json_body["code"] in ("VALIDATION_FAILED", "RULE_VIOLATION")
    assert client.http.get("/products/A-1").status_code == 404


def test_bad_limit_or_cursor_is_400(client):
    assert client.http.get("/products?limit=abc").status_code == 400
    assert client.http.get("/products?limit=0").status_code == 400
    assert client.http.get("/products?cursor=%%%").status_code == 400


def test_responses_carry_a_correlation_id(client):
    response = client.http.get("/products", headers={"X-Correlation-Id": "abc-123"})
    assert response.headers["X-Correlation-Id"] == "abc-123"
