"""The notifications consumer (its queue mapping is in infra/template.yaml) and the birthday
schedule."""

from __future__ import annotations

from typing import Any

from chalice import Rate

from functions.notifications.blueprint import bp
from shared.kernel.clock import now_ms
from shared.messaging.consumers import consume
from shared.platform import bootstrap


@bp.lambda_function(name="notifications_consumer")
def notifications_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consume(event, bootstrap.notifier(), bootstrap.consumer_runtime())


# Hourly, not daily: the greeting goes out in the first run of the member's birthday (China time)
# and a run that failed to reach someone is retried within the day; the once-a-year key makes the
# later runs no-ops.
@bp.schedule(Rate(1, unit=Rate.HOURS), name="birthday_greetings")
def birthday_greetings(event: Any) -> dict[str, int]:
    return {"looked_at": bootstrap.notifier().greet_birthdays(now_ms())}
