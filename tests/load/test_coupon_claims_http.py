"""The claim load test of issue 11's "Done means", over HTTP against a running stack (the one `make
dev` starts, on free ports, `tests/e2e/conftest.local_stack`): 2,000 customers claim a template of
500 coupons with a per-user limit of 2, three attempts each, and exactly 500 are issued with nobody
over 2; then the same on a stack whose API runs under the fault harness (10% of its DynamoDB
attempts on the template's shards and claimant counts, the coupons and their codes throttled,
refused for throughput, cancelled by a transaction conflict, or timing out before being sent or
after being applied).

Each attempt has its own Idempotency-Key and is repeated with the same key after a 503 (or a
client-side timeout), as API.md asks of clients, so every attempt ends in a definite answer. What
is checked comes from three places that must agree: the answers the customers got, the emulator's
table read directly (the coupons, the claimant counts, the shards), and the admin's books.

No assertion on time: the crowds are bounded by generous timeouts only. Measured times are in
docs/coupons.md ("Tests") and printed by each test.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.conftest import role_tokens
from tests.e2e.conftest import RunningStack, local_stack
from tests.e2e.http_api import Retrying

pytestmark = pytest.mark.load

CUSTOMERS = 2000
ATTEMPTS = 3
TOTAL = 500
LIMIT = 2
THREADS = 32
REQUEST_TIMEOUT_S = 60
RETRIES = 40  # 503s (or timeouts) an attempt may meet before it counts as undecided
CROWD_DEADLINE_S = 1800  # far past any machine this runs on; reaching it is a hung stack
FAULTS = ("--fault-rate", "0.1", "--fault-seed", "11", "--fault-partitions", "CPNTPL#,COUPON#,CPNCODE#")
# The claims need no schedule, and the stack's schedules (the coupon sweeper, the expiry reminder,
# the order sweeper...) query indexes that the emulator answers by reading the whole table, on the
# one serialised emulator the crowd needs: every 30 s instead of every second (the last
# `--schedule-every` given wins).
QUIET_SCHEDULES = ("--schedule-every", "30")
DEFINITE = {"201", "EXHAUSTED", "LIMIT_REACHED"}


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, tz=UTC).isoformat()


@dataclass
class ClaimCrowd:
    """Customers claiming one template over HTTP; `retried` counts the 503s (and timeouts) they
    were answered with before a definite answer."""

    url: str
    secret: str
    retried: Counter[str] = field(default_factory=Counter)
    _sessions: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _session(self) -> requests.Session:
        if not hasattr(self._sessions, "s"):
            self._sessions.s = requests.Session()
        return self._sessions.s

    def _retry(self, why: str) -> None:
        with self._lock:
            self.retried[why] += 1
        time.sleep(0.1)

    def attempt(self, token: str, key: str) -> tuple[str, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        for _ in range(RETRIES):
            try:
                answer = self._session().post(self.url, headers=headers, timeout=REQUEST_TIMEOUT_S)
            except requests.Timeout:
                self._retry("client timeout")
                continue
            if answer.status_code == 503:
                self._retry(answer.json().get("code", "503"))
                continue
            body = answer.json()
            return ("201" if answer.status_code == 201 else body["code"]), body
        return "undecided", {}

    def claim(self, customers: list[str], attempts: int) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """customer -> the (answer, body) of each of its attempts, customers on THREADS threads."""
        from shared.web.auth import Role, issue_token

        def one(customer: str) -> list[tuple[str, dict[str, Any]]]:
            token = issue_token(self.secret, customer, Role.CUSTOMER)
            return [self.attempt(token, f"{customer}-{n}") for n in range(attempts)]

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            return dict(zip(customers, pool.map(one, customers, timeout=CROWD_DEADLINE_S), strict=True))


class Table:
    """The stack's table read straight from the emulator (a Scan is fine in a test: it is no
    read path of the app)."""

    def __init__(self, running: RunningStack) -> None:
        self.client = boto3.client("dynamodb", endpoint_url=running.moto_endpoint, region_name="us-east-1")
        self.name = running.table_name

    def _items(self, expression: str, values: dict[str, Any]) -> list[dict]:
        found: list[dict] = []
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.name, ConsistentRead=True, FilterExpression=expression, ExpressionAttributeValues=values
        )
        for page in pages:
            found.extend(page["Items"])
        return found

    def coupons(self, template_id: str) -> dict[str, str]:
        """coupon id -> customer for every coupon of the template."""
        items = self._items("entity = :e AND template_id = :t", {":e": {"S": "Coupon"}, ":t": {"S": template_id}})
        return {i["coupon_id"]["S"]: i["customer_id"]["S"] for i in items}

    def claimant_counts(self, template_id: str) -> dict[str, int]:
        prefix = f"CPNTPL#{template_id}#USER#"
        items = self._items("begins_with(pk, :p)", {":p": {"S": prefix}})
        return {i["pk"]["S"][len(prefix) :]: int(i["claimed"]["N"]) for i in items}

    def on_shards(self, template_id: str) -> int:
        items = self._items("begins_with(pk, :p)", {":p": {"S": f"CPNTPL#{template_id}#SHARD#"}})
        return sum(int(i["remaining"]["N"]) for i in items)


def crowd_claims_exactly_the_total(running: RunningStack) -> tuple[Counter[str], Counter[str], float]:
    """The scenario, on `running`; returns the answers, the retried 503s and the crowd's seconds."""
    tokens = role_tokens(running.environment["JWT_SECRET"])
    api = Retrying(running.api_url)
    # Given a template of 500 coupons, 2 per customer, sharded for 2,000 claims/s (created with a
    # key, so a 503 through the faults is retried safely)
    created = api.post(
        "/admin/coupon-templates",
        token=tokens["merchant_admin"],
        headers={"Idempotency-Key": "load-template"},
        json={
            "kind": "fixed",
            "name": "立减5元",
            "amount_fen": 500,
            "total": TOTAL,
            "per_user_limit": LIMIT,
            "valid_from": iso_in(-60),
            "valid_to": iso_in(7 * 86400),
            "channels": ["online", "offline"],
            "expected_peak_per_s": 2000,
        },
    )
    assert created.status_code == 201, created.text
    template_id = created.json()["template_id"]
    crowd = ClaimCrowd(f"{running.api_url}/coupon-templates/{template_id}/claim", running.environment["JWT_SECRET"])
    customers = [f"lc-{i}" for i in range(CUSTOMERS)]

    # When 2,000 customers claim three times each, all at once
    started = time.monotonic()
    answers = crowd.claim(customers, ATTEMPTS)
    took = time.monotonic() - started
    kinds = Counter(kind for per in answers.values() for kind, _ in per)

    # Then every attempt got a definite answer and exactly 500 were issued, nobody more than 2
    assert set(kinds) <= DEFINITE, kinds
    issued = {body["coupon_id"]: customer for customer, per in answers.items() for kind, body in per if kind == "201"}
    assert kinds["201"] == TOTAL == len(issued), kinds
    held = Counter(issued.values())
    assert max(held.values()) <= LIMIT, held.most_common(3)
    # And the table holds exactly those coupons and counts: no 503 left a coupon or a count behind
    table = Table(running)
    assert table.coupons(template_id) == issued
    assert table.claimant_counts(template_id) == dict(held)
    assert table.on_shards(template_id) == 0
    # And the admin's books say the same
    counts = api.get(f"/admin/coupon-templates/{template_id}", token=tokens["merchant_admin"]).json()["counts"]
    assert (counts["total"], counts["remaining"], counts["claimed"], counts["available"]) == (TOTAL, 0, TOTAL, TOTAL)
    return kinds, crowd.retried, took


def test_two_thousand_customers_claim_exactly_500_and_nobody_more_than_2(tmp_path: Path) -> None:
    started = time.monotonic()
    with local_stack(tmp_path / "load-claims-stack.log", *QUIET_SCHEDULES) as running:
        kinds, retried, took = crowd_claims_exactly_the_total(running)
    print(f"\nclaim crowd over HTTP: {dict(kinds)} in {took:.1f} s; 503s retried: {dict(retried)}")
    print(f"whole test with its stack: {time.monotonic() - started:.1f} s")


def test_the_same_crowd_with_ten_percent_faults(tmp_path: Path) -> None:
    started = time.monotonic()
    log = tmp_path / "load-claims-faults-stack.log"
    with local_stack(log, *QUIET_SCHEDULES, *FAULTS) as running:
        kinds, retried, took = crowd_claims_exactly_the_total(running)
    # Then the stack reported, when it stopped, what it injected: about 10% of the eligible attempts
    text = log.read_text(errors="replace")
    report = text[text.rfind("faults: ") :].splitlines()
    injected, eligible = (int(n) for n in re.findall(r"faults: (\d+) injected in (\d+) eligible", report[0])[0])
    assert eligible > 5000 and 0.07 < injected / eligible < 0.13, report
    print(f"\nclaim crowd over HTTP under faults: {dict(kinds)} in {took:.1f} s; 503s retried: {dict(retried)}")
    print("\n".join(report))
    print(f"whole test with its stack: {time.monotonic() - started:.1f} s")
