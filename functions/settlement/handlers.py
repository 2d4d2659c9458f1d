"""The settlement worker: one SettlementShardDue message settles (part of) one entry shard of a run
(its queue mapping is in infra/template.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.settlement.blueprint import bp
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap

if TYPE_CHECKING:
    from shared.messaging import consumers
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    consumers = lazy_import("shared.messaging.consumers")


@bp.lambda_function(name="settlement_worker")
def settlement_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumers.consume(event, bootstrap.settlement_worker(), bootstrap.consumer_runtime())
