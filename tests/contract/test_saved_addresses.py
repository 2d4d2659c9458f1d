"""The saved-address port (shared.ordering.addresses.SavedAddresses): one class of tests against
the in-memory fake (tests/fakes/ordering.py) and the DynamoDB store on a moto table."""

from __future__ import annotations

import pytest

from shared.ordering.addresses import SavedAddresses
from shared.ordering.fulfilment import Address
from tests.fakes.ordering import MemorySavedAddresses

HOME = Address("韩梅梅", "+86 137 0000 1234", "上海", "徐汇区 3 号")
WORK = Address("韩梅梅", "13700000000", "Shanghai", "静安区 1 号", 31.23, 121.47)


@pytest.fixture(params=["memory", "dynamodb"])
def addresses(request: pytest.FixtureRequest) -> SavedAddresses:
    if request.param == "memory":
        return MemorySavedAddresses()
    request.getfixturevalue("table")
    from shared.data.stores.addresses import DynamoSavedAddresses

    return DynamoSavedAddresses()


class TestSavedAddresses:
    def test_an_address_reads_back_as_saved_and_the_next_replaces_it(self, addresses: SavedAddresses):
        assert addresses.get("c-1") is None
        addresses.put("c-1", HOME, 1_000)
        assert addresses.get("c-1") == HOME
        addresses.put("c-1", WORK, 2_000)
        assert addresses.get("c-1") == WORK  # coordinates too
        assert addresses.get("c-2") is None
