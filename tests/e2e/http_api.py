"""HTTP to the running local stack, for end-to-end tests: `api.get("/products")`,
`api.put("/admin/products/X", token=tokens["merchant_admin"], json={...})`, and `eventually(...)`
for what the event runner does after the response (stream relay, queue consumers, schedules)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

T = TypeVar("T")


class HttpApi:
    """A requests session on the stack's base URL; every call returns the `requests.Response`."""

    def __init__(self, base_url: str, timeout_s: float = 15.0) -> None:
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


def eventually(probe: Callable[[], T | None], timeout_s: float = 15.0, every_s: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; the runner is asynchronous, as Lambda is."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout_s} s (last: {result!r})")
        time.sleep(every_s)
