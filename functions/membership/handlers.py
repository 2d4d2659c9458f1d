"""The membership consumer (its queue mapping is in infra/template.yaml) and the schedules that
release points whose after-sale window closed and expire points past their time."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from chalice import Rate

from functions.membership.blueprint import bp
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap

if TYPE_CHECKING:
    from shared.messaging import consumers
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    consumers = lazy_import("shared.messaging.consumers")


@bp.lambda_function(name="membership_consumer")
def membership_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumers.consume(event, bootstrap.membership_consumer(), bootstrap.consumer_runtime())


# Every minute, as the commission release: points are available at most a minute after the window
# closes, and a lot whose move was refused (a concurrent refund or spend) is taken by the next run.
@bp.schedule(Rate(1, unit=Rate.MINUTES), name="points_release")
def points_release(event: Any) -> dict[str, int]:
    return {"released": bootstrap.points_release().release_due()}


# Hourly: expiry is days after release, so an hour late is nothing; each lot expires once.
@bp.schedule(Rate(1, unit=Rate.HOURS), name="points_expiry")
def points_expiry(event: Any) -> dict[str, int]:
    return {"expired": bootstrap.points_expiry().expire_due()}


SEGMENT_RUN_S = 40.0  # of the schedule Lambda's 60 s: a page more (100 claims) fits after it


# Every minute: a run works on a segment's members for up to SEGMENT_RUN_S and saves its cursor
# after each page; the next run goes on from there, or redoes a page a crashed run left.
@bp.schedule(Rate(1, unit=Rate.MINUTES), name="segment_issues")
def segment_issues(event: Any) -> dict[str, int]:
    deadline = time.monotonic() + SEGMENT_RUN_S
    return {"pages": bootstrap.segment_issues().run_due(max_pages=10_000, stop=lambda: time.monotonic() > deadline)}
