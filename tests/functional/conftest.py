from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from chalice.test import Client


@pytest.fixture
def client(table: dict) -> Iterator[Client]:
    """The Chalice app through `chalice.test.Client`, on a fresh moto table.

    Chalice's test client swaps `os.environ` for a copy during each request and puts back the object
    it found. Two requests at once (a consumer or a local WeChat Pay callback in a thread beside the
    test's own) can leave that copy as `os.environ` for good, so a variable a test set with
    monkeypatch outlives the test (monkeypatch undoes it on the real mapping). The real mapping is put
    back before monkeypatch undoes anything (it is torn down after this fixture)."""
    from app import app

    environ = os.environ
    try:
        with Client(app, stage_name="test") as test_client:
            yield test_client
    finally:
        os.environ = environ  # noqa: B003 (putting the real mapping back, not clearing)
