"""The fault harness: makes AWS calls fail the way real DynamoDB (and SQS) fail, at a set rate.

moto never throttles, never raises a transaction conflict and never loses a response
(DESIGN.md, "Local runtime"), so code that must survive those is tested by injecting them here:

    from infra.local.faults import FaultInjector, Kind

    faults = FaultInjector(rate=0.1, seed=7)                  # every kind, every operation
    with faults.attached():                                    # the ONE shared DynamoDB client
        ...                                                    # (shared.data.connection.events())
    print(faults.report())                                     # what was injected, per operation

    hot = FaultInjector(
        rate=0.2,
        seed=1,
        kinds=[Kind.CONFLICT, Kind.THROTTLING, Kind.TIMEOUT_APPLIED],
        operations=["TransactWriteItems", "UpdateItem"],
        partitions=lambda pk: pk.startswith("FLASH#"),         # only the hot items (or a set of pks)
    )                                                          # match=callable(Call) filters further
    with hot.attached(), hot.attached(queues.client()):       # and/or any botocore or boto3 client
        ...

    once = FaultInjector(rate=1.0, kinds=[Kind.CONFLICT], max_faults=1)   # exactly one, then none

How: a `before-send` hook. For an error it returns a fake HTTP response carrying the real error
body (`__type`, message, `CancellationReasons`), so botocore parses it and its retry handler
treats it exactly as a real one (standard mode: bounded attempts, jittered backoff). Kinds:

- THROTTLING: `ThrottlingException` (400). botocore retries it.
- THROUGHPUT: `ProvisionedThroughputExceededException` (400). botocore retries it.
- CONFLICT: for TransactWriteItems / TransactGetItems, `TransactionCanceledException` whose
  `CancellationReasons` hold `TransactionConflict` for one item (the first that matches
  `partitions`, else a random one) and `None` for the rest; botocore does not retry it,
  `shared.data.transactions.Transaction.commit` does. For single-item writes,
  `TransactionConflictException` (what DynamoDB answers when a transaction holds the item).
- TIMEOUT_UNSENT: a connect timeout before anything is sent: nothing was applied. botocore retries.
- TIMEOUT_APPLIED: the request IS sent and applied, then the response is "lost" (a read timeout).
  botocore retries, so a conditional write can fail on its own earlier success: the nasty case
  the callers' idempotency must absorb.

Each HTTP attempt (retries included) is an independent draw. The RNG is seeded; with one thread
the sequence of faults is reproducible, with many threads the rate still holds.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError


class Kind(StrEnum):
    THROTTLING = "throttling"
    THROUGHPUT = "throughput"
    CONFLICT = "conflict"
    TIMEOUT_UNSENT = "timeout_unsent"
    TIMEOUT_APPLIED = "timeout_applied"


ALL_KINDS = tuple(Kind)
TRANSACTIONS = frozenset({"TransactWriteItems", "TransactGetItems"})
SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
DYNAMODB_PREFIX = "com.amazonaws.dynamodb.v20120810#"


@dataclass(frozen=True)
class Call:
    """What a filter sees of one HTTP attempt."""

    service: str  # "dynamodb", "sqs", ...
    operation: str
    keys: tuple[tuple[str, str | None], ...]  # (pk, sk) of every item the call names (DynamoDB)

    @property
    def partitions(self) -> tuple[str, ...]:
        return tuple(pk for pk, _ in self.keys)


class FaultInjector:
    def __init__(
        self,
        rate: float,
        seed: int = 0,
        kinds: Iterable[Kind | str] = ALL_KINDS,
        operations: Collection[str] | None = None,
        partitions: Collection[str] | Callable[[str], bool] | None = None,
        match: Callable[[Call], bool] | None = None,
        max_faults: int | None = None,
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError("rate is a probability, 0..1")
        self.rate = rate
        self.kinds = tuple(Kind(kind) for kind in kinds)
        if not self.kinds:
            raise ValueError("name at least one kind of fault")
        self.operations = frozenset(operations) if operations is not None else None
        self._partition = _partition_filter(partitions)
        self.match = match
        self.max_faults = max_faults
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._attached: list[tuple[Any, str, str]] = []
        self._http: Any = None
        self.seen: Counter[str] = Counter()  # every attempt, by operation
        self.eligible: Counter[str] = Counter()  # attempts the filters let through
        self.injected: Counter[tuple[str, Kind]] = Counter()  # (operation, kind) -> faults

    # -- attaching -----------------------------------------------------------------------------
    def attach(self, target: Any = None) -> FaultInjector:
        """Hook into `target`: a botocore/boto3 client, or None for the shared DynamoDB client."""
        events, service = _events_of(target)
        unique_id = f"fault-injector-{id(self)}-{uuid.uuid4().hex[:8]}"
        event_name = f"before-send.{service}"
        events.register(event_name, self._before_send, unique_id=unique_id)
        self._attached.append((events, event_name, unique_id))
        return self

    def detach(self) -> None:
        while self._attached:
            events, event_name, unique_id = self._attached.pop()
            events.unregister(event_name, unique_id=unique_id)

    @contextmanager
    def attached(self, target: Any = None) -> Iterator[FaultInjector]:
        events, _ = _events_of(target)
        self.attach(target)
        try:
            yield self
        finally:
            for entry in [e for e in self._attached if e[0] is events]:
                self._attached.remove(entry)
                entry[0].unregister(entry[1], unique_id=entry[2])

    # -- counting --------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def count(self, kind: Kind | str | None = None, operation: str | None = None) -> int:
        return sum(
            n
            for (op, k), n in self.injected.items()
            if (kind is None or k == Kind(kind)) and (operation is None or op == operation)
        )

    def report(self) -> str:
        lines = [f"faults: {self.total} injected in {sum(self.eligible.values())} eligible attempts (rate {self.rate})"]
        for (operation, kind), n in sorted(self.injected.items()):
            lines.append(f"  {operation:<28} {kind:<16} {n}")
        return "\n".join(lines)

    # -- the hook --------------------------------------------------------------------------------
    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        service, operation = event_name.split(".", 2)[1:]
        call = Call(service, operation, _keys(service, operation, request.body))
        with self._lock:
            self.seen[operation] += 1
            if not self._eligible(call):
                return None
            self.eligible[operation] += 1
            if self.max_faults is not None and self.total >= self.max_faults:
                return None
            if self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self._kinds_for(call))
            conflict_at = self._conflict_index(call)
            self.injected[(operation, kind)] += 1
        return self._inject(kind, call, request, conflict_at)

    def _eligible(self, call: Call) -> bool:
        if self.operations is not None and call.operation not in self.operations:
            return False
        if self._partition is not None and not any(self._partition(pk) for pk in call.partitions):
            return False
        return self.match is None or self.match(call)

    def _kinds_for(self, call: Call) -> list[Kind]:
        """The kinds this call can really suffer: a conflict needs a transaction or a write; SQS
        has no provisioned throughput."""
        usable = [kind for kind in self.kinds if _can_happen(kind, call)]
        return usable or [Kind.TIMEOUT_UNSENT]

    def _conflict_index(self, call: Call) -> int:
        if self._partition is not None:
            for index, pk in enumerate(call.partitions):
                if self._partition(pk):
                    return index
        return self._rng.randrange(max(1, len(call.keys)))

    def _inject(self, kind: Kind, call: Call, request: Any, conflict_at: int) -> AWSResponse:
        if kind is Kind.TIMEOUT_UNSENT:
            raise ConnectTimeoutError(endpoint_url=request.url)
        if kind is Kind.TIMEOUT_APPLIED:
            self._really_send(request)
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind is Kind.CONFLICT:
            return _conflict(call, conflict_at, request.url)
        if kind is Kind.THROUGHPUT:
            return _error(
                call.service,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
                request.url,
            )
        code = "ThrottlingException" if call.service == "dynamodb" else "RequestThrottled"
        return _error(call.service, code, "Rate of requests exceeds the allowed throughput.", request.url)

    def _really_send(self, request: Any) -> None:
        """Send the signed request ourselves, so the server applies it, and drop the answer."""
        if self._http is None:
            from botocore.httpsession import URLLib3Session

            self._http = URLLib3Session(timeout=10)
        self._http.send(request.prepare() if hasattr(request, "prepare") else request)


def _can_happen(kind: Kind, call: Call) -> bool:
    if kind is Kind.CONFLICT:
        return call.service == "dynamodb" and call.operation in TRANSACTIONS | SINGLE_WRITES
    if kind is Kind.THROUGHPUT:
        return call.service == "dynamodb"
    return True


def _events_of(target: Any) -> tuple[Any, str]:
    if target is None:
        from shared.data.connection import events

        return events(), "dynamodb"
    meta = target.meta
    return meta.events, meta.service_model.service_id.hyphenize()


def _partition_filter(partitions: Collection[str] | Callable[[str], bool] | None) -> Callable[[str], bool] | None:
    if partitions is None:
        return None
    if callable(partitions):
        return partitions
    chosen = frozenset(partitions)
    return chosen.__contains__


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def _response(service: str, status: int, body: dict[str, Any], code: str, url: str) -> AWSResponse:
    data = json.dumps(body).encode()
    headers = {
        "x-amzn-RequestId": f"fault-{uuid.uuid4().hex}",
        "Content-Type": "application/x-amz-json-1.0",
        "Content-Length": str(len(data)),
    }
    if service == "sqs":
        headers["x-amzn-query-error"] = f"{code};Sender"  # SQS's JSON protocol names the query-era code here
    return AWSResponse(url, status, headers, _Body(data))


def _error(service: str, code: str, message: str, url: str) -> AWSResponse:
    prefix = DYNAMODB_PREFIX if service == "dynamodb" else f"com.amazonaws.{service}#"
    return _response(service, 400, {"__type": prefix + code, "message": message}, code, url)


def _conflict(call: Call, index: int, url: str) -> AWSResponse:
    if call.operation not in TRANSACTIONS:
        return _error(
            "dynamodb",
            "TransactionConflictException",
            "Transaction is ongoing for the item",
            url,
        )
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in call.keys] or [{"Code": "None"}]
    reasons[min(index, len(reasons) - 1)] = {
        "Code": "TransactionConflict",
        "Message": "Transaction is ongoing for the item",
    }
    listed = ", ".join(reason["Code"] for reason in reasons)
    body = {
        "__type": DYNAMODB_PREFIX + "TransactionCanceledException",
        "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{listed}]",
        "CancellationReasons": reasons,
    }
    return _response("dynamodb", 400, body, "TransactionCanceledException", url)


# -- reading the keys a DynamoDB request names ---------------------------------------------------
def _keys(service: str, operation: str, body: Any) -> tuple[tuple[str, str | None], ...]:
    if service != "dynamodb" or not body:
        return ()
    try:
        payload = json.loads(body.decode() if isinstance(body, bytes | bytearray) else body)
    except (ValueError, UnicodeDecodeError):
        return ()
    if operation in TRANSACTIONS:
        parts: list[dict[str, Any]] = [next(iter(part.values()), {}) for part in payload.get("TransactItems", [])]
        return tuple(_key_of(p.get("Key") or p.get("Item") or {}) for p in parts)
    if "RequestItems" in payload:
        return tuple(_batch_keys(payload["RequestItems"]))
    if "Key" in payload or "Item" in payload:
        return (_key_of(payload.get("Key") or payload.get("Item") or {}),)
    if operation == "Query":
        # The partition a query reads is one of its key condition's values.
        values = payload.get("ExpressionAttributeValues", {})
        return tuple((v["S"], None) for v in values.values() if isinstance(v, dict) and "S" in v)
    return ()


def _batch_keys(request_items: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    for table_requests in request_items.values():
        if isinstance(table_requests, dict):  # BatchGetItem: {"Keys": [...]}
            yield from (_key_of(key) for key in table_requests.get("Keys", []))
            continue
        for request in table_requests:  # BatchWriteItem: [{"PutRequest": {"Item"}}, {"DeleteRequest": {"Key"}}]
            inner: dict[str, Any] = next(iter(request.values()), {})
            yield _key_of(inner.get("Item") or inner.get("Key") or {})


def _key_of(item: dict[str, Any]) -> tuple[str, str | None]:
    pk = item.get("pk", {}).get("S", "")
    sk = item.get("sk", {}).get("S")
    return pk, sk
