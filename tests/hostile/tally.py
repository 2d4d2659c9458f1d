"""What the hostile tier sent and what came back, for the summary `make test` prints. A 500 is the
app failing (an unhandled error); a 503 is its documented "busy, retry" (Retry-After), counted apart."""

from __future__ import annotations

from collections import Counter

import requests

TALLY: Counter[str] = Counter()


def record(response: requests.Response, generated: bool = False) -> requests.Response:
    TALLY["requests"] += 1
    if generated:
        TALLY["generated cases"] += 1
    if response.status_code == 503:
        TALLY["503"] += 1
    elif response.status_code >= 500:
        TALLY["500"] += 1
        request = response.request
        TALLY[f"500 {request.method} {(request.path_url or '').split('?')[0]}"] += 1
    return response


def summary() -> str:
    named = sorted(k for k in TALLY if k.startswith("500 "))
    line = (
        f"hostile tier: {TALLY['requests']} requests ({TALLY['generated cases']} generated cases), "
        f"{TALLY['500']} answered 500, {TALLY['503']} answered 503 (busy, retry)"
    )
    return line + (f"; 500s: {', '.join(named)}" if named else "")
