"""API Gateway's own answers in the merged template: an unknown route is a 404 in API.md's error
shape, and no answer of the gateway repeats the request's Authorization header (docs/security.md)."""

from __future__ import annotations

import json


def test_unknown_routes_are_404_and_no_gateway_answer_repeats_a_header(merged_template: dict):
    responses = merged_template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    # An unknown path or method, with or without a token, is the 404 of API.md
    for kind in ("MISSING_AUTHENTICATION_TOKEN", "INCOMPLETE_SIGNATURE"):
        assert int(responses[kind]["StatusCode"]) == 404
        body = json.loads(responses[kind]["ResponseTemplates"]["application/json"])
        assert body == {"code": "NOT_FOUND", "message": "no such route", "details": {}}
    # And every other gateway answer has the error shape, without the gateway's message
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        template = responses[kind]["ResponseTemplates"]["application/json"]
        assert set(json.loads(template)) == {"code", "message", "details"}
    assert not any("error.message" in json.dumps(r) for r in responses.values())
