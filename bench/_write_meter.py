"""Write units of what the code writes, measured on the shared DynamoDB client (bench only).

`WriteMeter` hooks three botocore events of the client `shared.data.connection` shares:
- `provide-client-params.dynamodb.*`: the write parts as the code built them (PutItem, UpdateItem,
  DeleteItem, BatchWriteItem, each Put / Update / Delete of a TransactWriteItems; a ConditionCheck
  part is counted apart, it costs read units);
- `before-call.dynamodb.*`: each written item's image before, read through a second client of its
  own (consistent BatchGetItem, not counted by the other meters of the bench);
- `after-call.dynamodb.*` (successful calls only): each item's image after. A Put's is its `Item`,
  a Delete's is nothing, an Update's is read back from the table through that second client (the
  product's own requests are left as they are: no ReturnValues added).

`bench/_write_units.py` prices each write from those images and the table's indexes, read from
the table definition (`infra/template.yaml` via `infra.local.resources.table_definition`). The
extra reads make a metered request slower, so the sections run a separate, sequential sample
with the meter on and keep their timed runs unmetered; sequential, so no other writer changes an
item between its reads and the write.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench._write_units import Cost, Image, Table, item_size, write_cost

TABLE_QUOTA_WCU = 40_000  # default on-demand write request units per table (and per GSI), per second
SALE_PEAK_ORDERS_S = 20_000


@dataclass
class Tally:
    """What one operation wrote: its cost, the writes by kind and entity ("Put Order"), and the
    ConditionCheck parts beside them."""

    cost: Cost = field(default_factory=Cost)
    writes: Counter[str] = field(default_factory=Counter)
    checks: int = 0


@dataclass
class Part:
    kind: str  # Put, Update, Delete
    table: str
    key: dict[str, Any]
    item: dict[str, Any] | None  # a Put's item
    transactional: bool
    before: Image | None = None


def _key_id(table: str, key: dict[str, Any]) -> str:
    return table + json.dumps(key, sort_keys=True, default=repr)


class WriteMeter:
    """Items written and write units, per operation on this thread (`start`, then `taken`)."""

    def __init__(self, table: Table, per_thread: bool = True) -> None:
        """per_thread False: one tally for every thread (a run spread over workers)."""
        self.table = table
        self.per_thread = per_thread
        self._lock = threading.Lock()
        self._common = Tally()
        self._local = threading.local()
        self._reader: Any = None
        self._events: Any = None
        self._uid = f"write-meter-{id(self)}"
        self.sizes: dict[str, int] = {}  # entity -> the largest image written, bytes (all threads)

    @classmethod
    def for_template(cls, per_thread: bool = True) -> WriteMeter:
        """For the table `infra/template.yaml` defines (every bench table is made from it)."""
        from infra.local.resources import table_definition

        return cls(Table.from_definition(table_definition("any")), per_thread)

    # -- the per-operation tally ------------------------------------------------------------------
    def start(self) -> None:
        if self.per_thread:
            self._local.tally = Tally()
        else:
            self._common = Tally()

    def taken(self) -> Tally:
        """The writes since `start` (on this thread, unless the meter is for all of them)."""
        if not self.per_thread:
            return self._common
        if not hasattr(self._local, "tally"):
            self.start()
        return self._local.tally  # type: ignore[no-any-return]

    # -- the hooks ---------------------------------------------------------------------------------
    @contextmanager
    def attached(self) -> Iterator[WriteMeter]:
        """Meter the shared client's writes inside the block."""
        import boto3

        from shared.data.connection import connection

        client = connection().client
        self._reader = boto3.session.Session(region_name=client.meta.region_name).client(
            "dynamodb", endpoint_url=client.meta.endpoint_url
        )
        self._events = client.meta.events
        hooks = (
            ("provide-client-params.dynamodb.*", self._parts),
            ("before-call.dynamodb.*", self._before),
            ("after-call.dynamodb.*", self._after),
        )
        for event, handler in hooks:
            self._events.register(event, handler, unique_id=f"{self._uid}-{event}")
        try:
            yield self
        finally:
            for event, handler in hooks:
                self._events.unregister(event, handler, unique_id=f"{self._uid}-{event}")

    def _parts(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        parts, checks = self._parts_of(model.name, params)
        if parts or checks:
            context[self._uid] = (parts, checks)

    def _parts_of(self, operation: str, params: dict[str, Any]) -> tuple[list[Part], int]:
        if operation == "PutItem":
            return [self._put(params["TableName"], params["Item"], False)], 0
        if operation in ("UpdateItem", "DeleteItem"):
            return [Part(operation.removesuffix("Item"), params["TableName"], params["Key"], None, False)], 0
        if operation == "TransactWriteItems":
            parts, checks = [], 0
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                if kind == "ConditionCheck":
                    checks += 1
                elif kind == "Put":
                    parts.append(self._put(body["TableName"], body["Item"], True))
                else:
                    parts.append(Part(kind, body["TableName"], body["Key"], None, True))
            return parts, checks
        if operation == "BatchWriteItem":
            return [self._batched(table, r) for table, rs in params["RequestItems"].items() for r in rs], 0
        return [], 0

    def _put(self, table: str, item: dict[str, Any], transactional: bool) -> Part:
        return Part("Put", table, self.table.key_of(item), item, transactional)

    def _batched(self, table: str, request: dict[str, Any]) -> Part:
        if "PutRequest" in request:
            return self._put(table, request["PutRequest"]["Item"], False)
        return Part("Delete", table, request["DeleteRequest"]["Key"], None, False)

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        if self._uid not in context:
            return
        parts, _checks = context[self._uid]
        images = self._read((p.table, p.key) for p in parts)
        for part in parts:
            part.before = images.get(_key_id(part.table, part.key))

    def _after(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self._uid not in context or http_response.status_code >= 300:
            return  # failed writes are not counted (DynamoDB charges a refused condition too)
        parts, checks = context.pop(self._uid)
        unprocessed = {  # a BatchWriteItem's writes DynamoDB left for the caller to send again
            _key_id(p.table, p.key)
            for table, requests in (parsed.get("UnprocessedItems") or {}).items()
            for p in (self._batched(table, r) for r in requests)
        }
        parts = [p for p in parts if _key_id(p.table, p.key) not in unprocessed]
        updated = self._read((p.table, p.key) for p in parts if p.kind == "Update")
        with self._lock:
            self._tally(self.taken(), parts, checks, updated)

    def _tally(self, tally: Tally, parts: list[Part], checks: int, updated: dict[str, Image]) -> None:
        tally.checks += checks
        for part in parts:
            after: Image | None = part.item if part.kind == "Put" else None
            if part.kind == "Update":
                after = updated.get(_key_id(part.table, part.key))
            tally.cost = tally.cost + write_cost(self.table, part.kind, part.before, after, part.transactional)
            entity = (after or part.before or {}).get("entity", {}).get("S", "?")
            tally.writes[f"{part.kind} {entity}"] += 1
            size = max(item_size(part.before), item_size(after))
            self.sizes[entity] = max(self.sizes.get(entity, 0), size)

    def _read(self, keys: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Image]:
        wanted: dict[str, tuple[str, dict[str, Any]]] = {}
        for table, key in keys:
            wanted.setdefault(_key_id(table, key), (table, key))
        found: dict[str, Image] = {}
        pending = list(wanted.values())
        while pending:
            batch, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {}
            for table, key in batch:
                request.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
            while request:
                answer = self._reader.batch_get_item(RequestItems=request)
                for table, items in answer.get("Responses", {}).items():
                    for item in items:
                        found[_key_id(table, self.table.key_of(item))] = item
                request = answer.get("UnprocessedKeys") or {}
        return found


# -- figures ---------------------------------------------------------------------------------------
def figures(label: str, taken: list[Tally], ops: int | None = None) -> dict[str, Any]:
    """Per operation, averaged over the sample: items written, write units (table, indexes), what was
    written. `ops`: how many operations the tallies hold (default: one tally an operation)."""
    n = ops or len(taken)
    total = Cost()
    writes: Counter[str] = Counter()
    checks = 0
    for tally in taken:
        total = total + tally.cost
        writes.update(tally.writes)
        checks += tally.checks
    out: dict[str, Any] = {
        f"{label}: items written / op (metered sample of {n})": round(total.items / n, 2),
        f"{label}: table WCU / op (standard, 1 KB units, x2 in a transaction)": round(total.table_wcu / n, 2),
        f"{label}: index writes / op": round(total.index_writes / n, 2),
        f"{label}: index WCU / op": ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(total.by_index.items())) or "0",
        f"{label}: WCU / op, table + indexes": round(total.wcu / n, 2),
        f"{label}: writes / op": ", ".join(f"{k} {v / n:g}" for k, v in writes.most_common()),
    }
    if checks:
        out[f"{label}: condition checks / op (read units, not counted)"] = round(checks / n, 2)
    return out


def projection(label: str, table_wcu_per_order: float, index_wcu_per_order: dict[str, float]) -> dict[str, Any]:
    """Orders/s a 40,000-WCU table (and each GSI, which has a quota of its own) carries, and what a
    20,000 orders/s sale needs."""
    busiest = max(index_wcu_per_order.values(), default=0.0)
    out: dict[str, Any] = {
        f"projection, {label}: WCU / order on the table": round(table_wcu_per_order, 2),
        f"projection, {label}: orders/s per {TABLE_QUOTA_WCU:,}-WCU table": round(
            TABLE_QUOTA_WCU / table_wcu_per_order
        ),
        f"projection, {label}: table WCU/s for {SALE_PEAK_ORDERS_S:,} orders/s": round(
            SALE_PEAK_ORDERS_S * table_wcu_per_order
        ),
    }
    if busiest:
        name = max(index_wcu_per_order, key=lambda k: index_wcu_per_order[k])
        out[f"projection, {label}: busiest index ({name}) WCU/s for {SALE_PEAK_ORDERS_S:,} orders/s"] = round(
            SALE_PEAK_ORDERS_S * busiest
        )
    return out


def per_op(taken: list[Tally], ops: int | None = None) -> tuple[float, dict[str, float]]:
    """Mean table WCU and index WCU by index, per operation."""
    n = ops or len(taken)
    total = Cost()
    for tally in taken:
        total = total + tally.cost
    return total.table_wcu / n, {k: v / n for k, v in total.by_index.items()}


def sizes(meter: WriteMeter) -> str:
    """The largest image of each entity the meter saw, in bytes (what crosses a 1 KB unit)."""
    return ", ".join(f"{entity} {size:,}" for entity, size in sorted(meter.sizes.items(), key=lambda kv: -kv[1]))
