"""The commission consumer (its queue mapping is in infra/template.yaml) and the schedule that
moves entries whose after-sale window closed to SETTLEABLE."""

from __future__ import annotations

from typing import Any

from chalice import Rate

from functions.commission.blueprint import bp
from shared.messaging.consumers import consume
from shared.platform import bootstrap


@bp.lambda_function(name="commission_consumer")
def commission_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consume(event, bootstrap.commission_ledger(), bootstrap.consumer_runtime())


# Every minute: an entry becomes settleable at most a minute after its window closes, and a run
# that fails is redone by the next (each move is conditional on the entry still being FROZEN).
@bp.schedule(Rate(1, unit=Rate.MINUTES), name="commission_release")
def commission_release(event: Any) -> dict[str, int]:
    return {"settleable": bootstrap.commission_release().release_due()}
