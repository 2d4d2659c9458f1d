"""The expiry reminder's schedule: a CouponExpiring event, once per coupon, a day before a claimed
coupon's use window ends (docs/coupons.md, "Expiry reminder"). The service is bound with
`lazy_import` (shared/kernel/lazy.py), so the cold import of app.py does not pay for it."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from chalice import Rate

from functions.coupons.routes import bp
from shared.kernel.lazy import lazy_import

if TYPE_CHECKING:
    from shared.coupons import reminders
    from shared.platform import bootstrap
else:
    reminders = lazy_import("shared.coupons.reminders")
    bootstrap = lazy_import("shared.platform.bootstrap")

# A run reads the 40 partitions of the expiry index. The local runner (`make dev`) calls every
# schedule every few seconds whatever its rate, and the emulator answers an index query by reading
# the whole table (1.9 s a run on 15,000 items, docs/coupons.md): a process runs the job at most
# once a minute. In AWS the schedule's 10 minutes apart never meet this.
MIN_INTERVAL_S = 60.0
_last_run = {"at": float("-inf")}
_lock = threading.Lock()


# Every 10 minutes: a reminder goes out between 24 h and 23 h 49 min before the coupon's end; a run
# goes on from the checkpoint where the one before stopped.
@bp.schedule(Rate(10, unit=Rate.MINUTES), name="remind_expiring_coupons")
def remind_expiring_coupons(event: object) -> dict:
    with _lock:
        started = time.monotonic()
        if started - _last_run["at"] < MIN_INTERVAL_S:
            return {"reminded": 0, "skipped": "ran less than a minute ago"}
        _last_run["at"] = started
    return {"reminded": reminders.remind_expiring(bootstrap.coupons())}
