"""The report books' consumer (its queue mapping is in infra/template.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.reporting.blueprint import bp
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap

if TYPE_CHECKING:
    from shared.messaging import consumers
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    consumers = lazy_import("shared.messaging.consumers")


@bp.lambda_function(name="reporting_consumer")
def reporting_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumers.consume(event, bootstrap.report_bookkeeping(), bootstrap.consumer_runtime())
