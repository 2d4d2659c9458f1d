from __future__ import annotations

from typing import Any

from chalice import Blueprint

from shared.platform import bootstrap

bp = Blueprint(__name__)


# A plain Lambda function: its stream mapping (batch size, bisect, retries, on-failure
# destination, ReportBatchItemFailures) lives in infra/template.yaml, which Chalice's
# on_dynamodb_record cannot express.
@bp.lambda_function(name="event_relay")
def event_relay(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return bootstrap.event_relay().relay(event.get("Records", []))
