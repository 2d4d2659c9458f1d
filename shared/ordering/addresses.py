"""A customer's saved default address (`PUT /me/address`): where a flash-sale order without
`fulfilment` is delivered (docs/orders.md, "The saved address")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from shared.kernel.clock import Clock
from shared.kernel.errors import FulfilmentRequired, NotFound
from shared.ordering.fulfilment import Address, Fulfilment, FulfilmentType


class SavedAddresses(Protocol):
    def get(self, customer_id: str) -> Address | None:
        """The customer's default address (a consistent read), or None."""
        ...

    def put(self, customer_id: str, address: Address, now_ms: int) -> None:
        """Save it as the customer's default, replacing any before."""
        ...


class NoSavedAddresses:
    """For services wired without the store: nobody has a saved address."""

    def get(self, customer_id: str) -> Address | None:
        return None

    def put(self, customer_id: str, address: Address, now_ms: int) -> None:
        raise RuntimeError("this service was wired without saved addresses")


NO_SAVED_ADDRESSES = NoSavedAddresses()


def address_view(address: Address) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recipient": address.recipient,
        "phone": address.phone,
        "city": address.city,
        "detail": address.detail,
    }
    if address.coordinates is not None:
        body.update(lat=address.lat, lng=address.lng)
    return body


class AddressBook:
    def __init__(self, store: SavedAddresses, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def save(self, customer_id: str, address: Address) -> Address:
        self._store.put(customer_id, address, self._clock.now_ms())
        return address

    def default(self, customer_id: str) -> Address:
        found = self._store.get(customer_id)
        if found is None:
            raise NotFound("no saved address", customer_id=customer_id)
        return found

    def delivery_for(self, customer_id: str) -> Fulfilment:
        """Delivery to the customer's saved default address, for an order that named no
        fulfilment; FulfilmentRequired (422) when there is none, never a delivery to nowhere.
        Coordinates are dropped: only same-city uses them, and flash sales do not offer it."""
        found = self._store.get(customer_id)
        if found is None:
            raise FulfilmentRequired(
                "name a fulfilment, or save a default address first (PUT /me/address)", customer_id=customer_id
            )
        return Fulfilment(FulfilmentType.DELIVERY, address=replace(found, lat=None, lng=None))
