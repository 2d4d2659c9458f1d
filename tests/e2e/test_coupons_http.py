"""Coupons over HTTP against the `make dev` stack (issue 11, "Done means", at a size this tier can
run beside the others): a crowd claims a small template with a per-user limit of 2 and gets exactly
its total with nobody over the limit; 20 clerks redeeming one code at once redeem it once (none at a
store the coupon does not allow, none for a customer without the store's code); an order with the
coupon locks it, and a cancel gives it back."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

from shared.web.auth import Role, issue_token

pytestmark = pytest.mark.e2e

CLAIMANTS = 400
ATTEMPTS = 3
TOTAL = 100
LIMIT = 2
THREADS = 32
ADDRESS = {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "静安区1号"}


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, tz=UTC).isoformat()


def template(**changes) -> dict:
    body = {
        "kind": "threshold",
        "name": "满100减20",
        "amount_fen": 2000,
        "threshold_fen": 10000,
        "total": TOTAL,
        "per_user_limit": LIMIT,
        "valid_from": iso_in(-60),
        "valid_to": iso_in(3600),
        "channels": ["online", "offline"],
        "expected_peak_per_s": 2000,
    }
    return {**body, **changes}


def created(api, tokens, **changes) -> str:
    answer = api.post("/admin/coupon-templates", token=tokens["merchant_admin"], json=template(**changes))
    assert answer.status_code == 201, answer.text
    return answer.json()["template_id"]


_sessions = threading.local()


def session() -> requests.Session:
    if not hasattr(_sessions, "s"):
        _sessions.s = requests.Session()
    return _sessions.s


def claim_once(url: str, token: str, key: str) -> str:
    """One attempt, retried with the same key after a 503 until it has a definite answer."""
    for _ in range(8):
        answer = session().post(url, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key}, timeout=60)
        if answer.status_code != 503:
            return "201" if answer.status_code == 201 else answer.json()["code"]
    return "503"


def test_a_crowd_claims_exactly_the_total_and_nobody_passes_the_limit(api, stack, tokens):
    secret = stack.environment["JWT_SECRET"]
    template_id = created(api, tokens)
    url = f"{stack.api_url}/coupon-templates/{template_id}/claim"
    customers = [f"cc-{i}" for i in range(CLAIMANTS)]
    tokens_of = {c: issue_token(secret, c, Role.CUSTOMER) for c in customers}

    def one(customer: str) -> list[str]:
        return [claim_once(url, tokens_of[customer], f"{customer}-{n}") for n in range(ATTEMPTS)]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = dict(zip(customers, pool.map(one, customers), strict=True))
    took = time.monotonic() - started
    kinds = Counter(a for per in answers.values() for a in per)
    print(f"coupon crowd over HTTP: {dict(kinds)} in {took:.1f} s")
    # Exactly the total was issued, nobody over the limit, every answer definite
    assert kinds["201"] == TOTAL and set(kinds) <= {"201", "EXHAUSTED", "LIMIT_REACHED"}, kinds
    assert max(per.count("201") for per in answers.values()) <= LIMIT
    counts = api.get(f"/admin/coupon-templates/{template_id}", token=tokens["merchant_admin"]).json()["counts"]
    assert (counts["remaining"], counts["claimed"], counts["available"]) == (0, TOTAL, TOTAL)
    # And each winner's wallet holds what they were told
    winner = next(c for c, per in answers.items() if "201" in per)
    wallet = api.get("/me/coupons", token=tokens_of[winner], params={"status": "AVAILABLE"}).json()["items"]
    assert len([c for c in wallet if c["template_id"] == template_id]) == answers[winner].count("201")


def test_twenty_clerks_redeem_one_code_once_and_only_where_allowed(api, stack, tokens):
    secret = stack.environment["JWT_SECRET"]
    template_id = created(api, tokens, total=3, per_user_limit=3, stores=["S001"])
    codes = [
        api.post(f"/coupon-templates/{template_id}/claim", token=tokens["customer"]).json()["code"] for _ in range(3)
    ]

    def at(store: str, code: str, token_for) -> Counter[str]:
        def one(i: int) -> str:
            answer = session().post(
                f"{stack.api_url}/stores/{store}/coupon-redemptions",
                headers={"Authorization": f"Bearer {token_for(i)}"},
                json={"code": code},
                timeout=60,
            )
            return "201" if answer.status_code == 201 else answer.json()["code"]

        with ThreadPoolExecutor(max_workers=20) as pool:
            return Counter(pool.map(one, range(20)))

    def clerk(store: str):
        return lambda i: issue_token(secret, f"clerk-{i}", Role.STORE_STAFF, store)

    allowed = at("S001", codes[0], clerk("S001"))
    assert allowed == Counter({"201": 1, "COUPON_NOT_AVAILABLE": 19}), allowed
    elsewhere = at("S002", codes[1], clerk("S002"))
    assert elsewhere == Counter({"COUPON_NOT_USABLE": 20}), elsewhere
    unverified = at("S001", codes[2], lambda i: tokens["customer"])
    assert unverified == Counter({"VERIFICATION_CODE_REQUIRED": 20}), unverified
    # The customer with the store's current code redeems it themselves
    shown = api.get("/stores/S001/verification-code", token=tokens["store_staff"]).json()
    mine = api.post(
        "/stores/S001/coupon-redemptions",
        token=tokens["customer"],
        json={"code": codes[2], "verification_code": shown["verification_code"]},
    )
    assert mine.status_code == 201, mine.text


def test_an_order_locks_its_coupon_and_a_cancel_gives_it_back(api, stack, tokens):
    template_id = created(api, tokens, total=5, per_user_limit=1)
    coupon = api.post(f"/coupon-templates/{template_id}/claim", token=tokens["customer"]).json()
    cart = {
        "lines": [{"sku": "TEA-001", "qty": 1}],
        "coupon_ids": [coupon["coupon_id"]],
        "fulfilment": {"type": "delivery", "address": ADDRESS},
    }
    quoted = api.post("/checkout/quote", token=tokens["customer"], json=cart)
    assert quoted.status_code == 200, quoted.text
    assert {"kind": "coupon", "id": coupon["coupon_id"], "amount_fen": 2000} in quoted.json()["applied"]
    order = api.post("/orders", token=tokens["customer"], json=cart)
    assert order.status_code == 201, order.text
    second = api.post("/orders", token=tokens["customer"], json=cart)
    assert (second.status_code, second.json()["code"]) == (409, "COUPON_IN_USE")
    locked = api.get("/me/coupons", token=tokens["customer"], params={"status": "LOCKED"}).json()["items"]
    assert coupon["coupon_id"] in {c["coupon_id"] for c in locked}
    cancelled = api.post(f"/orders/{order.json()['order_id']}/cancel", token=tokens["customer"])
    assert cancelled.status_code == 200, cancelled.text
    back = api.get("/me/coupons", token=tokens["customer"], params={"status": "AVAILABLE"}).json()["items"]
    assert coupon["coupon_id"] in {c["coupon_id"] for c in back}
