"""Structured logs, metrics and tracing names, one set per process (aws-lambda-powertools).

The service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set per stage in `.chalice/config.json`). Personal data is masked before it reaches a log line
(shared/kernel/redaction.py).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from shared.kernel.redaction import mask_pii


def _masked_json(log: Any) -> str:
    """Every log line through `mask_pii`: a phone, address or pickup code passed in `extra=` (or in an
    exception's text) never reaches CloudWatch in clear."""
    return json.dumps(mask_pii(log), default=str, separators=(",", ":"))


logger = Logger(service="retail", use_rfc3339=True, json_serializer=_masked_json)
metrics = Metrics(namespace="RetailSuite", service="retail")

__all__ = ["MetricUnit", "count", "logger", "mask_pii", "metrics"]


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Add one metric; dimensions are attached to this metric alone."""
    if dimensions:
        if is_metrics_disabled():  # single_metric prints straight away and ignores the switch itself
            return
        # Dimensioned metrics go out in their own EMF blob so they do not tag every other metric.
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=metrics.namespace) as metric:
            for dim, dim_value in dimensions.items():
                metric.add_dimension(name=dim, value=dim_value)
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush() -> None:
    """Emit this invocation's metrics. Clearing matters when metrics are disabled (local stages):
    Powertools then keeps them, and its automatic flush at 100 values would print them anyway."""
    if metrics.metric_set:
        metrics.flush_metrics()
        metrics.clear_metrics()
