"""Orders: DynamoDB round trips, items written and handler time (emulator excluded) to place and pay.

Runs the real API handler (`chalice.test.Client` on app.py, the code Lambda runs) against the
serialised moto server on 127.0.0.1. Every HTTP attempt the shared DynamoDB client makes is
counted through its botocore events, and the time spent waiting on the emulator (from
`before-send` to `needs-retry`, i.e. the wire and moto itself) is subtracted from the handler's
wall time: what remains is our code (parsing, auth, pricing, serialisation, SDK marshalling).
Carts hold 3 distinct SKUs, so "reads bounded by distinct SKUs, batched" shows as 1 read call; every
order also has a coupon and a promotion (issue 11), whose list comes from the per-process cache.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

ORDERS = 200
SAMPLE = 20  # orders placed and paid again with the write-unit meter on (bench/_write_meter.py)
SKUS = ["BENCH-A", "BENCH-B", "BENCH-C"]
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


class WireMeter:
    """Counts DynamoDB HTTP attempts and items written, and the time spent on the wire."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items_written = 0
        self.wire_s = 0.0
        self._local = threading.local()

    def attach(self, events: Any) -> None:
        events.register("before-send.dynamodb.*", self._before_send)
        events.register("needs-retry.dynamodb.*", self._after_send)

    def reset(self) -> None:
        self.calls.clear()
        self.items_written = 0
        self.wire_s = 0.0

    def _before_send(self, request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self.calls[operation] += 1
        body = json.loads(request.body or b"{}")
        if operation == "TransactWriteItems":
            self.items_written += len(body.get("TransactItems", []))
        elif operation in WRITES:
            self.items_written += 1
        elif operation == "BatchWriteItem":
            self.items_written += sum(len(v) for v in body.get("RequestItems", {}).values())
        self._local.started = time.perf_counter()

    def _after_send(self, **_: Any) -> None:
        started = getattr(self._local, "started", None)
        if started is not None:
            self.wire_s += time.perf_counter() - started
            self._local.started = None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _setup(endpoint: str) -> None:
    from infra.local import resources

    table = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "STAGE": "test",
            "TABLE_NAME": table,
            "DYNAMODB_ENDPOINT": endpoint,
            "SQS_ENDPOINT": endpoint,
            "JWT_SECRET": "bench-jwt-secret",
            "PAYMENT_WEBHOOK_SECRET": "bench-webhook-secret",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    resources.create_all(endpoint, "us-east-1", table, table)


def run() -> dict[str, object]:
    from chalice.test import Client

    from infra.local.moto_server import BackgroundMotoServer
    from shared.payments.hmac_webhook import sign
    from shared.platform import bootstrap
    from shared.web.auth import Role, issue_token

    with BackgroundMotoServer() as server:
        _setup(server.endpoint)
        bootstrap.reset()
        bootstrap.ready()
        from infra.local.seed import seed

        seed()  # the warehouse and stores, as `make dev` has them
        from app import app
        from shared.data.connection import events

        meter = WireMeter()
        meter.attach(events())
        admin = {
            "Authorization": f"Bearer {issue_token('bench-jwt-secret', 'admin', Role.MERCHANT_ADMIN)}",
            "Content-Type": "application/json",
        }
        cart = json.dumps(
            {
                "lines": [{"sku": sku, "qty": 1} for sku in SKUS],
                "fulfilment": {
                    "type": "delivery",
                    "address": {"recipient": "张三", "phone": "13800000000", "city": "上海", "detail": "1号"},
                },
            }
        )
        with Client(app, stage_name="test") as client:
            for sku in SKUS:
                client.http.put(
                    f"/admin/products/{sku}", headers=admin, body=json.dumps({"name": sku, "price_fen": 1999})
                )
                stocked = client.http.put(
                    f"/admin/stock/{sku}",
                    headers=admin,
                    body=json.dumps({"location": "WH", "on_hand": (ORDERS + 1 + SAMPLE) * 2}),
                )
                if stocked.status_code not in (200, 201):
                    raise RuntimeError(f"stock {sku}: {stocked.status_code} {stocked.body!r}")
            carts = _with_a_promotion_and_coupons(client, admin, json.loads(cart), ORDERS + 1 + SAMPLE)
            warm_headers, warm_cart = next(carts)
            # warm: first-use imports, connection pool, the promotions cache
            client.http.post("/orders", headers=warm_headers, body=warm_cart)

            def place_next() -> Any:
                headers, body = next(carts)
                return client.http.post("/orders", headers=headers, body=body)

            place = _measure(meter, place_next, 201)
            order_ids = place.pop("_bodies")
            kinds = {tuple(sorted(a["kind"] for a in order["applied"])) for order in order_ids}
            if kinds != {("coupon", "promotion")}:
                raise RuntimeError(f"every order should have a coupon and a promotion: {kinds}")

            def pay(order: dict) -> Any:
                raw = json.dumps(
                    {
                        "order_id": order["order_id"],
                        "transaction_id": f"t-{order['order_id']}",
                        "amount_fen": order["total_fen"],
                        "paid_at": "2026-11-23T00:00:00Z",
                    }
                ).encode()
                headers = {
                    "X-Pay-Signature": sign("bench-webhook-secret", raw, int(time.time())),
                    "Content-Type": "application/json",
                }
                return client.http.post("/payments/notify", headers=headers, body=raw)

            pending = iter(order_ids)
            paid = _measure(meter, lambda: pay(next(pending)), 200)
            paid.pop("_bodies")
            units = _write_units(place_next, pay)
    figures: dict[str, object] = {"orders (3 SKUs each)": ORDERS}
    for name, stats in (("place", place), ("pay", paid)):
        for key, value in stats.items():
            figures[f"{name}: {key}"] = value
    figures.update(units)
    return figures


def _write_units(place: Any, pay: Any) -> dict[str, Any]:
    """SAMPLE more orders placed and paid one at a time with the write-unit meter on (its read-backs
    would slow the timed runs above): items written and write units per operation, and the projection."""
    from bench import _write_meter

    meter = _write_meter.WriteMeter.for_template()
    placed, paid = [], []
    with meter.attached():
        for _ in range(SAMPLE):
            meter.start()
            response = place()
            if response.status_code != 201:
                raise RuntimeError(f"metered order: {response.status_code} {response.body!r}")
            placed.append(meter.taken())
            meter.start()
            answer = pay(response.json_body)
            if answer.status_code != 200:
                raise RuntimeError(f"metered payment: {answer.status_code} {answer.body!r}")
            paid.append(meter.taken())
    figures = _write_meter.figures("place (write units)", placed)
    figures.update(_write_meter.figures("pay (write units)", paid))
    table_place, index_place = _write_meter.per_op(placed)
    table_pay, index_pay = _write_meter.per_op(paid)
    index = {k: index_place.get(k, 0.0) + index_pay.get(k, 0.0) for k in {*index_place, *index_pay}}
    figures.update(_write_meter.projection("3-line order placed and paid", table_place + table_pay, index))
    figures["write units: largest item written, bytes, by entity"] = _write_meter.sizes(meter)
    return figures


def _with_a_promotion_and_coupons(
    client: Any, admin: dict[str, str], cart: dict, count: int
) -> Iterator[tuple[dict, str]]:
    """Issue 11: every order has a coupon and a promotion. A 满50减5 on the bench SKUs (the cart is
    59.97 yuan), and a 1-yuan coupon per order, each claimed by a customer of its own (a coupon is
    used once, and a customer may claim one): the cart and headers of each order, in turn."""
    from shared.web.auth import Role, issue_token

    soon, later = _iso_in(-60), _iso_in(3600)
    promotion = {
        "kind": "spend_threshold",
        "tiers": [{"threshold_fen": 5000, "off_fen": 500}],
        "scope": {"skus": SKUS},
        "starts_at": soon,
        "ends_at": later,
    }
    put = client.http.put("/admin/promotions/BENCH-50-OFF-5", headers=admin, body=json.dumps(promotion))
    if put.status_code not in (200, 201):
        raise RuntimeError(f"promotion: {put.status_code} {put.body!r}")
    template = {
        "kind": "fixed",
        "amount_fen": 100,
        "total": count,
        "per_user_limit": 1,
        "valid_from": soon,
        "valid_to": later,
        "channels": ["online"],
    }
    made = client.http.post("/admin/coupon-templates", headers=admin, body=json.dumps(template))
    template_id = made.json_body["template_id"]
    orders = []  # claimed before the first order is measured, so no claim is counted in one
    for n in range(count):
        token = issue_token("bench-jwt-secret", f"c-bench-{n}", Role.CUSTOMER)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        claimed = client.http.post(f"/coupon-templates/{template_id}/claim", headers=headers)
        if claimed.status_code != 201:
            raise RuntimeError(f"claim: {claimed.status_code} {claimed.body!r}")
        orders.append((headers, json.dumps({**cart, "coupon_ids": [claimed.json_body["coupon_id"]]})))
    return iter(orders)


def _iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, tz=UTC).isoformat()


def _measure(meter: WireMeter, call: Any, status: int) -> dict[str, Any]:
    handler_ms, ours_ms, bodies = [], [], []
    calls: Counter[str] = Counter()
    items = 0
    for _ in range(ORDERS):
        meter.reset()
        started = time.perf_counter()
        response = call()
        elapsed = time.perf_counter() - started
        if response.status_code != status:
            raise RuntimeError(f"expected {status}, got {response.status_code}: {response.body!r}")
        bodies.append(response.json_body)
        handler_ms.append(elapsed * 1000)
        ours_ms.append((elapsed - meter.wire_s) * 1000)
        calls.update(meter.calls)
        items += meter.items_written
    round_trips = sum(calls.values()) / ORDERS
    reads = sum(n for op, n in calls.items() if op in ("GetItem", "BatchGetItem", "Query")) / ORDERS
    transactions = calls["TransactWriteItems"] / ORDERS
    return {
        "DynamoDB round trips / op": round(round_trips, 2),
        "  of which reads / op": round(reads, 2),
        "  of which TransactWriteItems / op": round(transactions, 2),
        "  of which Query (promotion cache refreshes), all ops": calls["Query"],
        "items written / op": round(items / ORDERS, 2),
        "handler ms excl. emulator, p50": round(statistics.median(ours_ms), 2),
        "handler ms excl. emulator, p99": round(_percentile(ours_ms, 0.99), 2),
        "handler ms incl. emulator, p50": round(statistics.median(handler_ms), 2),
        "_bodies": bodies,
    }
