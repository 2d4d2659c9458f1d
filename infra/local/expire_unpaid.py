"""`python -m infra.local.expire_unpaid --moto-endpoint URL --later-by SECONDS`: the unpaid-order
sweeper once, against a running local stack, on the stage's clock moved SECONDS ahead, so every
unpaid order whose window ends before then expires now, with its units released and its
OrderExpired derived from the order's change (the stack's event runner relays it as usual). Prints the count.

The end-to-end tests use it as their expiry step. Waiting out a real payment window makes a test
depend on the machine's speed both ways: a window short enough to wait out is one that a loaded
machine's orders (or a flash crowd still buying) outlive, and then they expire and their units are
sold twice. So the stacks under test hold orders for an hour, and a test that wants the window to
pass says so. The sweeper is the one the schedule runs (`bootstrap.order_lifecycle`); only its
clock differs, injected as every service's is.
"""

from __future__ import annotations

import argparse
import os
import sys

from infra.local.stack import local_environment
from shared.kernel.clock import SYSTEM, Clock


class Ahead:
    """`clock`, `seconds` later."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def now_ms(self) -> int:
        return self.clock.now_ms() + round(self.seconds * 1000)

    def monotonic(self) -> float:
        return self.clock.monotonic() + self.seconds


def expire_unpaid(later_by_s: float) -> int:
    """Every order due by `later_by_s` from now, expired (the sweeper takes a batch a run)."""
    from shared.platform import bootstrap

    bootstrap.reset()
    sweeper = bootstrap.order_lifecycle(Ahead(SYSTEM, later_by_s))
    total = 0
    while expired := sweeper.expire_due():
        total += expired
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description="expire a local stack's unpaid orders as if time had passed")
    parser.add_argument("--moto-endpoint", required=True, help="the stack's emulator, e.g. http://127.0.0.1:5100")
    parser.add_argument("--later-by", type=float, required=True, help="seconds to move the clock ahead")
    parser.add_argument("--stage", default="local")
    args = parser.parse_args()
    os.environ.update(local_environment(args.moto_endpoint, stage=args.stage))
    print(expire_unpaid(args.later_by), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
