"""The report books' consumer (its queue mapping is in infra/template.yaml)."""

from __future__ import annotations

from typing import Any

from functions.reporting.blueprint import bp
from shared.messaging.consumers import consume
from shared.platform import bootstrap


@bp.lambda_function(name="reporting_consumer")
def reporting_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consume(event, bootstrap.report_bookkeeping(), bootstrap.consumer_runtime())
