"""`chalice local` with the fault harness attached: the API process is the one that calls DynamoDB,
so it is the only place where throttling, conflicts and timeouts can be injected for HTTP tests.

    FAULT_RATE=0.1 FAULT_PARTITIONS='FLASH#,ORDER#' python -m infra.local.api_with_faults --port 8000

serves the app exactly as `make dev` does (infra/local/api_server.py: chalice's own config loading
and local server, with its 404 for unknown routes and its listen backlog), after attaching a
`FaultInjector` (infra/local/faults.py) to the shared DynamoDB client
(`shared.data.connection.events()`). What it injects is read from FAULT_* variables
by `FaultPlan.from_environment` (here only: shared/ and functions/ never see them, and nothing of
this module is packaged). On SIGTERM or Ctrl-C it prints the injector's report to stderr, so the
stack's log ends with what was injected.

`LocalStack(faults=FaultPlan(...))` runs this instead of `infra.local.api_server`; `make dev` does
so with `python -m infra.local.dev --fault-rate 0.1`.

The event runner (infra/local/runner.py: the stream relay, the queue consumers such as the
commission ledger, the schedules) runs in the stack's own process, on that process's shared
DynamoDB client. `FAULT_TARGETS=api,runner` (`--fault-targets api,runner`) attaches a second
injector of the same plan there too (`LocalStack` does it once the seed is written); its report
prints when the stack stops, as `event runner faults: ...`. The default is the API alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.local.faults import FaultInjector


TARGETS = ("api", "runner")  # the processes an injector can be attached to


def _listed(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


@dataclass(frozen=True)
class FaultPlan:
    """What to inject: `rate` of the eligible DynamoDB attempts fail. Empty `kinds` means every
    kind, empty `operations` every operation, empty `partitions` every item; `partitions` are
    prefixes of the partition key (e.g. "FLASH#" for a flash sale's shards, buyers and claims).
    `targets`: the processes whose DynamoDB client fails, "api" and/or "runner" (the event runner)."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    targets: tuple[str, ...] = ("api",)

    def __post_init__(self) -> None:
        unknown = set(self.targets) - set(TARGETS)
        if unknown or not self.targets:
            raise ValueError(f"fault targets are some of {', '.join(TARGETS)}, not {', '.join(sorted(unknown))}")

    def environment(self) -> dict[str, str]:
        return {
            "FAULT_RATE": str(self.rate),
            "FAULT_SEED": str(self.seed),
            "FAULT_KINDS": ",".join(self.kinds),
            "FAULT_OPERATIONS": ",".join(self.operations),
            "FAULT_PARTITIONS": ",".join(self.partitions),
            "FAULT_TARGETS": ",".join(self.targets),
        }

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> FaultPlan | None:
        """None when FAULT_RATE is unset or 0: the API then runs without the harness."""
        rate = float(env.get("FAULT_RATE") or 0)
        if rate <= 0:
            return None
        return cls(
            rate=rate,
            seed=int(env.get("FAULT_SEED") or 0),
            kinds=_listed(env.get("FAULT_KINDS")),
            operations=_listed(env.get("FAULT_OPERATIONS")),
            partitions=_listed(env.get("FAULT_PARTITIONS")),
            targets=_listed(env.get("FAULT_TARGETS")) or ("api",),
        )

    def injector(self) -> FaultInjector:
        from infra.local.faults import ALL_KINDS, FaultInjector

        prefixes = self.partitions
        return FaultInjector(
            rate=self.rate,
            seed=self.seed,
            kinds=self.kinds or ALL_KINDS,
            operations=self.operations or None,
            partitions=(lambda pk: pk.startswith(prefixes)) if prefixes else None,
        )

    def describe(self) -> str:
        kinds = ", ".join(self.kinds) or "every kind"
        where = ", ".join(self.partitions) or "every item"
        operations = ", ".join(self.operations) or "every operation"
        targets = " and ".join("the event runner" if t == "runner" else "the API" for t in self.targets)
        return (
            f"{self.rate:.0%} of DynamoDB attempts of {targets} fail ({kinds}) on {where}, {operations};"
            f" seed {self.seed}"
        )


def serve(host: str, port: int, stage: str, plan: FaultPlan | None) -> None:
    """What `chalice local --no-autoreload` does (cli `local` -> `run_local_server`), with the
    injector attached to the bound client before the first request."""
    from infra.local.api_server import create_server

    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")  # as `chalice local`
    server = create_server(host, port, stage)
    injector = None
    if plan is not None and "api" in plan.targets:
        from shared.platform import bootstrap

        bootstrap.ready()  # binds the one shared client (the app's handlers reuse this binding)
        injector = plan.injector().attach()
        print(f"fault harness: {plan.describe()}", file=sys.stderr, flush=True)
    # SIGTERM (LocalStack.stop, a supervisor) ends the server as Ctrl-C does, so the report prints.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if injector is not None:
            print(injector.report(), file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args()
    serve(args.host, args.port, args.stage, FaultPlan.from_environment(os.environ))


if __name__ == "__main__":
    main()
