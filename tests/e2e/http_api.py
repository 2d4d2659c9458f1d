"""HTTP to the running local stack, for end-to-end tests: `api.get("/products")`,
`api.put("/admin/products/X", token=tokens["merchant_admin"], json={...})`, and `eventually(...)`
for what the event runner does after the response (stream relay, queue consumers, schedules).

Nothing here bets on the machine's speed: a wait polls its condition until a deadline that only a
broken stack reaches (a test returns as soon as the condition holds, so a long deadline costs a
passing run nothing), and a request may take a minute before it counts as lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

T = TypeVar("T")

# How long an effect of the event runner may take to show. On an idle machine it is under a second;
# on this 2-core machine under a parallel `make test`, an event waited behind a flash crowd's
# thousands of stream records for more than 30 s. Five minutes is far past both.
EVENT_DEADLINE_S = 300.0
REQUEST_TIMEOUT_S = 60.0


class HttpApi:
    """A requests session on the stack's base URL; every call returns the `requests.Response`."""

    def __init__(self, base_url: str, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> requests.Response:
        """`json=` sends a JSON body; `data=` sends raw bytes as they are (e.g. malformed JSON)."""
        sent = {"Content-Type": "application/json"} if json is not None or data is not None else {}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        return self.session.request(
            method, f"{self.base_url}{path}", json=json, data=data, headers=sent, params=params, timeout=self.timeout_s
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def pages(self, path: str, *, limit: int = 20, **kwargs: Any) -> list[dict]:
        """Every item of a paginated list (API.md: `?limit=`, `next_cursor`), page by page."""
        items: list[dict] = []
        cursor = None
        params = dict(kwargs.pop("params", None) or {})
        while True:
            response = self.get(
                path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})}, **kwargs
            )
            response.raise_for_status()
            body = response.json()
            items.extend(body["items"])
            cursor = body.get("next_cursor")
            if not cursor:
                return items


class Retrying(HttpApi):
    """A client that, as API.md asks, repeats a request answered 503 (the same request, the same
    key): what a client of a stack under the fault harness does."""

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        for _ in range(20):
            answer = super().request(method, path, **kwargs)
            if answer.status_code != 503:
                return answer
            time.sleep(0.2)
        return answer


def eventually(probe: Callable[[], T | None], timeout_s: float = EVENT_DEADLINE_S, every_s: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy, and return that; the runner is asynchronous,
    as Lambda is. Polls start every `every_s` and space out to 2 s, so a long wait does not load
    the machine it waits for."""
    deadline = time.monotonic() + timeout_s
    pause = every_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout_s} s (last: {result!r})")
        time.sleep(pause)
        pause = min(pause * 1.5, max(every_s, 2.0))
