"""Coupons: claims/s on a hot template against the emulator's raw conditional-decrement rate, round trips.

Everything runs against the serialised moto server in its own process (as `make dev` runs it), on
127.0.0.1, in one run (the emulator helpers are bench/flash_sales.py's):

1. baseline: the emulator's raw single-item conditional decrement from THREADS threads of this
   process, through the same shared botocore client the service uses;
2. claims at the service layer (`shared.coupons.claims.claim` with `bootstrap.coupons()`, what the
   route calls): customers on THREADS threads, one claim each, until the template answers
   EXHAUSTED; claims/s, p50 / p99, DynamoDB round trips per successful claim (the design: 1), the
   ratio to the raw rate (target >= 0.6), and the books read back (issued = total, nobody over the
   limit);
3. an order with a coupon (`bootstrap.ordering().place_order`, what `POST /orders` calls): round
   trips per placed order (the design: 2, one BatchGetItem and one TransactWriteItems) and the
   quote's (`bootstrap.checkout().quote`: the batched read plus the wallet's one query).

The emulator runs one request at a time, so its CPU per request (a small GetItem, a raw decrement,
a claim) bounds the ratio, whatever else the machine is running.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench import _write_meter as write_meter
from bench._write_meter import WriteMeter
from bench.flash_sales import THREADS, EmulatorCpu, _bind, _start_moto, raw_decrement_rate, small_reads

TOTAL = 1500  # coupons on the hot template
PEAK = 4000  # claims/s it is sized for: 8 shards
ORDERS = 60  # orders placed with a coupon
BASELINE_OPS = 2000
METERED = 20  # claims and orders with a coupon again, with the write-unit meter on (bench/_write_meter.py)


class Calls:
    """DynamoDB HTTP attempts per request on this thread, by operation."""

    def __init__(self) -> None:
        self._local = threading.local()

    def attach(self) -> None:
        from shared.data.connection import events

        events().register("before-send.dynamodb.*", self._sent, unique_id=f"coupon-bench-{id(self)}")

    def _sent(self, event_name: str, **_: Any) -> None:
        self.names().append(event_name.rsplit(".", 1)[-1])

    def names(self) -> list[str]:
        if not hasattr(self._local, "names"):
            self._local.names = []
        return self._local.names  # type: ignore[no-any-return]

    def start(self) -> None:
        self._local.names = []


def _iso(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds_from_now, tz=UTC).isoformat()


def create_template(total: int, per_user_limit: int, peak: int) -> str:
    from functions.coupons.models import CouponTemplateIn
    from shared.coupons import templates
    from shared.kernel.idempotency import IdempotentRequest
    from shared.platform import bootstrap

    body = CouponTemplateIn.model_validate(
        {
            "kind": "fixed",
            "name": "bench 10 yuan",
            "amount_fen": 1000,
            "total": total,
            "per_user_limit": per_user_limit,
            "valid_from": _iso(-60),
            "valid_to": _iso(3600),
            "channels": ["online"],
            "expected_peak_per_s": peak,
        }
    )
    request = IdempotentRequest.of("bench-coupons", None, {})
    created = templates.create_template(body.to_draft(), body.expected_peak_per_s, request, bootstrap.coupons())
    return str(created.body["template_id"])


def claim_until_exhausted(template_id: str, threads: int, prefix: str) -> dict[str, Any]:
    from shared.coupons import claims
    from shared.kernel.errors import CouponExhausted, DomainError
    from shared.kernel.idempotency import IdempotentRequest
    from shared.platform import bootstrap
    from shared.platform.observability import flush

    ports = bootstrap.coupons()
    meter = Calls()
    meter.attach()
    exhausted = threading.Event()
    next_customer = iter(range(10**9))
    lock = threading.Lock()
    latencies: list[float] = []
    trips: list[int] = []
    outcomes: Counter[str] = Counter()
    # The template's settings are read once per process and cached, as a warm Lambda has them.
    claims.claim(template_id, f"{prefix}-warm", IdempotentRequest.of(f"warm:{template_id}", None, {}), ports)

    def customer() -> None:
        while not exhausted.is_set():
            with lock:
                sub = f"{prefix}-{next(next_customer)}"
            request = IdempotentRequest.of(f"coupon-claims:{template_id}:{sub}", None, {"template_id": template_id})
            meter.start()
            started = time.perf_counter()
            try:
                claims.claim(template_id, sub, request, ports)
                outcome = "201"
            except CouponExhausted:
                outcome = "EXHAUSTED"
                exhausted.set()
            except DomainError as exc:
                outcome = exc.code
            elapsed = time.perf_counter() - started
            with lock:
                flush()
                outcomes[outcome] += 1
                if outcome == "201":
                    latencies.append(elapsed * 1000)
                    trips.append(len(meter.names()))

    started = time.perf_counter()
    workers = [threading.Thread(target=customer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {
        "elapsed_s": time.perf_counter() - started,
        "latencies_ms": latencies,
        "trips": trips,
        "outcomes": dict(outcomes),
    }


def books(template_id: str, answered: int) -> dict[str, int]:
    """The template's books, read consistently (the shards and tallies: no scan of the table, which
    the loaded emulator times out on). Each customer claimed once, so nobody can be over the limit
    here; the limit under concurrency is the e2e and load tests' (tests/load/test_coupon_claims.py)."""
    from shared.coupons import templates
    from shared.platform import bootstrap

    counts = templates.show_template(template_id, bootstrap.coupons())["counts"]
    return {
        "claimed (books)": int(counts["claimed"]),
        "remaining (shards)": int(counts["remaining"]),
        "answered 201 (incl. the warm-up claim)": answered,
        "over the total": max(0, int(counts["claimed"]) - TOTAL),
    }


def orders_with_a_coupon(count: int) -> dict[str, Any]:
    from functions.checkout.models import CartIn
    from shared.catalog import model as catalog
    from shared.catalog.model import Product
    from shared.coupons import claims
    from shared.data.items import StockItem
    from shared.data.stores.locations import DynamoLocations
    from shared.inventory.locations import Location
    from shared.kernel.clock import now_ms
    from shared.kernel.idempotency import IdempotentRequest
    from shared.platform import bootstrap

    now = now_ms()
    DynamoLocations().put(Location("WH", "warehouse", "仓"), now)
    catalog.upsert_product(Product(sku="CPN-BENCH", name="券 bench", price_fen=5000), bootstrap.products(), now)
    pk, sk = StockItem.key("CPN-BENCH", "WH")
    units = (count + METERED) * 2
    StockItem(pk, sk, sku="CPN-BENCH", location="WH", on_hand=units, reserved=0, available=units).save()
    template_id = create_template(count + METERED, 1, 500)
    ports = bootstrap.coupons()
    writes = WriteMeter.for_template()
    claimed_units = []
    wallet: list[tuple[str, str]] = []
    for n in range(count + METERED):
        sub = f"buyer-{n}"
        with writes.attached() if n >= count else contextlib.nullcontext():
            writes.start()
            claimed = claims.claim(template_id, sub, IdempotentRequest.of(f"c:{sub}", None, {}), ports)
            claimed_units.append(writes.taken())
        wallet.append((sub, str(claimed.body["coupon_id"])))
    claimed_units = claimed_units[count:]
    placement, checkout = bootstrap.ordering(), bootstrap.checkout()
    meter = Calls()
    meter.attach()
    place_calls: list[list[str]] = []
    quote_calls: list[list[str]] = []
    place_ms: list[float] = []
    placed_units = []
    for n, (sub, coupon_id) in enumerate(wallet):
        body = {
            "lines": [{"sku": "CPN-BENCH", "qty": 1}],
            "coupon_ids": [coupon_id],
            "fulfilment": {
                "type": "delivery",
                "address": {"recipient": "王芳", "phone": "13800138000", "city": "上海", "detail": "1号"},
            },
        }
        cart = CartIn.model_validate(body)
        request = IdempotentRequest.of(f"orders:{sub}", None, body)
        if n >= count:  # the metered sample: not in the timed figures
            with writes.attached():
                writes.start()
                stored = placement.place_order(cart, sub, request)
                placed_units.append(writes.taken())
            if stored.status != 201:
                raise RuntimeError(f"order refused: {stored.status} {stored.body!r}")
            continue
        meter.start()
        checkout.quote(cart, sub)
        quote_calls.append(list(meter.names()))
        meter.start()
        started = time.perf_counter()
        stored = placement.place_order(cart, sub, request)
        place_ms.append((time.perf_counter() - started) * 1000)
        if stored.status != 201:
            raise RuntimeError(f"order refused: {stored.status} {stored.body!r}")
        place_calls.append(list(meter.names()))
    shapes = Counter(" + ".join(calls) for calls in place_calls)
    return {
        "order with a coupon: DynamoDB round trips / order": round(statistics.mean(map(len, place_calls)), 2),
        "order with a coupon: calls": shapes.most_common(1)[0][0],
        "order with a coupon: p50 ms (sequential)": round(statistics.median(place_ms), 1),
        "quote with the wallet: DynamoDB round trips": round(statistics.mean(map(len, quote_calls)), 2),
        "quote with the wallet: calls": Counter(" + ".join(c) for c in quote_calls).most_common(1)[0][0],
        **write_meter.figures("claim (write units)", claimed_units),
        **write_meter.figures("1-line order with a coupon (write units)", placed_units),
        "write units: largest item written, bytes, by entity": write_meter.sizes(writes),
    }


def run() -> dict[str, object]:
    moto, endpoint = _start_moto()
    try:
        _bind(endpoint, f"bench-coupons-{uuid.uuid4().hex[:8]}", create=True)
        cpu = EmulatorCpu(moto.pid)
        before = cpu.seconds()
        small_reads(500)
        read_ms = cpu.per_op_ms(before, 500)
        before = cpu.seconds()
        baseline = raw_decrement_rate(BASELINE_OPS)
        raw_ms = cpu.per_op_ms(before, BASELINE_OPS)
        figures: dict[str, Any] = {f"emulator raw conditional decrements/s ({THREADS} threads)": round(baseline, 1)}

        template_id = create_template(TOTAL, 1, PEAK)
        before = cpu.seconds()
        run_ = claim_until_exhausted(template_id, THREADS, "c")
        latencies = sorted(run_["latencies_ms"])
        claim_ms = cpu.per_op_ms(before, len(latencies))
        rate = len(latencies) / run_["elapsed_s"]
        label = f"claims, 1 process x {THREADS} threads"
        figures[f"{label}: claims/s"] = round(rate, 1)
        figures[f"{label}: ratio to the raw decrement rate"] = f"{rate / baseline:.2f}"
        figures[f"{label}: p50 ms"] = round(statistics.median(latencies), 1)
        figures[f"{label}: p99 ms"] = round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
        figures[f"{label}: DynamoDB round trips / successful claim"] = round(statistics.mean(run_["trips"]), 2)
        one_trip = sum(1 for t in run_["trips"] if t == 1) / len(run_["trips"])
        figures[f"{label}: successful claims in one round trip"] = f"{one_trip:.0%}"
        figures[f"{label}: round trips of the slowest claim"] = max(run_["trips"])
        figures[f"{label}: outcomes"] = ", ".join(f"{k} {v}" for k, v in sorted(run_["outcomes"].items()))
        figures.update({f"claims: {k}": v for k, v in books(template_id, len(latencies) + 1).items()})
        if read_ms and raw_ms and claim_ms:
            figures["emulator CPU ms: a small GetItem"] = f"{read_ms:.2f}"
            figures["emulator CPU ms: a raw decrement"] = f"{raw_ms:.2f}"
            figures["emulator CPU ms: a claim"] = f"{claim_ms:.2f}"
        print(figures, flush=True)  # the claims' figures, whatever happens to the orders below
        figures.update(orders_with_a_coupon(ORDERS))
        return figures
    finally:
        moto.terminate()
        with contextlib.suppress(Exception):
            moto.wait(timeout=10)
