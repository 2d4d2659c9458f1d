"""Real Lambda event shapes, as AWS delivers them, for unit tests: `load("sqs_batch")`."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


def load(name: str) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json (tests may change it)."""
    return copy.deepcopy(_read(name))


def sqs_batch_of(bodies: list[str]) -> dict[str, Any]:
    """An SQS batch (tests/events/sqs_batch.json's record shape) carrying `bodies`, one record each."""
    template = _read("sqs_batch")["Records"][0]
    records = []
    for n, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record.update(messageId=f"m-{n}", receiptHandle=f"r-{n}", body=body)
        records.append(record)
    return {"Records": records}
