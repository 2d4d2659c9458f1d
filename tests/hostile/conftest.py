"""The hostile-input tier: every edge finding of issue 10 as a request over HTTP against the stack of
`make dev` (tests/e2e/conftest.py's `stack`, started once for this package), plus generated requests
(hypothesis over signature headers and token claims, a bounded schemathesis run). Nothing may
answer 5xx; the summary at the end of the run says how many requests and cases were sent.
docs/security.md lists the cases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import stack, tokens  # noqa: F401  (the e2e fixtures, for this package)
from tests.e2e.http_api import HttpApi
from tests.hostile.tally import TALLY, record, summary


class CountingApi(HttpApi):
    """HttpApi whose every answer is counted (and every 5xx named) in the tier's tally."""

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return record(super().request(method, path, **kwargs))


@pytest.fixture(scope="package")
def api(stack) -> Iterator[CountingApi]:  # noqa: F811
    client = CountingApi(stack.api_url)
    yield client
    client.session.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY["requests"]:
        terminalreporter.write_line(summary())
