"""Request bodies as JSON, with a bound on nesting: the one parser of the HTTP edge and the webhooks.

`json.loads` recurses per level; a body of a few thousand `[` raises RecursionError, which is no
`ValueError` and so escaped as a 500. No body of API.md nests deeper than a handful of levels,
so anything past `MAX_DEPTH` is malformed (400), whether or not the parser managed to read it.
"""

from __future__ import annotations

import json
from typing import Any

from shared.kernel.errors import MalformedRequest

MAX_DEPTH = 32


def parse_json(raw: bytes | str, what: str = "request body") -> Any:
    """`raw` as JSON, or MalformedRequest (400) when it is not JSON or nests past MAX_DEPTH."""
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise MalformedRequest(f"{what} nests deeper than {MAX_DEPTH} levels", max_depth=MAX_DEPTH) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedRequest(f"{what} is not valid JSON", error=str(exc)) from exc
    if depth(data) > MAX_DEPTH:
        raise MalformedRequest(f"{what} nests deeper than {MAX_DEPTH} levels", max_depth=MAX_DEPTH)
    return data


def depth(value: Any) -> int:
    """How many objects and arrays deep `value` goes (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest
