"""shared/kernel/lazy.py: route modules bind their models and services lazily, so `import app` (every
Lambda's cold start) builds none of them; docs/benchmarks.md measures what that saves."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shared.kernel.lazy import lazy_import

ROOT = Path(__file__).resolve().parents[2]


def test_a_module_that_does_not_exist_fails_at_import_not_on_first_use():
    with pytest.raises(ModuleNotFoundError):
        lazy_import("shared.coupons.no_such_module")


def test_the_cold_import_of_app_builds_no_request_model_and_no_domain_module():
    heavy = "m == 'pydantic' or m.endswith(('.models', '.model', '.service'))"
    probe = f"import sys, app; print(' '.join(sorted(m for m in sys.modules if {heavy})))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_reads_go_to_the_real_module_so_a_patched_attribute_is_seen(monkeypatch):
    import shared.kernel.redaction as real

    deferred = lazy_import("shared.kernel.redaction")
    monkeypatch.setattr(real, "mask_pii", lambda value: "patched")
    assert deferred.mask_pii("13800000000") == "patched"


def test_threads_reading_a_module_still_being_imported_wait_for_the_whole_module(tmp_path, monkeypatch):
    # The module takes a while to execute and defines its last name at the end: a thread that got
    # the half-built module (importlib.util.LazyLoader on 3.11) would fail with AttributeError.
    package = tmp_path / "slowpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "slow.py").write_text("import time\ntime.sleep(0.3)\nLAST = 'built'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    deferred = lazy_import("slowpkg.slow")
    results: list[object] = []

    def read() -> None:
        try:
            results.append(deferred.LAST)
        except AttributeError as exc:  # pragma: no cover - the failure this test exists for
            results.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    monkeypatch.delitem(sys.modules, "slowpkg.slow")
    monkeypatch.delitem(sys.modules, "slowpkg")
    assert results == ["built"] * 8
