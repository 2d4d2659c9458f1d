"""What Chalice answers itself, before any view: in API.md's error shape (functions/edge)."""

from __future__ import annotations

import json

from tests.conftest import bearer


def test_a_method_the_path_lacks_is_405_in_the_error_shape(client):
    response = client.http.request("DELETE", "/products", headers={})
    assert response.status_code == 405
    body = json.loads(response.body)
    assert body == {"code": "METHOD_NOT_ALLOWED", "message": body["message"], "details": {"allowed": ["GET"]}}
    assert "Code" not in body


def test_a_body_that_is_not_json_is_415_in_the_error_shape(client, tokens):
    headers = {**bearer(tokens["customer"]), "Content-Type": "text/plain; charset=secret-token-123"}
    response = client.http.post("/checkout/quote", headers=headers, body="lines")
    assert response.status_code == 415
    body = json.loads(response.body)
    assert (body["code"], body["details"]) == ("UNSUPPORTED_MEDIA_TYPE", {})
    assert "secret-token-123" not in response.body.decode()  # Chalice's message repeated the header


def test_a_body_nested_a_thousand_deep_is_400(client, tokens):
    deep = '{"lines": ' + "[" * 1000 + "]" * 1000 + "}"
    response = client.http.post("/checkout/quote", headers=bearer(tokens["customer"]), body=deep)
    assert (response.status_code, json.loads(response.body)["code"]) == (400, "MALFORMED_REQUEST")
