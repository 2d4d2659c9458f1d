"""Crowds of flash-sale buyers over HTTP, for the end-to-end tests: every attempt has its own
Idempotency-Key and is retried with the same key after a 503 (as API.md asks of clients), so each
attempt ends in a definite answer. A dropped connection is a failure: the local server's backlog
takes the crowd's connects (infra/local/api_server.py)."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from shared.web.auth import Role, issue_token

THREADS = 32
# Each buyer names where the unit goes: without a fulfilment a buyer needs a saved address (PUT /me/address)
DELIVERY = {
    "type": "delivery",
    "address": {"recipient": "韩梅梅", "phone": "13700000000", "city": "上海", "detail": "徐汇区 3 号"},
}


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, tz=UTC).isoformat()


def sale_body(units: int, payment_window_s: int) -> dict:
    """A flash sale of `units` of a seeded product, one per buyer, open now for an hour."""
    return {
        "sku": "TEA-001",
        "price_fen": 9900,
        "quantity": units,
        "per_user_limit": 1,
        "starts_at": iso_in(-1),
        "ends_at": iso_in(3600),
        "payment_window_s": payment_window_s,
        "expected_peak_per_s": 2000,
    }


@dataclass
class Crowd:
    """Buyers of one sale; `retried` counts the 503s they were answered with before a definite
    answer (an attempt that never got one ends as "503")."""

    api_url: str
    sale_id: str
    secret: str
    retries: int = 6
    retried: Counter[str] = field(default_factory=Counter)

    def attempt(self, token: str, key: str) -> tuple[str, dict]:
        session = requests.Session()
        for _ in range(self.retries):
            answer = session.post(
                f"{self.api_url}/flash-sales/{self.sale_id}/orders",
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                json={"qty": 1, "fulfilment": DELIVERY},
                timeout=60,
            )
            if answer.status_code == 503:
                self.retried[answer.json().get("code", "503")] += 1
                time.sleep(0.2)
                continue
            body = answer.json()
            return (str(answer.status_code) if answer.status_code == 201 else body["code"]), body
        return "503", {}

    def buy(self, buyers: list[str], attempts: int, wave: str = "") -> list[tuple[str, str, dict]]:
        """(buyer, answer, body) for every attempt of every buyer, buyers on THREADS threads."""

        def one_buyer(buyer: str) -> list[tuple[str, str, dict]]:
            token = issue_token(self.secret, buyer, Role.CUSTOMER)
            return [(buyer, *self.attempt(token, f"{buyer}-{wave}{n}")) for n in range(attempts)]

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            return [answer for answers in pool.map(one_buyer, buyers) for answer in answers]


def crowd(api_url: str, sale_id: str, secret: str, buyers: list[str], attempts: int) -> list[tuple[str, str, dict]]:
    return Crowd(api_url, sale_id, secret).buy(buyers, attempts)
