"""The whole system on one machine: the serialised moto server, the table and queues from
`infra/template.yaml`, demo data, `chalice local` and the event runner.

`make dev` runs it on the usual ports (`infra.local.dev`); the end-to-end tests start the same
stack on free ports. Children stay in the caller's process group but ignore SIGINT: Ctrl-C stops
the runner first, then the API and the emulator (`stop()`), so nothing polls a server that is gone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from infra.local.api_with_faults import FaultPlan

if TYPE_CHECKING:
    from infra.local.faults import FaultInjector

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


class PortTaken(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ensure_free(port: int, what: str) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise PortTaken(f"port {port} ({what}) is taken: is `make dev` already running?") from exc


def stage_environment(stage: str = "local") -> dict[str, str]:
    """The environment `chalice local --stage <stage>` gives the app, from `.chalice/config.json`."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def local_environment(moto_endpoint: str, region: str = "us-east-1", stage: str = "local") -> dict[str, str]:
    """What a process of the local stack runs with: the stage's variables and the emulator's endpoints."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "DYNAMODB_ENDPOINT": moto_endpoint,
        "SQS_ENDPOINT": moto_endpoint,
        **stage_environment(stage),
    }


def _wait_for_port(port: int, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not listen on port {port}") from None
            time.sleep(0.1)


@dataclass
class LocalStack:
    moto_port: int = 5100
    api_port: int = 8000
    region: str = "us-east-1"
    stage: str = "local"
    seed: bool = True
    run_events: bool = True
    schedule_every_s: float = 3.0
    quiet: bool = False
    overrides: dict[str, str] = field(default_factory=dict)  # settings the stage leaves open, e.g. the payment window
    # The fault harness (infra/local/api_with_faults.py) on the plan's targets: the API process,
    # and/or this process's DynamoDB client, the one the event runner's consumers and schedules use.
    faults: FaultPlan | None = None
    # "wechatpay" (what `make dev` runs): the local WeChat Pay (infra/local/wechatpay_server.py) runs too,
    # with fresh keys written to `wechatpay_keys`, and the local stage's payment provider is WeChat Pay,
    # pointed at it, profit sharing on. "hmac": the HMAC webhook only (the HMAC route is live in both).
    payment_provider: str = "hmac"
    wechatpay_port: int = 5300
    wechatpay_keys: Path | None = None
    wechatpay_mode: str = "public_key"  # or "certificate"
    env: dict[str, str] = field(default_factory=dict)
    _children: list[subprocess.Popen] = field(default_factory=list)
    runner: object | None = None
    runner_faults: FaultInjector | None = None  # the injector on the event runner's client

    @property
    def moto_endpoint(self) -> str:
        return f"http://{HOST}:{self.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def wechatpay_url(self) -> str:
        return f"http://{HOST}:{self.wechatpay_port}"

    def start(self) -> LocalStack:
        ensure_free(self.api_port, "API")
        ensure_free(self.moto_port, "emulator")
        if self.payment_provider == "wechatpay":
            ensure_free(self.wechatpay_port, "local WeChat Pay")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from infra.local import resources

        self.env = {**local_environment(self.moto_endpoint, self.region, self.stage), **self.overrides}
        if self.payment_provider == "wechatpay":
            self.env.update({**self._start_wechatpay(), **self.overrides})
        os.environ.update(self.env)
        self._spawn([sys.executable, "-m", "infra.local.moto_server", "--host", HOST, "--port", str(self.moto_port)])
        resources.wait_for(self.moto_endpoint)
        created = resources.create_all(self.moto_endpoint, self.region, self.env["TABLE_NAME"], self.stage)
        self.env["CONSUMER_QUEUES"] = ",".join(f"{name}={url}" for name, url in created["queues"].items())
        self.env["TABLE_STREAM_ARN"] = created["stream_arn"] or ""
        os.environ.update(self.env)

        from shared.platform import bootstrap

        bootstrap.reset()
        if self.seed:
            from infra.local.seed import seed

            seed()
        self._spawn(self._api_command(), self.faults.environment() if self.faults else {})
        self._wait_for_api()
        if self.faults is not None and "runner" in self.faults.targets:
            self._attach_runner_faults(self.faults)
        if self.run_events:
            from infra.local.runner import EventRunner

            runner = EventRunner(schedule_every_s=self.schedule_every_s, quiet=self.quiet)
            runner.start()
            self.runner = runner

    def _attach_runner_faults(self, plan: FaultPlan) -> None:
        """The plan's injector on this process's shared DynamoDB client, after the seed (which must
        not fail) and before the runner's first poll: every consumer, the relay and the schedules
        call DynamoDB through it. Queue and stream reads use their own clients and stay clean."""
        from shared.platform import bootstrap

        bootstrap.ready()  # binds the one shared client; the runner's handlers reuse it
        self.runner_faults = plan.injector().attach()
        print(f"event runner fault harness: {plan.describe()}", file=sys.stderr, flush=True)

    def _start_wechatpay(self) -> dict[str, str]:
        """The local WeChat Pay with fresh keys; returns the settings that point the API at it."""
        from infra.local.wechatpay_server import KEYS_DIR, WeChatPayKeys

        keys = WeChatPayKeys.generate()
        directory = keys.write(self.wechatpay_keys or KEYS_DIR)
        argv = ["--port", str(self.wechatpay_port), "--keys", str(directory), "--mode", self.wechatpay_mode]
        self._spawn([sys.executable, "-m", "infra.local.wechatpay_server", "serve", *argv])
        _wait_for_port(self.wechatpay_port, "the local WeChat Pay")
        notify_url = f"{self.api_url}/payments/wechatpay/notify"
        # A refund no notification settled is asked about after 5 s here, not 10 minutes, and profit
        # sharing is on as in a deployed stage that pays commissions through WeChat Pay (docs/payments.md);
        # an override (`--setting WECHATPAY_PROFIT_SHARING=0`) wins.
        return {
            **keys.api_settings(self.wechatpay_url, notify_url, self.wechatpay_mode),
            "WECHATPAY_REFUND_QUERY_AFTER_S": "5",
            "WECHATPAY_PROFIT_SHARING": "1",
        }

    def _api_command(self) -> list[str]:
        """chalice local's server, as infra/local/api_server.py tunes it (404 for unknown routes, a
        listen backlog for bursts), or the same server with the fault harness attached."""
        where = ["--stage", self.stage, "--host", HOST, "--port", str(self.api_port)]
        if self.faults is not None and "api" in self.faults.targets:
            return [sys.executable, "-m", "infra.local.api_with_faults", *where]
        return [sys.executable, "-m", "infra.local.api_server", *where]

    def _spawn(self, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        out = subprocess.DEVNULL if self.quiet else None
        env = {**os.environ, **self.env, **(extra_env or {})}
        # Children ignore SIGINT: Ctrl-C reaches the whole process group, and the emulator must not
        # die before the event runner has stopped polling it; `stop()` ends them, in order.
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out, preexec_fn=_ignore_sigint)
        self._children.append(child)

    def _wait_for_api(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            for child in self._children:
                if child.poll() is not None:
                    raise RuntimeError(f"{child.args[0]} exited with {child.returncode} during start-up")
            try:
                urllib.request.urlopen(f"{self.api_url}/products?limit=1", timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"chalice local did not answer on {self.api_url}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()  # type: ignore[attr-defined]
            self.runner = None
        if self.runner_faults is not None:
            print(f"event runner {self.runner_faults.report()}", file=sys.stderr, flush=True)
            self.runner_faults.detach()
            self.runner_faults = None
        for child in reversed(self._children):
            if child.poll() is None:
                child.terminate()
        for child in reversed(self._children):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        self._children.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
