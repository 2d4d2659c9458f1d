from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client


@pytest.fixture
def client(table: dict) -> Iterator[Client]:
    """The Chalice app through `chalice.test.Client`, on a fresh moto table."""
    from app import app

    with Client(app, stage_name="test") as test_client:
        yield test_client
