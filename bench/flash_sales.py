"""Flash sales: orders/s against the emulator's raw conditional-decrement rate, round trips, latency.

Everything runs against the serialised moto server in its own process (as `make dev` runs it), on
127.0.0.1, in one run:

1. baseline: the emulator's raw single-item conditional decrement (`SET remaining = remaining - 1`
   if `remaining >= 1`, one item) from THREADS threads of this process, through the same shared
   botocore client the service uses;
2. the service layer (`bootstrap.flash_sales().purchase`, what the route calls): buyers on THREADS
   threads, one process, until the sale sells out. 1 and 2 alternate, ROUNDS times (a burst of
   decrements, then a sale of UNITS), and the rates are pooled over the rounds: on a shared
   machine the speed of both moves within seconds, and a baseline taken only before the sales
   compared them with another machine. Then the same on the contended path (units taken by
   a plain decrement before the order is written: what a process does after a TransactionConflict
   on a shard; the emulator never conflicts, so the bench forces it); then PROCESSES processes;
3. over HTTP: `python -m infra.local.dev` (moto + `chalice local` + the runner) on free ports and
   buyers on HTTP_THREADS threads.

For each: orders/s (successful orders / time to sell out), p50 / p99 latency of a purchase, units
sold, oversold (orders beyond the quantity: must be 0) and limit violations (buyers over the limit:
must be 0), read back from the table. DynamoDB round trips are counted per request with a
botocore `before-send` hook on `shared.data.connection.events()`. The emulator's own CPU time per
request (its process's utime + stime, Linux) is measured for a small GetItem, a raw decrement and a
flash order: the serialised emulator runs one request at a time, so their ratio is the ceiling of
the rate ratio, whatever else the machine is running.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
THREADS = 16
PROCESSES = 2
UNITS = 1500
BASELINE_OPS = 3000  # over all rounds
ROUNDS = 3
HTTP_THREADS = 32
HTTP_UNITS = 600
HTTP_DELIVERY: dict[str, Any] = {
    "type": "delivery",
    "address": {"recipient": "张三", "phone": "13800000000", "city": "上海", "detail": "1号"},
}
METERED = 30  # purchases per path with the write-unit meter on (bench/_write_meter.py), one at a time
REGION = "us-east-1"


# -- the emulator -------------------------------------------------------------------------------
def _free_port() -> int:
    from infra.local.stack import free_port

    return free_port()


def _start_moto() -> tuple[subprocess.Popen, str]:
    from infra.local import resources

    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "infra.local.moto_server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    resources.wait_for(endpoint)
    return child, endpoint


class EmulatorCpu:
    """CPU seconds the emulator's process has used (Linux /proc; None elsewhere). Per request, it is
    what the serialised emulator can serve at most, whatever else the machine runs."""

    def __init__(self, pid: int) -> None:
        self.stat = Path(f"/proc/{pid}/stat")

    def seconds(self) -> float | None:
        if not self.stat.exists():
            return None
        fields = self.stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def per_op_ms(self, before: float | None, ops: int) -> float | None:
        after = self.seconds()
        return None if before is None or after is None or not ops else round((after - before) / ops * 1000, 2)


def _environment(endpoint: str, table: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "STAGE": "test",
        "TABLE_NAME": table,
        "DYNAMODB_ENDPOINT": endpoint,
        "SQS_ENDPOINT": endpoint,
        "JWT_SECRET": "bench-jwt-secret",
        "PAYMENT_WEBHOOK_SECRET": "bench-webhook-secret",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }


def _bind(endpoint: str, table: str, create: bool) -> None:
    from infra.local import resources
    from shared.platform import bootstrap

    os.environ.update(_environment(endpoint, table))
    if create:
        resources.create_all(endpoint, REGION, table, table)
    bootstrap.reset()
    bootstrap.ready()


class RoundTrips:
    """DynamoDB HTTP attempts per request, counted on the shared client's events."""

    def __init__(self) -> None:
        self._local = threading.local()

    def attach(self) -> None:
        from shared.data.connection import events

        events().register("before-send.dynamodb.*", self._sent, unique_id=f"flash-bench-{id(self)}")

    def _sent(self, request: Any, **_: Any) -> None:
        self._local.count = getattr(self._local, "count", 0) + 1
        if b"#SHARD#" in (request.body or b""):  # a write that names a shard item (the hot partition)
            self._local.hot = getattr(self._local, "hot", 0) + 1

    def start(self) -> None:
        self._local.count = 0
        self._local.hot = 0

    def taken(self) -> tuple[int, int]:
        return int(getattr(self._local, "count", 0)), int(getattr(self._local, "hot", 0))


# -- 1. the baseline ------------------------------------------------------------------------------
def small_reads(ops: int = 1000, threads: int = THREADS) -> None:
    """GetItem of a small item: what any request costs the emulator before its own work."""
    from shared.data.connection import connection, table_name

    client = connection().client
    key = {"pk": {"S": f"BENCH#{uuid.uuid4().hex}"}, "sk": {"S": "SMALL"}}
    client.put_item(TableName=table_name(), Item=key)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda _: client.get_item(TableName=table_name(), Key=key), range(ops)))


def raw_decrement_rate(ops: int = BASELINE_OPS, threads: int = THREADS) -> float:
    return ops / raw_decrements(ops, threads)[0]


def raw_decrements(
    ops: int, threads: int = THREADS, cpu: EmulatorCpu | None = None
) -> tuple[float, float | None, float]:
    """Seconds, the emulator's CPU seconds and this process's CPU seconds of `ops` raw decrements
    from `threads` threads, after the item's put and a warm-up that none of them counts."""
    from shared.data.connection import connection, table_name

    client = connection().client
    key = {"pk": {"S": f"BENCH#{uuid.uuid4().hex}"}, "sk": {"S": "HOT"}}
    client.put_item(TableName=table_name(), Item={**key, "remaining": {"N": str(ops * 2)}})

    def decrement(_: int) -> None:
        client.update_item(
            TableName=table_name(),
            Key=key,
            UpdateExpression="SET remaining = remaining - :one",
            ConditionExpression="remaining >= :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(decrement, range(threads * 5)))  # warm the connection pool
        cpu_from, client_from = cpu.seconds() if cpu else None, time.process_time()
        started = time.perf_counter()
        list(pool.map(decrement, range(ops)))
        elapsed = time.perf_counter() - started
        cpu_to, client_s = cpu.seconds() if cpu else None, time.process_time() - client_from
    return elapsed, None if cpu_from is None or cpu_to is None else cpu_to - cpu_from, client_s


# -- 2. the service layer -------------------------------------------------------------------------
def create_sale(units: int, peak: int) -> str:
    from shared.catalog import model as catalog
    from shared.catalog.model import Product
    from shared.flash_sales.model import NewFlashSale
    from shared.kernel.clock import now_ms
    from shared.kernel.idempotency import IdempotentRequest
    from shared.platform import bootstrap

    now = now_ms()
    product = Product(sku="FLASH-BENCH", name="秒杀 bench", price_fen=19900)
    catalog.upsert_product(product, bootstrap.products(), now)
    _stock(product.sku, "WH", units)  # a sale holds its units out of a location's stock (28f996d)
    wanted = NewFlashSale(
        sku=product.sku,
        price_fen=9900,
        quantity=units,
        per_user_limit=1,
        starts_at_ms=now - 1000,
        ends_at_ms=now + 3600_000,
        payment_window_s=900,
        expected_peak_per_s=peak,
    )
    created = bootstrap.flash_sales().create(wanted, IdempotentRequest.of("bench", None, {}))
    return str(created.body["flash_sale_id"])


def _stock(sku: str, location: str, units: int) -> None:
    """`units` more on hand and available at the location (the default location of a sale)."""
    from shared.data.items import StockItem

    pk, sk = StockItem.key(sku, location)
    try:
        item = StockItem.get(pk, sk, consistent_read=True)
    except StockItem.DoesNotExist:
        StockItem(pk, sk, sku=sku, location=location, on_hand=units, reserved=0, available=units).save()
        return
    item.update(actions=[StockItem.on_hand.add(units), StockItem.available.add(units)])


def delivery() -> Any:
    """Where a bench buyer's flash order goes: a flash order names one, or the buyer's saved address."""
    from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType

    return Fulfilment(FulfilmentType.DELIVERY, address=Address("张三", "13800000000", "上海", "1号"))


def buy_until_sold_out(sale_id: str, threads: int, buyer_prefix: str) -> dict[str, Any]:
    """Buyers (one purchase each) on `threads` threads until the sale answers SOLD_OUT."""
    from shared.flash_sales.commands import FlashOrder
    from shared.kernel.errors import DomainError, SoldOut
    from shared.kernel.idempotency import IdempotentRequest
    from shared.platform import bootstrap
    from shared.platform.observability import flush

    flash = bootstrap.flash_sales()  # what the route calls
    to = delivery()
    meter = RoundTrips()
    meter.attach()
    flash.sale(sale_id)  # settings read once per process, as a warm Lambda has them
    sold_out = threading.Event()
    next_buyer = iter(range(10**9))
    lock = threading.Lock()
    latencies: list[float] = []
    trips: list[tuple[int, int]] = []
    outcomes: Counter[str] = Counter()

    def buyer() -> None:
        while not sold_out.is_set():
            with lock:
                customer = f"{buyer_prefix}-{next(next_buyer)}"
            request = IdempotentRequest.of(f"flash:{sale_id}:{customer}", None, {"qty": 1})
            meter.start()
            started = time.perf_counter()
            try:
                flash.purchase(sale_id, customer, FlashOrder(1, to), request)
                outcome = "201"
            except SoldOut:
                outcome = "SOLD_OUT"
                sold_out.set()
            except DomainError as exc:
                outcome = exc.code
            elapsed = time.perf_counter() - started
            with lock:
                flush()  # what the route's wrapper does after each request
                outcomes[outcome] += 1
                if outcome == "201":
                    latencies.append(elapsed * 1000)
                    trips.append(meter.taken())

    started = time.perf_counter()
    workers = [threading.Thread(target=buyer) for _ in range(threads)]
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


def _process_buyers(endpoint: str, table: str, sale_id: str, threads: int, prefix: str, out: Any) -> None:
    _bind(endpoint, table, create=False)
    out.send(buy_until_sold_out(sale_id, threads, prefix))
    out.close()


def audit(sale_id: str) -> dict[str, int]:
    """Units on the shards and in live orders, oversold units and buyers over the limit."""
    from shared.data.items import OrderItem
    from shared.data.stores.flash_sales import DynamoShards
    from shared.platform import bootstrap

    found = bootstrap.flash_sales().sale(sale_id)
    held: Counter[str] = Counter()
    for order in OrderItem.scan(OrderItem.flash_sale_id == sale_id):
        if isinstance(order, OrderItem) and order.status != "CANCELLED":
            held[order.customer_id] += sum(line["qty"] for line in order.body["lines"])
    on_shards = sum(level.remaining for level in DynamoShards().levels(found))
    sold = sum(held.values())
    return {
        "units sold": sold,
        "units left on shards": on_shards,
        "oversold": max(0, sold - found.quantity),
        "limit violations": sum(1 for units in held.values() if units > found.per_user_limit),
    }


def _summary(label: str, runs: list[dict[str, Any]], baseline: float | None) -> dict[str, Any]:
    elapsed = max(run["elapsed_s"] for run in runs)
    latencies = sorted(ms for run in runs for ms in run["latencies_ms"])
    trips = [t for run in runs for t, _ in run["trips"]]
    hot = [h for run in runs for _, h in run["trips"]]
    orders = len(latencies)
    rate = orders / elapsed
    figures: dict[str, Any] = {
        f"{label}: orders/s": round(rate, 1),
        f"{label}: p50 ms": round(statistics.median(latencies), 1),
        f"{label}: p99 ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        f"{label}: DynamoDB round trips / successful order": round(sum(trips) / len(trips), 2),
        f"{label}: writes to a shard (hot item) / successful order": round(sum(hot) / len(hot), 2),
    }
    if baseline:
        figures[f"{label}: ratio to the raw decrement rate"] = f"{rate / baseline:.2f}"  # the table rounds floats to .1
    return figures


def alternating_rounds(cpu: EmulatorCpu) -> list[dict[str, Any]]:
    """ROUNDS x (BASELINE_OPS / ROUNDS raw decrements, then a sale of UNITS sold out by THREADS
    buyers in this process): wall and emulator CPU seconds of each phase."""
    ops = BASELINE_OPS // ROUNDS
    rounds = []
    for index in range(ROUNDS):
        decrement_s, decrement_cpu_s, client_decrement_s = raw_decrements(ops, cpu=cpu)
        sale_id = create_sale(UNITS, peak=4000)
        sold_from, client_from = cpu.seconds(), time.process_time()
        sale = buy_until_sold_out(sale_id, THREADS, f"t{index}")
        sold_to, client_sale_s = cpu.seconds(), time.process_time() - client_from
        rounds.append(
            {
                "decrements": ops,
                "decrement_s": decrement_s,
                "decrement_cpu_s": decrement_cpu_s,
                "sale_id": sale_id,
                "sale": sale,
                "sale_cpu_s": None if sold_from is None or sold_to is None else sold_to - sold_from,
                "client_decrement_cpu_s": client_decrement_s,
                "client_sale_cpu_s": client_sale_s,
            }
        )
    return rounds


def _total_s(seconds: Iterable[float | None]) -> float:
    """Seconds summed over the rounds; 0 where the platform has no per-process CPU time."""
    values = list(seconds)
    return 0.0 if any(v is None for v in values) else float(sum(v for v in values if v is not None))


def service_layer() -> dict[str, Any]:
    moto, endpoint = _start_moto()
    try:
        table = f"bench-flash-{uuid.uuid4().hex[:8]}"
        _bind(endpoint, table, create=True)
        cpu = EmulatorCpu(moto.pid)
        before = cpu.seconds()
        small_reads()
        read_ms = cpu.per_op_ms(before, 1000)
        rounds = alternating_rounds(cpu)
        baseline = sum(r["decrements"] for r in rounds) / sum(r["decrement_s"] for r in rounds)
        one = {
            "elapsed_s": sum(r["sale"]["elapsed_s"] for r in rounds),
            "latencies_ms": [ms for r in rounds for ms in r["sale"]["latencies_ms"]],
            "trips": [t for r in rounds for t in r["sale"]["trips"]],
        }
        decrements = sum(r["decrements"] for r in rounds)
        raw_ms = _total_s(r["decrement_cpu_s"] for r in rounds) / decrements * 1000
        order_ms = _total_s(r["sale_cpu_s"] for r in rounds) / len(one["latencies_ms"]) * 1000
        figures: dict[str, Any] = {
            f"emulator raw conditional decrements/s ({THREADS} threads, {ROUNDS} rounds)": round(baseline, 1)
        }
        figures.update(_summary(f"service, 1 process x {THREADS} threads", [one], baseline))
        figures[f"service, 1 process x {THREADS} threads: ratio, round by round"] = ", ".join(
            f"{len(r['sale']['latencies_ms']) / r['sale']['elapsed_s'] / (r['decrements'] / r['decrement_s']):.2f}"
            for r in rounds
        )
        audited: Counter[str] = Counter()
        for r in rounds:
            audited.update(audit(r["sale_id"]))
        figures.update({f"service, 1 process: {k}": v for k, v in audited.items()})
        if raw_ms and order_ms:
            figures["emulator CPU ms: a small GetItem (any request's fixed cost)"] = f"{read_ms:.2f}"
            figures["emulator CPU ms: a raw decrement"] = f"{raw_ms:.2f}"
            figures["emulator CPU ms: a flash order (1 process runs, incl. their sold-out answers)"] = f"{order_ms:.2f}"
            figures["emulator CPU ratio (raw decrement / flash order): the ceiling of the rate ratio"] = (
                f"{raw_ms / order_ms:.2f}"
            )
            # A flash order's client work is nearer its emulator work than a decrement's is, so it
            # has less headroom when the machine takes time from this process (docs/benchmarks.md,
            # "The flash-order rate ratio in alternating rounds").
            figures[f"bench process CPU ms ({THREADS} buyer threads): a raw decrement / a flash order"] = (
                f"{sum(r['client_decrement_cpu_s'] for r in rounds) / decrements * 1000:.2f} / "
                f"{sum(r['client_sale_cpu_s'] for r in rounds) / len(one['latencies_ms']) * 1000:.2f}"
            )
            figures["emulator CPU ratio, round by round"] = ", ".join(
                f"{r['decrement_cpu_s'] / r['decrements'] / (r['sale_cpu_s'] / len(r['sale']['latencies_ms'])):.2f}"
                for r in rounds
            )

        # The contended path (what a process switches to after a TransactionConflict on a shard, as
        # at a real peak; the emulator never conflicts, so it is forced here): decrement, then order.
        from shared.platform import bootstrap

        sale_id = create_sale(UNITS, peak=4000)
        contention = bootstrap.flash_sales().contention
        kept = contention.lifetime_s
        contention.lifetime_s = 3600.0  # this process's mark outlasts the run
        contention.note_conflict(sale_id)
        try:
            before = cpu.seconds()
            contended = buy_until_sold_out(sale_id, THREADS, "d")
            contended_ms = cpu.per_op_ms(before, len(contended["latencies_ms"]))
        finally:
            contention.clear(sale_id)
            contention.lifetime_s = kept
        label = f"service, contended path (decrement first), 1 process x {THREADS} threads"
        figures.update(_summary(label, [contended], baseline))
        figures.update({f"service, contended path: {k}": v for k, v in audit(sale_id).items()})
        if contended_ms:
            figures["emulator CPU ms: a flash order on the contended path"] = f"{contended_ms:.2f}"

        sale_id = create_sale(UNITS, peak=4000)
        context = multiprocessing.get_context("spawn")
        pipes, children = [], []
        for index in range(PROCESSES):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(
                target=_process_buyers,
                args=(endpoint, table, sale_id, THREADS // PROCESSES, f"p{index}", send),
            )
            child.start()
            pipes.append(receive)
            children.append(child)
        runs = [pipe.recv() for pipe in pipes]
        for child in children:
            child.join(timeout=60)
        label = f"service, {PROCESSES} processes x {THREADS // PROCESSES} threads"
        figures.update(_summary(label, runs, baseline))
        figures.update({f"service, {PROCESSES} processes: {k}": v for k, v in audit(sale_id).items()})
        figures.update(write_units())
        return figures
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def write_units() -> dict[str, Any]:
    """METERED purchases on each path, one at a time, with the write-unit meter on (its read-backs
    would slow the timed runs above): items written, write units, and the projection."""
    from bench import _write_meter
    from shared.flash_sales.commands import FlashOrder
    from shared.kernel.idempotency import IdempotentRequest
    from shared.platform import bootstrap

    flash, to = bootstrap.flash_sales(), delivery()
    meter = _write_meter.WriteMeter.for_template()
    figures: dict[str, Any] = {}
    for path, contended in (("uncontended", False), ("contended", True)):
        sale_id = create_sale(METERED * 2, peak=4000)
        if contended:
            kept = flash.contention.lifetime_s
            flash.contention.lifetime_s = 3600.0
            flash.contention.note_conflict(sale_id)
        taken = []
        try:
            with meter.attached():
                for n in range(METERED):
                    customer = f"w{path[0]}-{n}"
                    request = IdempotentRequest.of(f"flash:{sale_id}:{customer}", None, {"qty": 1})
                    meter.start()
                    flash.purchase(sale_id, customer, FlashOrder(1, to), request)
                    taken.append(meter.taken())
        finally:
            if contended:
                flash.contention.clear(sale_id)
                flash.contention.lifetime_s = kept
        label = f"flash order, {path} path (write units)"
        figures.update(_write_meter.figures(label, taken))
        figures.update(_write_meter.projection(f"flash order, {path}", *_write_meter.per_op(taken)))
    figures["write units: largest item written, bytes, by entity"] = _write_meter.sizes(meter)
    return figures


# -- 3. over HTTP -----------------------------------------------------------------------------------
def _start_stack() -> tuple[subprocess.Popen, int, Path]:
    """`python -m infra.local.dev` on free ports, in a process group of its own."""
    api_port, moto_port = _free_port(), _free_port()
    log = Path(tempfile.mkdtemp()) / "flash-bench-stack.log"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "USER")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "infra.local.dev", "--api-port", str(api_port), "--moto-port", str(moto_port)]
    # Nothing is paid here: no local WeChat Pay (it would take port 5300 beside a `make dev`)
    argv += ["--payment-provider", "hmac"]
    with log.open("wb") as out:
        stack = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while "\nready in " not in log.read_text(errors="replace"):
        if stack.poll() is not None or time.monotonic() > deadline:
            _stop_stack(stack)
            raise RuntimeError(f"the local stack did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return stack, api_port, log


def _stop_stack(stack: subprocess.Popen) -> None:
    if stack.poll() is None:
        stack.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            stack.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(stack.pid, signal.SIGKILL)
    stack.wait(timeout=5)


def _http_sale(api: str, admin: dict[str, str]) -> str:
    import requests

    stocked = requests.put(  # a sale holds its units out of WH's stock (28f996d); the seed has fewer
        f"{api}/admin/stock/TEA-001", headers=admin, json={"location": "WH", "on_hand": HTTP_UNITS * 2}, timeout=30
    )
    stocked.raise_for_status()
    now = time.time()
    created = requests.post(
        f"{api}/admin/flash-sales",
        headers=admin,
        json={
            "sku": "TEA-001",
            "price_fen": 9900,
            "quantity": HTTP_UNITS,
            "per_user_limit": 1,
            "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5)),
            "ends_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
            "expected_peak_per_s": 4000,
        },
        timeout=30,
    )
    created.raise_for_status()
    return str(created.json()["flash_sale_id"])


def _http_buyers(api: str, sale_id: str, tokens: list[str]) -> tuple[list[float], Counter[str], float]:
    """Buyers on HTTP_THREADS threads until SOLD_OUT; a dropped connection is tried again."""
    import requests

    sold_out = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    pending = iter(tokens)

    def buyer() -> None:
        session = requests.Session()
        while not sold_out.is_set():
            with lock:
                token = next(pending, None)
            if token is None:
                return
            started = time.perf_counter()
            try:
                answer = session.post(
                    f"{api}/flash-sales/{sale_id}/orders",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"qty": 1, "fulfilment": HTTP_DELIVERY},
                    timeout=60,
                )
            except requests.ConnectionError:
                session = requests.Session()
                with lock:
                    outcomes["connection dropped"] += 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            code = str(answer.status_code) if answer.status_code < 400 else answer.json().get("code", "?")
            with lock:
                outcomes[code] += 1
                if answer.status_code == 201:
                    latencies.append(elapsed)
            if code == "SOLD_OUT":
                sold_out.set()

    started = time.perf_counter()
    workers = [threading.Thread(target=buyer) for _ in range(HTTP_THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(latencies), outcomes, time.perf_counter() - started


def over_http() -> dict[str, Any]:
    import requests

    from infra.local.stack import stage_environment
    from shared.web.auth import Role, issue_token

    stack, api_port, _ = _start_stack()
    try:
        secret = stage_environment("local")["JWT_SECRET"]
        api = f"http://127.0.0.1:{api_port}"
        sale_id = _http_sale(api, {"Authorization": f"Bearer {issue_token(secret, 'admin', Role.MERCHANT_ADMIN)}"})
        tokens = [issue_token(secret, f"h-{i}", Role.CUSTOMER) for i in range(HTTP_UNITS * 2)]
        latencies, outcomes, elapsed = _http_buyers(api, sale_id, tokens)
        remaining = requests.get(f"{api}/flash-sales/{sale_id}", timeout=30).json()["remaining"]
    finally:
        _stop_stack(stack)
    label = f"HTTP (chalice local), {HTTP_THREADS} threads"
    return {
        f"{label}: orders/s": round(len(latencies) / elapsed, 1),
        f"{label}: p50 ms": round(statistics.median(latencies), 1),
        f"{label}: p99 ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        f"{label}: units sold / remaining": f"{outcomes['201']} / {remaining}",
        f"{label}: oversold": max(0, outcomes["201"] - HTTP_UNITS),
        f"{label}: answers": ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
    }


def run() -> dict[str, object]:
    figures = service_layer()
    figures.update(over_http())
    return figures


@contextlib.contextmanager
def own_emulator(table_prefix: str) -> Iterator[None]:
    """A serialised moto server in its own process, a fresh table on it, the service bound to it."""
    moto, endpoint = _start_moto()
    try:
        _bind(endpoint, f"{table_prefix}-{uuid.uuid4().hex[:8]}", create=True)
        yield
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def metered_only() -> dict[str, Any]:
    """The write-unit part alone (`python -m bench.flash_sales write_units`), on its own emulator."""
    with own_emulator("bench-flash"):
        return write_units()


if __name__ == "__main__":  # the metered part alone: python -m bench.flash_sales write_units
    if sys.argv[1:] != ["write_units"]:
        sys.exit("usage: python -m bench.flash_sales write_units  (the whole section: python -m bench flash_sales)")
    for metric, value in metered_only().items():
        print(f"{metric}: {value}")
