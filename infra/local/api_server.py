"""`chalice local`, as `make dev` serves it: Chalice's own local server (`LocalDevServer`, its
`LocalGateway` and request handler), with three differences where chalice local is not API
Gateway as this API deploys it (docs/security.md):

- a path no route matches answers 404 in API.md's error shape, as the deployed API's Gateway
  Responses do (infra/template.yaml). chalice local answers API Gateway's default 403 instead,
  `{"message": "Missing Authentication Token"}` or, when the request has an Authorization
  header, a message that repeats the whole header (the bearer token);
- the listen backlog takes a burst of `BACKLOG` connections (the standard library's server
  listens with 5, so a few dozen clients connecting at once were reset);
- a Content-Length that is not a number, or over API Gateway's 10 MB payload limit, is 400 / 413
  in the error shape (chalice local's handler thread died on it and the client saw a reset).

    python -m infra.local.api_server --stage local --port 8000

`LocalStack` (infra/local/stack.py) runs this; `infra.local.api_with_faults` serves the same
server with the fault harness attached.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from chalice import local
from chalice.cli import create_local_server
from chalice.cli.factory import CLIFactory
from chalice.local import ChaliceRequestHandler, LocalDevServer, LocalGateway, LocalGatewayException, ThreadedHTTPServer

ROOT = Path(__file__).resolve().parents[2]
BACKLOG = 256
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


def problem(status: int, code: str, message: str) -> LocalGatewayException:
    """An answer of the local gateway itself, in the error body of API.md."""
    error = LocalGatewayException(
        {"Content-Type": "application/json"},
        json.dumps({"code": code, "message": message, "details": {}}).encode(),
    )
    error.CODE = status
    return error


class EdgeGateway(LocalGateway):
    def _generate_lambda_event(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        try:
            return super()._generate_lambda_event(method, path, headers, body)
        except ValueError:  # RouteMatcher: no route matches the path
            raise problem(404, "NOT_FOUND", "no such route") from None


class EdgeRequestHandler(ChaliceRequestHandler):
    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any) -> None:
        # ChaliceRequestHandler.__init__ with our gateway: the base class serves the request from
        # inside __init__, so the gateway must be in place before it runs.
        self.local_gateway = EdgeGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def _generic_handle(self) -> None:
        length = self.headers.get("content-length", "0")
        if not length.isascii() or not length.isdigit():
            self.close_connection = True  # the body's end is unknown: nothing after it can be read
            return self._send_error_response(problem(400, "MALFORMED_REQUEST", "Content-Length must be a number"))
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            return self._send_error_response(problem(413, "REQUEST_TOO_LARGE", "the body is over 10 MB"))
        return super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


class BurstServer(ThreadedHTTPServer):
    request_queue_size = BACKLOG


class EdgeFactory(CLIFactory):
    def create_local_server(self, app_obj: Any, config: Any, host: str, port: int) -> LocalDevServer:
        # chalice.local.create_local_server, with our handler and server classes.
        local.CustomLocalChalice.__bases__ = (local.LocalChalice, app_obj.__class__)
        app_obj.__class__ = local.CustomLocalChalice
        return LocalDevServer(app_obj, config, host, port, handler_cls=EdgeRequestHandler, server_cls=BurstServer)


def create_server(host: str, port: int, stage: str) -> LocalDevServer:
    """What `chalice local --no-autoreload --stage <stage>` builds (cli `local` -> `run_local_server`:
    the stage's config, the route check), with the handler and backlog above."""
    return create_local_server(EdgeFactory(str(ROOT), environ=os.environ), host, port, stage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args()
    server = create_server(args.host, args.port, args.stage)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
