"""Settlement: runs over 50,000 and 5,000 SETTLEABLE entries: entries/s, peak memory, round trips, 1/2/4 workers.

Everything runs against the serialised moto server in its own process (as `make dev` runs it), on
127.0.0.1 (the emulator helpers are bench/flash_sales.py's). Each run has a table of its own:

1. seeding (not measured): SETTLEABLE entries written straight into the table through the data
   layer's own item (`shared.data.stores.commission.entry_item`) in BatchWriteItem calls of 25;
   orders of one line crediting a dealer, a store and a guide, every tenth order with a clawback
   of its guide's earning (a negative entry carried into the statement), for PAYEES payees;
2. the run, as production runs it: `SettlementRuns.start` (what `POST /finance/settlements`
   calls) writes the run and one SettlementShardDue message per entry shard; worker threads take
   the messages and hand each, as a one-record SQS event, to `shared.messaging.consumers.consume`
   with `SettlementWorker` (what the settlement Lambda calls: the consumer's mark, then
   `settle_shard`). The only stand-in is the queue: the store hands every message it commits
   (the run's first ones, a shard's continuation) to an in-process queue, as the outbox relay
   does through the stream and SQS;
3. the checks (fail loudly): the run is DONE with processed = total = the entries seeded, every
   payee's statement row (gross, clawbacks, net, entries) is the sum of its seeded entries, each
   payee's settled total moved by exactly its net, and no entry is left SETTLEABLE.

Figures: entries/s for both sizes and their ratio (cost linear: at least 0.8), the peak memory of
the run (the settling process is a fresh child, as a Lambda container is: its peak RSS, ru_maxrss,
above what it held when the run began, so the seeding's memory is not in it and nothing traces
allocations), DynamoDB round trips per entry (botocore `before-send` on the shared client, by
operation), the emulator's and the settling process's CPU per entry, and 1 / 2 / 4 worker threads
over the same size. The emulator runs one request at a time, so more workers only overlap the
settling process's work with the emulator's: the speed-up is bounded by (bench CPU + emulator CPU)
/ emulator CPU, printed beside it. docs/benchmarks.md ("Settlement") has the figures and the
projection for AWS. `python -m bench.settlement sizes` (or `workers`, `write_units`) runs one part alone; `write_units`
settles a run of METERED_ENTRIES with the write-unit meter (bench/_write_meter.py) on.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import random
import resource
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import _write_meter as write_meter
from bench._write_meter import WriteMeter
from bench.flash_sales import REGION, EmulatorCpu, _bind, _start_moto

SIZES = (5_000, 50_000)
PAYEES = 500  # 10 dealers, 90 stores, 400 guides
DEALERS, STORES = 10, 90
WORKERS = (1, 2, 4)
SPEEDUP_ENTRIES = 2_500  # each worker count settles a run of this many
DAY_MS = 86_400_000
CHECK_READ_TIMEOUT_S = 300
METERED_ENTRIES = 1_000  # a run settled with the write-unit meter on (bench/_write_meter.py)
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:SettlementQueue"


# -- seeding ------------------------------------------------------------------------------------
@dataclass
class Seeded:
    """What was written, per payee: the statement each must get."""

    entries: int = 0
    net_fen: int = 0
    rows: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))

    def add(self, payee: str, amount_fen: int) -> None:
        row = self.rows[payee]
        row[0 if amount_fen >= 0 else 1] += abs(amount_fen)
        row[2] += 1
        self.entries += 1
        self.net_fen += amount_fen


def entries_for(label: str, count: int, period_end_ms: int, seeded: Seeded) -> Iterator[Any]:
    """`count` SETTLEABLE entries due before the period end, over PAYEES payees (ids unique to
    this run): one earning per role per order, a clawback on every tenth order's guide."""
    from shared.commission.ledger_model import Entry, EntryStatus
    from shared.kernel.credited import PayeeRole

    rng = random.Random(f"{label}-{count}")
    guides = PAYEES - DEALERS - STORES
    written = 0
    order = 0
    while written < count:
        order_id = f"{label}-o{order:07d}"
        guide = rng.randrange(guides)
        store = guide % STORES
        dealer = store % DEALERS
        due = period_end_ms - rng.randint(1, 30) * DAY_MS
        earned: list[tuple[PayeeRole, str, int, str | None]] = [
            (PayeeRole.DEALER, f"{label}-D{dealer:03d}", rng.randint(100, 5_000), None),
            (PayeeRole.STORE, f"{label}-S{store:03d}", rng.randint(100, 8_000), None),
            (PayeeRole.GUIDE, f"{label}-G{guide:03d}", rng.randint(100, 3_000), None),
        ]
        if order % 10 == 9:
            earned.append((PayeeRole.GUIDE, earned[2][1], -rng.randint(1, earned[2][2]), f"r-{order}"))
        for role, payee_id, amount, refund in earned:
            if written == count:
                break
            entry_id = f"R#{refund}#SKU-1#{role.value}" if refund else f"P#SKU-1#{role.value}"
            entry = Entry(
                entry_id=entry_id,
                order_id=order_id,
                role=role,
                payee_id=payee_id,
                sku="SKU-1",
                amount_fen=amount,
                status=EntryStatus.SETTLEABLE,
                created_at_ms=due - 7 * DAY_MS,
                due_at_ms=due,
                rules_version=1,
                refund_id=refund,
            )
            seeded.add(entry.payee, amount)
            written += 1
            yield entry
        order += 1


def seed(label: str, count: int, period_end_ms: int) -> Seeded:
    from shared.data.items.commission import LedgerEntryItem
    from shared.data.stores.commission import entry_item

    seeded = Seeded()
    with LedgerEntryItem.batch_write() as batch:  # BatchWriteItem of 25, unprocessed items retried
        for entry in entries_for(label, count, period_end_ms, seeded):
            batch.save(entry_item(entry))
    return seeded


# -- the run ------------------------------------------------------------------------------------
class RoundTrips:
    """DynamoDB HTTP attempts of every thread, by operation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.on = False

    def attach(self) -> None:
        from shared.data.connection import events

        events().register("before-send.dynamodb.*", self._sent, unique_id=f"settlement-bench-{id(self)}")

    def _sent(self, event_name: str, **_: Any) -> None:
        if self.on:
            with self.lock:
                self.calls[event_name.rsplit(".", 1)[-1]] += 1


def _queued_store(messages: queue.Queue[Any]) -> Any:
    from shared.data.stores.settlement import DynamoSettlements

    class QueuedSettlements(DynamoSettlements):
        """The DynamoDB store; each message it commits is also handed to the bench's queue, which
        is what the outbox relay does (stream -> SettlementQueue) in production."""

        def start(self, run: Any, sent: Sequence[Any]) -> bool:
            started = super().start(run, sent)
            if started:
                for message in sent:
                    messages.put(message)
            return started

        def settle(self, run: Any, shard: int, entries: Sequence[Any], then: Any) -> None:
            super().settle(run, shard, entries, then)
            if then is not None:
                messages.put(then)

    return QueuedSettlements()


def _record(event: Any) -> dict[str, Any]:
    """The message as Lambda delivers it from SQS (infra/local/runner.as_lambda_sqs_record's shape)."""
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": str(uuid.uuid4()),
        "body": json.dumps(event.to_message(), ensure_ascii=False),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


@dataclass
class Settled:
    run_id: str
    elapsed_s: float
    messages: int
    redelivered: int
    peak_growth_kib: int  # the settling process's peak RSS above what it had when the run began
    calls: Counter[str]
    bench_cpu_s: float
    emulator_cpu_s: float | None
    writes: Any = None  # a _write_meter.Tally of the whole run, when metered
    sizes: str = ""


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def settle(period_end_ms: int, workers: int, cpu: EmulatorCpu, metered: bool = False) -> Settled:
    from shared.commission.ledger_model import EntryStatus
    from shared.kernel.clock import SYSTEM
    from shared.messaging.consumers import consume
    from shared.platform import bootstrap
    from shared.settlement.runs import SettlementRuns, SettlementWorker

    messages: queue.Queue[Any] = queue.Queue()
    store, ledger = _queued_store(messages), bootstrap.commission_ledger_store()
    runs = SettlementRuns(store, ledger, bootstrap.org_admin().payee_details, SYSTEM)
    worker, runtime = SettlementWorker(runs), bootstrap.consumer_runtime()
    delivered = Counter[str]()
    errors: list[BaseException] = []

    def work() -> None:
        while (message := messages.get()) is not None:
            try:
                answer = consume({"Records": [_record(message)]}, worker, runtime)
                with trips.lock:
                    delivered["messages"] += 1
                if answer.get("batchItemFailures"):  # SQS would deliver it again: so does this queue
                    with trips.lock:
                        delivered["redelivered"] += 1
                    messages.put(message)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
            finally:
                messages.task_done()

    trips = RoundTrips()
    trips.attach()
    # What the first message would import and connect, before the baseline: an empty batch, a
    # run that does not exist, a queue read of nothing.
    consume({"Records": []}, worker, runtime)
    store.get("run-19700101T000000Z")
    ledger.due(EntryStatus.SETTLEABLE, 0, 0, 1)
    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    rss_before = _peak_rss_kib()
    writes = WriteMeter.for_template(per_thread=False)
    trips.on = True
    cpu_before, bench_before = cpu.seconds(), time.process_time()
    started = time.perf_counter()
    with writes.attached() if metered else contextlib.nullcontext():
        writes.start()
        run = runs.start(period_end_ms)
        messages.join()  # every message handled, the continuations each wrote included
    elapsed = time.perf_counter() - started
    trips.on = False
    cpu_after, bench_after = cpu.seconds(), time.process_time()
    growth = _peak_rss_kib() - rss_before
    for _ in threads:
        messages.put(None)
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a worker failed: {errors[0]!r}") from errors[0]
    emulator = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Settled(
        run.run_id,
        elapsed,
        delivered["messages"],
        delivered["redelivered"],
        growth,
        Counter(trips.calls),
        bench_after - bench_before,
        emulator,
        writes.taken() if metered else None,
        write_meter.sizes(writes),
    )


def check(settled: Settled, seeded: Seeded) -> None:
    """The statements' totals are the entries taken, per payee and in all; nothing left behind."""
    from shared.commission.ledger_model import ENTRY_SHARDS, EntryStatus
    from shared.data.stores.settlement import DynamoSettlements
    from shared.platform import bootstrap

    store, ledger = DynamoSettlements(), bootstrap.commission_ledger_store()
    view = bootstrap.settlement_runs().view(settled.run_id)
    wanted = ("DONE", seeded.entries, seeded.entries, len(seeded.rows), seeded.net_fen)
    found = (view["status"], view["processed"], view["total"], view["payees"], view["total_fen"])
    if found != wanted:
        raise RuntimeError(f"run {settled.run_id}: status, processed, total, payees, total_fen {found} != {wanted}")
    run = store.get(settled.run_id)
    if run is None:
        raise RuntimeError(f"run {settled.run_id} not found")
    rows = {row.payee: [row.gross_fen, row.clawbacks_fen, row.entries] for row in store.statement(run)}
    if rows != dict(seeded.rows):
        wrong = sorted(p for p in set(rows) | set(seeded.rows) if rows.get(p) != seeded.rows.get(p))
        raise RuntimeError(
            f"run {settled.run_id}: {len(wrong)} statement rows differ from the entries, e.g. {wrong[:3]}"
        )
    for payee, (gross, clawbacks, _) in seeded.rows.items():
        settled_fen = ledger.totals(payee)[EntryStatus.SETTLED]
        if settled_fen != gross - clawbacks:
            raise RuntimeError(f"{payee}: settled total {settled_fen} != statement net {gross - clawbacks}")
    far = 2**41  # any due time
    left = sum(store.count_due(shard, far) for shard in range(ENTRY_SHARDS))
    if left:
        raise RuntimeError(f"run {settled.run_id}: {left} entries still SETTLEABLE")


def _settle_in_child(
    endpoint: str, table: str, period_end_ms: int, workers: int, moto_pid: int, metered: bool = False
) -> Settled:
    """The run in a fresh process (as a Lambda container is): its peak RSS is the run's alone,
    not the seeding's, and nothing traces its allocations (tracemalloc tripled this side's CPU)."""
    _bind(endpoint, table, create=False)
    return settle(period_end_ms, workers, EmulatorCpu(moto_pid), metered)


def one_run(endpoint: str, label: str, count: int, workers: int, moto_pid: int, metered: bool = False) -> Settled:
    from shared.data.table import BaseItem
    from shared.kernel.clock import now_ms

    # This process seeds and checks, the child settles with production's timeouts. The checks read
    # a run's whole statement (a row per payee in each of the 16 shards' partitions: 8,000 items),
    # which the loaded emulator takes longer than production's 5 s to serialise.
    BaseItem.Meta.read_timeout_seconds = CHECK_READ_TIMEOUT_S
    table = f"bench-settlement-{label}-{uuid.uuid4().hex[:6]}"
    _bind(endpoint, table, create=True)
    period_end_ms = (now_ms() - 60_000) // 1000 * 1000
    started = time.perf_counter()
    seeded = seed(label, count, period_end_ms)
    print(
        f"   seeded {count:,} entries for {len(seeded.rows)} payees in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        settled = pool.apply(_settle_in_child, (endpoint, table, period_end_ms, workers, moto_pid, metered))
    check(settled, seeded)
    print(
        f"   {label}: {count:,} entries, {workers} worker(s): {settled.elapsed_s:.1f} s, "
        f"{count / settled.elapsed_s:,.0f} entries/s, {settled.messages} messages, "
        f"peak RSS +{settled.peak_growth_kib:,} KiB; checked",
        flush=True,
    )
    return settled


def _per_entry_ms(seconds: float | None, count: int) -> str:
    return "n/a" if seconds is None else f"{seconds / count * 1000:.3f}"


def workers(endpoint: str, moto_pid: int) -> dict[str, Any]:
    """The same size settled by 1, 2 and 4 worker threads."""
    figures: dict[str, Any] = {}
    elapsed: dict[int, float] = {}
    for workers in WORKERS:
        settled = one_run(endpoint, f"w{workers}", SPEEDUP_ENTRIES, workers, moto_pid)
        elapsed[workers] = settled.elapsed_s
        label = f"{SPEEDUP_ENTRIES:,} entries, {workers} worker thread(s)"
        figures[f"{label}: entries/s"] = round(SPEEDUP_ENTRIES / settled.elapsed_s, 1)
        figures[f"{label}: speed-up over 1"] = f"{elapsed[1] / settled.elapsed_s:.2f}"
        figures[f"{label}: peak RSS growth, KiB"] = settled.peak_growth_kib
        if workers == 1 and settled.emulator_cpu_s:
            bound = (settled.bench_cpu_s + settled.emulator_cpu_s) / settled.emulator_cpu_s
            figures[f"{label}: emulator CPU ms / entry"] = _per_entry_ms(settled.emulator_cpu_s, SPEEDUP_ENTRIES)
            figures[f"{label}: bench CPU ms / entry"] = _per_entry_ms(settled.bench_cpu_s, SPEEDUP_ENTRIES)
            figures["speed-up bound on the serialised emulator: (bench + emulator CPU) / emulator CPU"] = f"{bound:.2f}"
        if settled.redelivered:
            figures[f"{label}: messages delivered again"] = settled.redelivered
    print(figures, flush=True)
    return figures


def sizes(endpoint: str, moto_pid: int) -> dict[str, Any]:
    """A run over each of SIZES with one worker: the rate, memory and round trips per entry."""
    figures: dict[str, Any] = {}
    rates: dict[int, float] = {}
    for count in SIZES:
        settled = one_run(endpoint, f"n{count}", count, 1, moto_pid)
        rates[count] = count / settled.elapsed_s
        label = f"{count:,} entries, 1 worker"
        trips = sum(settled.calls.values())
        figures[f"{label}: entries/s"] = round(rates[count], 1)
        figures[f"{label}: run s"] = round(settled.elapsed_s, 1)
        figures[f"{label}: peak RSS growth of the settling process, KiB"] = settled.peak_growth_kib
        figures[f"{label}: DynamoDB round trips / entry"] = f"{trips / count:.4f}"
        figures[f"{label}: round trips"] = ", ".join(f"{op} {n}" for op, n in settled.calls.most_common())
        figures[f"{label}: messages (SettlementShardDue)"] = settled.messages
        figures[f"{label}: emulator CPU ms / entry"] = _per_entry_ms(settled.emulator_cpu_s, count)
        figures[f"{label}: bench CPU ms / entry"] = _per_entry_ms(settled.bench_cpu_s, count)
        print(figures, flush=True)
    small, large = SIZES
    figures[f"rate ratio, {large:,} / {small:,} entries (target >= 0.8)"] = f"{rates[large] / rates[small]:.2f}"
    return figures


def write_units(endpoint: str, moto_pid: int) -> dict[str, Any]:
    """A run of METERED_ENTRIES with the write-unit meter on in the settling process (its read-backs
    would slow the timed runs): items written and write units per entry settled."""
    settled = one_run(endpoint, "wu", METERED_ENTRIES, 1, moto_pid, metered=True)
    label = f"settlement of {METERED_ENTRIES:,} entries (write units), per entry"
    figures = write_meter.figures(label, [settled.writes], ops=METERED_ENTRIES)
    figures["settlement: largest item written, bytes, by entity"] = settled.sizes
    print(figures, flush=True)
    return figures


PARTS = {"workers": workers, "sizes": sizes, "write_units": write_units}


def run(parts: tuple[str, ...] = ("workers", "sizes", "write_units")) -> dict[str, object]:
    moto, endpoint = _start_moto()
    try:
        figures: dict[str, Any] = {}
        for part in parts:
            figures.update(PARTS[part](endpoint, moto.pid))
        return figures
    finally:
        moto.terminate()
        with contextlib.suppress(Exception):
            moto.wait(timeout=10)


if __name__ == "__main__":  # one part alone: python -m bench.settlement sizes|workers|write_units
    import sys

    print(run(tuple(sys.argv[1:]) or tuple(PARTS)))
