"""The notifications consumer (its queue mapping is in infra/template.yaml) and the birthday
schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Rate

from functions.notifications.blueprint import bp
from shared.kernel.clock import now_ms
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap

if TYPE_CHECKING:
    from shared.messaging import consumers
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    consumers = lazy_import("shared.messaging.consumers")


@bp.lambda_function(name="notifications_consumer")
def notifications_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumers.consume(event, bootstrap.notifier(), bootstrap.consumer_runtime())


# Hourly, not daily: the greeting goes out in the first run of the member's birthday (China time)
# and a run that failed to reach someone is retried within the day; the once-a-year key makes the
# later runs no-ops.
@bp.schedule(Rate(1, unit=Rate.HOURS), name="birthday_greetings")
def birthday_greetings(event: Any) -> dict[str, int]:
    return {"looked_at": bootstrap.notifier().greet_birthdays(now_ms())}
