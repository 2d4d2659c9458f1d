"""The organisation and binding routes on moto (chalice.test.Client): admins build dealers, stores,
guides and distributors; members bind, share visits credit; admins reassign with an audit trail."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from chalice.test import Client

from shared.kernel.credited import Credited
from shared.platform import bootstrap
from shared.web.auth import Role, issue_token
from tests.conftest import TEST_ENV, bearer


def put(client: Client, token: str, path: str, body: dict) -> dict:
    response = client.http.put(path, headers=bearer(token), body=json.dumps(body))
    assert response.status_code == 200, response.body
    return response.json_body


def customer(sub: str) -> str:
    return issue_token(TEST_ENV["JWT_SECRET"], sub, Role.CUSTOMER)


@pytest.fixture
def org(client: Client, tokens: dict) -> Client:
    admin = tokens["merchant_admin"]
    put(client, admin, "/admin/dealers/D001", {"name": "华东经销商", "payout_account": "wxpay:1900000109"})
    put(client, admin, "/admin/stores/S001", {"name": "上海静安店", "dealer_id": "D001", "city": "上海"})
    put(client, admin, "/admin/stores/S009", {"name": "直营店"})
    put(client, admin, "/admin/guides/G001", {"name": "王芳", "store_id": "S001", "member_id": "c-wang"})
    put(client, admin, "/admin/guides/G002", {"name": "李明", "store_id": "S001"})
    return client


def test_admins_list_what_they_created(org: Client, tokens: dict):
    admin = bearer(tokens["merchant_admin"])
    stores = org.http.get("/admin/stores", headers=admin).json_body["items"]
    assert [(s["store_id"], s["dealer_id"], s["self_operated"]) for s in stores] == [
        ("S001", "D001", False),
        ("S009", None, True),
    ]
    guides = org.http.get("/admin/guides?store_id=S001", headers=admin).json_body
    assert [g["guide_id"] for g in guides["items"]] == ["G001", "G002"] and guides["next_cursor"] is None
    first = org.http.get("/admin/guides?limit=1", headers=admin).json_body
    rest = org.http.get(f"/admin/guides?limit=1&cursor={first['next_cursor']}", headers=admin).json_body
    assert [g["guide_id"] for g in first["items"] + rest["items"]] == ["G001", "G002"]
    dealers = org.http.get("/admin/dealers", headers=admin).json_body["items"]
    assert dealers == [{"dealer_id": "D001", "name": "华东经销商", "payout_account": "wxpay:1900000109"}]


def test_references_must_exist_and_only_admins_build_the_organisation(org: Client, tokens: dict):
    admin = bearer(tokens["merchant_admin"])
    refused = org.http.put("/admin/stores/S777", headers=admin, body=json.dumps({"name": "x", "dealer_id": "D404"}))
    assert (refused.status_code, refused.json_body["code"]) == (422, "UNKNOWN_PARTY")
    refused = org.http.put("/admin/guides/G777", headers=admin, body=json.dumps({"name": "x", "store_id": "S404"}))
    assert (refused.status_code, refused.json_body["code"]) == (422, "UNKNOWN_PARTY")
    as_guide = org.http.put("/admin/dealers/D002", headers=bearer(tokens["guide"]), body=json.dumps({"name": "x"}))
    assert as_guide.status_code == 403


def test_a_member_binds_once_and_a_second_guide_is_refused(org: Client):
    token = bearer(customer("c-1"))
    bound = org.http.post("/guides/G001/bind", headers=token)
    assert bound.status_code == 200
    assert {k: bound.json_body[k] for k in ("guide_id", "store_id", "dealer_id", "expires_at")} == {
        "guide_id": "G001",
        "store_id": "S001",
        "dealer_id": "D001",
        "expires_at": None,
    }
    assert org.http.post("/guides/G001/bind", headers=token).json_body == bound.json_body
    again = org.http.post("/guides/G002/bind", headers=token)
    assert (again.status_code, again.json_body["code"]) == (409, "ALREADY_BOUND")
    assert org.http.get("/me/binding", headers=token).json_body["guide_id"] == "G001"
    assert org.http.post("/guides/G404/bind", headers=token).status_code == 404
    own = org.http.post("/guides/G001/bind", headers=bearer(customer("c-wang")))
    assert (own.status_code, own.json_body["code"]) == (422, "SELF_BINDING")


def test_two_guides_scanned_at_once_bind_the_member_to_exactly_one(org: Client):
    token = bearer(customer("c-race"))
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda g: org.http.post(f"/guides/{g}/bind", headers=token), ["G001", "G002"] * 4))
    winners = {a.json_body["guide_id"] for a in answers if a.status_code == 200}
    assert len(winners) == 1
    assert {a.status_code for a in answers} <= {200, 409}
    history = bootstrap.member_binding().binding_of("c-race")[1]
    assert len(history) == 1


def test_an_admin_reassigns_and_the_trail_shows_it(org: Client, tokens: dict):
    org.http.post("/guides/G001/bind", headers=bearer(customer("c-1")))
    admin = tokens["merchant_admin"]
    moved = put(org, admin, "/admin/bindings/c-1", {"guide_id": "G002", "reason": "导购离职"})
    assert moved["guide_id"] == "G002"
    shown = org.http.get("/admin/bindings/c-1", headers=bearer(admin)).json_body
    assert [(h["kind"], h["from_guide_id"], h["to_guide_id"], h["by"], h["reason"]) for h in shown["history"]] == [
        ("reassign", "G001", "G002", "admin", "导购离职"),
        ("bind", None, "G001", "c-1", None),
    ]
    assert org.http.get("/admin/bindings/c-never", headers=bearer(admin)).status_code == 404


def test_distributors_cannot_form_a_cycle(org: Client, tokens: dict):
    admin = tokens["merchant_admin"]
    put(org, admin, "/admin/distributors/m-a", {"name": "A"})
    put(org, admin, "/admin/distributors/m-b", {"name": "B", "parent_id": "m-a"})
    cycle = org.http.put(
        "/admin/distributors/m-a", headers=bearer(admin), body=json.dumps({"name": "A", "parent_id": "m-b"})
    )
    assert (cycle.status_code, cycle.json_body["code"]) == (422, "DISTRIBUTOR_CYCLE")
    listed = org.http.get("/admin/distributors", headers=bearer(admin)).json_body["items"]
    assert [(d["member_id"], d["parent_id"]) for d in listed] == [("m-a", None), ("m-b", "m-a")]


def test_a_share_visit_credits_the_sharer_with_the_bindings_store_and_dealer(org: Client, tokens: dict):
    put(org, tokens["merchant_admin"], "/admin/distributors/m-a", {"name": "A"})
    put(org, tokens["merchant_admin"], "/admin/distributors/m-b", {"name": "B", "parent_id": "m-a"})
    token = bearer(customer("c-1"))
    org.http.post("/guides/G001/bind", headers=token)
    visit = org.http.post("/me/share-visits", headers=token, body=json.dumps({"share": "m-b"}))
    assert visit.status_code == 200 and visit.json_body["share"] == "m-b"
    assert bootstrap.member_binding().credited_for("c-1") == Credited(
        dealer_id="D001", store_id="S001", guide_id="G001", distributor_1_id="m-b", distributor_2_id="m-a"
    )
    unknown = org.http.post("/me/share-visits", headers=token, body=json.dumps({"share": "nobody"}))
    assert (unknown.status_code, unknown.json_body["code"]) == (422, "UNKNOWN_PARTY")
