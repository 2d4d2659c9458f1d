"""The settlement worker: one SettlementShardDue message settles (part of) one entry shard of a run
(its queue mapping is in infra/template.yaml)."""

from __future__ import annotations

from typing import Any

from functions.settlement.blueprint import bp
from shared.messaging.consumers import consume
from shared.platform import bootstrap


@bp.lambda_function(name="settlement_worker")
def settlement_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consume(event, bootstrap.settlement_worker(), bootstrap.consumer_runtime())
