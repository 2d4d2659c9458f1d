"""moto's server, serialised.

moto's DynamoDB `update_item` is get, check, write with no lock, so its threaded server oversells a
conditional decrement once about 80 clients race (DESIGN.md: 2,001-2,005 successes on a stock of
2,000). Real DynamoDB is atomic per item. Here every request runs under one lock, while connections
are still accepted on their own threads (keep-alive clients do not block each other's sockets).
`tests/load/test_emulator_serialisation.py` shows both behaviours.

Run: `python -m infra.local.moto_server --port 5000 [--threaded]`.
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


class SerialisedApp:
    """WSGI middleware: one request at a time through the wrapped app, body included."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
            captured["args"] = (status, headers, exc_info) if exc_info else (status, headers)
            return lambda _chunk: None

        with self.lock:
            result = self.app(environ, capture)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        start_response(*captured["args"])
        return [body]


def make_moto_server(host: str, port: int, serialised: bool = True) -> BaseWSGIServer:
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per call drowns `make dev`
            pass

    app: Any = DomainDispatcherApplication(create_backend_app)
    if serialised:
        from infra.local import moto_speedups, moto_transactions

        # Each refuses (MotoVersionMismatch) a moto other than the pin: infra/local/moto_pin.py.
        moto_transactions.install()  # O(items touched) rollback; sound only when serialised
        moto_speedups.install()  # parse each expression once, size each item once
        app = SerialisedApp(app)
    return make_server(host, port, app, threaded=True, request_handler=QuietHandler)


class BackgroundMotoServer:
    """A moto server on a thread of this process (tests); `make dev` runs it as its own process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, serialised: bool = True) -> None:
        self.server = make_moto_server(host, port, serialised)
        self.thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> BackgroundMotoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def collect_less() -> None:
    """The emulator's process, once it has built the app: the cyclic collector runs far less often.
    With the defaults (700, 10, 10) it ran a few full passes per thousand requests, each walking
    the whole heap (moto, werkzeug and botocore's service models: about 130,000 tracked objects,
    36 ms a pass measured alone, 36-54 ms under cProfile), and a young pass every 700 allocations,
    while what a request allocates (parsed bodies, items, responses) is freed by reference counting
    as soon as it is dropped. Now what is loaded at start (about 60,000 objects) is frozen out of
    every pass, young objects are collected every 20,000 allocations and a full pass waits for 100
    middle ones. A flash order cost the emulator 2.73-2.86 ms of CPU with the defaults and
    2.61-2.67 ms with this (docs/benchmarks.md, "The flash-order rate ratio on a quiet machine")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--threaded", action="store_true", help="moto's own behaviour: no serialisation")
    args = parser.parse_args()
    server = make_moto_server(args.host, args.port, serialised=not args.threaded)
    collect_less()
    print(f"moto ({'threaded' if args.threaded else 'serialised'}) on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
