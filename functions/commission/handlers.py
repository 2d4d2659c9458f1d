"""The commission consumer (its queue mapping is in infra/template.yaml) and the schedule that
moves entries whose after-sale window closed to SETTLEABLE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Rate

from functions.commission.blueprint import bp
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap

if TYPE_CHECKING:
    from shared.messaging import consumers
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    consumers = lazy_import("shared.messaging.consumers")


@bp.lambda_function(name="commission_consumer")
def commission_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumers.consume(event, bootstrap.commission_ledger(), bootstrap.consumer_runtime())


# Every minute: an entry becomes settleable at most a minute after its window closes, and a run
# that fails is redone by the next (each move is conditional on the entry still being FROZEN).
@bp.schedule(Rate(1, unit=Rate.MINUTES), name="commission_release")
def commission_release(event: Any) -> dict[str, int]:
    return {"settleable": bootstrap.commission_release().release_due()}
