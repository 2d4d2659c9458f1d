"""The catalogue over HTTP, against the stack `make dev` runs: seeded data, the admin write, and
the error contract of API.md as a storefront sees it."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

import pytest

from infra.local.seed import PRODUCTS
from infra.local.stack import ROOT, LocalStack, PortTaken, free_port

pytestmark = pytest.mark.e2e


def new_sku() -> str:
    return f"E2E-{uuid.uuid4().hex[:8].upper()}"


def test_the_seeded_catalogue_is_listed_page_by_page(api):
    # When a storefront reads the whole catalogue five products at a time
    listed = api.pages("/products", limit=5)
    # Then the dozen seeded products are there, in SKU order, each once, with both names
    skus = [p["sku"] for p in listed]
    assert skus == sorted(set(skus))
    seeded = {p["sku"]: p for p in listed if p["sku"] in {row[0] for row in PRODUCTS}}
    assert len(seeded) == 12
    sku, name, name_en, _, price_fen, _ = PRODUCTS[0]
    assert (seeded[sku]["name"], seeded[sku]["name_en"], seeded[sku]["price_fen"]) == (name, name_en, price_fen)


def test_admin_puts_a_product_and_anyone_reads_it(api, tokens):
    sku = new_sku()
    # Given a merchant admin creates a product, then changes its price
    created = api.put(
        f"/admin/products/{sku}", token=tokens["merchant_admin"], json={"name": "桂花乌龙", "price_fen": 3900}
    )
    updated = api.put(
        f"/admin/products/{sku}", token=tokens["merchant_admin"], json={"name": "桂花乌龙", "price_fen": 4200}
    )
    # When a storefront reads it without a token
    read = api.get(f"/products/{sku}")
    # Then it was created once and then replaced, and reads back as last written
    assert (created.status_code, updated.status_code, read.status_code) == (201, 200, 200)
    assert read.json()["name"] == "桂花乌龙" and read.json()["price_fen"] == 4200
    assert read.headers["Content-Type"].startswith("application/json")


def test_writing_without_a_token_or_with_an_expired_one_is_401(api, tokens):
    body = {"name": "x", "price_fen": 100}
    no_token = api.put(f"/admin/products/{new_sku()}", json=body)
    expired = api.put(f"/admin/products/{new_sku()}", token=tokens["expired"], json=body)
    assert (no_token.status_code, expired.status_code) == (401, 401)
    assert no_token.json()["code"] == expired.json()["code"] == "UNAUTHENTICATED"


def test_writing_with_the_wrong_role_is_403(api, tokens):
    response = api.put(f"/admin/products/{new_sku()}", token=tokens["customer"], json={"name": "x", "price_fen": 100})
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"


def test_an_unknown_sku_is_404_with_the_error_body(api):
    response = api.get("/products/NOPE-404")
    assert response.status_code == 404
    assert response.json() == {"code": "NOT_FOUND", "message": "no such product", "details": {"sku": "NOPE-404"}}


def test_malformed_json_is_400_and_writes_nothing(api, tokens):
    sku = new_sku()
    response = api.put(f"/admin/products/{sku}", token=tokens["merchant_admin"], data='{"name": "x", "price_fen": ')
    assert response.status_code == 400
    assert response.json()["code"] == "MALFORMED_REQUEST"
    assert api.get(f"/products/{sku}").status_code == 404


@pytest.mark.parametrize("price", [12.5, -1], ids=["float", "negative"])
def test_a_float_or_negative_price_is_422_and_writes_nothing(api, tokens, price):
    sku = new_sku()
    response = api.put(f"/admin/products/{sku}", token=tokens["merchant_admin"], json={"name": "x", "price_fen": price})
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert api.get(f"/products/{sku}").status_code == 404


def test_a_second_stack_on_the_same_api_port_is_refused(stack):
    # Given the running stack holds its API port
    second = LocalStack(api_port=stack.api_port, moto_port=free_port(), quiet=True)
    # When another stack is started on it, Then it is refused before anything starts
    with pytest.raises(PortTaken, match=f"port {stack.api_port} \\(API\\) is taken"):
        second.start()


def test_make_dev_on_a_taken_port_says_so_and_exits_non_zero():
    # Given something listens on a port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # When `make dev` is asked to serve the API there
        result = subprocess.run(
            [sys.executable, "-m", "infra.local.dev", "--api-port", str(port), "--moto-port", str(free_port())],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    # Then it says the port is taken and exits with an error, starting nothing
    assert result.returncode != 0
    assert f"port {port} (API) is taken" in result.stderr
