"""Modules executed on first use, so a Lambda's cold start pays only for what it serves
(docs/benchmarks.md, "Cold import of app.py").

Every Lambda of the suite imports `app.py`, which registers every route and event handler; a
route module that imported its request models and services at the top would make each cold start
build every capability's pydantic models and dataclasses, used or not. A route module binds them
with `lazy_import` instead, under a `TYPE_CHECKING` twin so that mypy still sees the real module:

    if TYPE_CHECKING:
        from shared.coupons import claims
    else:
        claims = lazy_import("shared.coupons.claims")

(and the same for the function folder's own `models`).

`lazy_import` returns a stand-in whose attribute reads import the module through the import
system. Not `importlib.util.LazyLoader`: on Python 3.11 a second thread reading an attribute while
the first is still executing the module sees it half-built (the local API server is threaded and
a flash crowd's first requests arrive together); `importlib.import_module` holds the module's import
lock, so the second thread waits for the finished module.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any


class _Deferred(ModuleType):
    """Stands for a module until an attribute is read; every read is the real module's."""

    def __getattr__(self, attr: str) -> Any:  # called only for names the stand-in itself lacks
        return getattr(importlib.import_module(self.__name__), attr)


def lazy_import(name: str) -> ModuleType:
    """The module `name`, imported when one of its attributes is first read."""
    if importlib.util.find_spec(name) is None:  # a typo fails at import, not on the first request
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    return _Deferred(name)
