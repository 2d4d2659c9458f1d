"""The end-to-end tier: the same stack as `make dev`, on free ports, shared by every test of
tests/e2e and stopped after the last of them (package scope), so later tiers run on a quiet machine.

The stack runs as `python -m infra.local.dev` in a process group of its own, not inside pytest:
LocalStack puts its settings in `os.environ` and its event runner binds the process's one
PynamoDB connection, which would pull the functional and load tiers (same session) onto the
end-to-end table. Its output (moto, `chalice local`, the runner) goes to `e2e-stack.log` in the
session's temporary directory and is printed when the stack fails to start.

Fixtures: `stack` (api_url, moto_endpoint, table_name, log), `api` (HTTP, see http_api.py) and
`tokens`, signed with the local stage's secret (the one `chalice local --stage local` checks). A test
that needs a stack of its own (e.g. under the fault harness) starts one with `local_stack(log, *options)`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from infra.local.stack import ROOT, free_port, stage_environment
from tests.conftest import role_tokens
from tests.e2e.http_api import HttpApi

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 300
SCHEDULE_EVERY_S = 1.0
# Unpaid orders are held for an hour, so no test's order (nor a flash crowd's, however slowly the
# machine serves it) expires while the test still works with it; a test that wants the window to
# pass says so with `stack.expire_unpaid_orders()` (infra/local/expire_unpaid.py says why).
PAYMENT_WINDOW_S = 3600
SHELL_VARIABLES = {"PATH", "HOME", "LANG", "TMPDIR", "USER"}


@dataclass(frozen=True)
class RunningStack:
    api_port: int
    moto_port: int
    log: Path
    environment: dict[str, str]  # the local stage's variables, as the app sees them
    wechatpay_port: int  # the local WeChat Pay, the stage's payment provider as under `make dev`
    wechatpay_keys: Path  # its fresh keys (infra/local/wechatpay_server.py WeChatPayKeys)

    @property
    def wechatpay_url(self) -> str:
        return f"http://127.0.0.1:{self.wechatpay_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def moto_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def table_name(self) -> str:
        return self.environment["TABLE_NAME"]

    def expire_unpaid_orders(self, later_by_s: float = PAYMENT_WINDOW_S + 1) -> int:
        """The expiry step: the stack's sweeper once, on a clock `later_by_s` ahead, so every unpaid
        order placed so far (with a window up to that long) expires now. Returns how many did."""
        argv = [
            sys.executable, "-m", "infra.local.expire_unpaid",
            "--moto-endpoint", self.moto_endpoint, "--later-by", str(later_by_s),
        ]  # fmt: skip
        environment = {**_shell_environment(), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[-1])


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with local_stack(tmp_path_factory.mktemp("e2e") / "e2e-stack.log") as running:
        yield running


@contextlib.contextmanager
def local_stack(log: Path, *options: str) -> Iterator[RunningStack]:
    """`python -m infra.local.dev` on free ports with this tier's schedule and payment window, and
    `options` for it (e.g. "--fault-rate", "0.1"; "--payment-provider", "hmac" for a stack without the
    local WeChat Pay); stopped, with nothing of it left running, on exit. Its whole output, including
    what it prints while stopping, is in `log`; the local WeChat Pay's keys are beside it."""
    keys = log.parent / f"{log.stem}-wechatpay-keys"
    running = RunningStack(free_port(), free_port(), log, stage_environment("local"), free_port(), keys)
    argv = [
        sys.executable, "-m", "infra.local.dev",
        "--api-port", str(running.api_port), "--moto-port", str(running.moto_port),
        "--wechatpay-port", str(running.wechatpay_port), "--wechatpay-keys", str(keys),
        "--schedule-every", str(SCHEDULE_EVERY_S),
        "--payment-window", str(PAYMENT_WINDOW_S),
        *options,
    ]  # fmt: skip
    environment = {**_shell_environment(), "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        child = subprocess.Popen(
            argv, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_ready(child, running)
        yield running
    finally:
        _stop(child)


def _shell_environment() -> dict[str, str]:
    """A developer's shell, not the test tier's settings: the stack takes its own from .chalice/config.json."""
    return {k: v for k, v in os.environ.items() if k in SHELL_VARIABLES or k.startswith("LC_")}


def _wait_until_ready(child: subprocess.Popen, running: RunningStack) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if child.poll() is not None:
            raise RuntimeError(f"the local stack exited with {child.returncode}:\n{_tail(running.log)}")
        # "ready" is printed once the catalogue is seeded, the API answers and the runner runs.
        if "\nready in " in running.log.read_text(errors="replace"):
            requests.get(f"{running.api_url}/products?limit=1", timeout=60).raise_for_status()
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the local stack was not ready in {START_TIMEOUT_S} s:\n{_tail(running.log)}")
        time.sleep(0.2)


def _stop(child: subprocess.Popen) -> None:
    """SIGTERM is Ctrl-C for `make dev`: it stops moto and `chalice local` itself. Whatever is
    left of the group after that is killed, so no test run leaves a server behind."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=5)


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="package")
def api(stack: RunningStack) -> Iterator[HttpApi]:
    client = HttpApi(stack.api_url)
    yield client
    client.session.close()


@pytest.fixture
def tokens(stack: RunningStack) -> dict[str, str]:
    return role_tokens(stack.environment["JWT_SECRET"])
