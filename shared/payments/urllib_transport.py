"""The `HttpTransport` of production (and of the local stage, towards infra/local's WeChat Pay): urllib
from the standard library, one request per call, no retries here (the callers decide)."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping

from shared.payments.model import ProviderUnavailable
from shared.payments.ports import HttpReply

MAX_REPLY_BYTES = 1024 * 1024


class UrllibTransport:
    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpReply:
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return _reply(response.status, response.headers.items(), response.read(MAX_REPLY_BYTES))
        except urllib.error.HTTPError as exc:
            return _reply(exc.code, exc.headers.items(), exc.read(MAX_REPLY_BYTES))
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            raise ProviderUnavailable("WeChat Pay did not answer", url=url, reason=str(exc)) from exc


def _reply(status: int, headers: Iterable[tuple[str, str]], body: bytes) -> HttpReply:
    return HttpReply(status, {name.lower(): value for name, value in headers}, body)
