"""Set-up and audits for coupon tests on the moto table: stores, a template body, claims through the
service, and the books of a template read straight from the table."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from shared.coupons import claims
from shared.data.items import CouponClaimantItem, CouponItem
from shared.data.stores.locations import DynamoLocations
from shared.inventory.locations import Location
from shared.kernel.clock import now_ms
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.platform import bootstrap
from shared.web.auth import Role, issue_token
from tests.conftest import TEST_ENV, bearer

STORES = ("S001", "S002")


def given_stores() -> None:
    locations = DynamoLocations()
    now = now_ms()
    locations.put(Location("WH", "warehouse", "仓"), now)
    for store in STORES:
        locations.put(Location(store, "store", f"店 {store}", city="Shanghai"), now)


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(now_ms() / 1000 + seconds, tz=UTC).isoformat()


def template_body(**changes: Any) -> dict[str, Any]:
    body = {
        "kind": "threshold",
        "name": "满100减20",
        "amount_fen": 2000,
        "threshold_fen": 10000,
        "total": 10,
        "per_user_limit": 1,
        "valid_from": iso_in(-60),
        "valid_to": iso_in(3600),
        "channels": ["online", "offline"],
    }
    return {**body, **changes}


def customer_token(sub: str) -> str:
    return issue_token(TEST_ENV["JWT_SECRET"], sub, Role.CUSTOMER)


def post(client, path: str, token: str, body: Any = None, **headers: str):
    raw = json.dumps(body) if body is not None else None
    return client.http.post(path, headers={**bearer(token), **headers}, body=raw)


def patch(client, path: str, token: str, body: Any):
    return client.http.patch(path, headers=bearer(token), body=json.dumps(body))


def get(client, path: str, token: str):
    return client.http.get(path, headers=bearer(token))


def create_template(client, tokens: dict[str, str], **changes: Any) -> str:
    created = post(client, "/admin/coupon-templates", tokens["merchant_admin"], template_body(**changes))
    assert created.status_code == 201, created.json_body
    return created.json_body["template_id"]


def claim(template_id: str, customer: str, key: str | None = None) -> StoredResponse:
    """A claim through the service, as the route makes it."""
    request = IdempotentRequest.of(f"coupon-claims:{template_id}:{customer}", key, {"template_id": template_id})
    return claims.claim(template_id, customer, request, bootstrap.coupons())


def coupons_of(template_id: str) -> list[CouponItem]:
    return [c for c in CouponItem.scan(CouponItem.template_id == template_id) if isinstance(c, CouponItem)]


def claims_per_customer(template_id: str) -> Counter[str]:
    return Counter(c.customer_id for c in coupons_of(template_id))


def claimant_counts(template_id: str) -> dict[str, int]:
    prefix = f"CPNTPL#{template_id}#USER#"
    return {
        item.pk.removeprefix(prefix): int(item.claimed)
        for item in CouponClaimantItem.scan(CouponClaimantItem.pk.startswith(prefix))
    }
