"""Customers' saved default addresses (`shared.ordering.addresses.SavedAddresses`) on the table."""

from __future__ import annotations

from shared.data.items.orders import SavedAddressItem
from shared.data.transactions import translated
from shared.ordering.addresses import address_view
from shared.ordering.fulfilment import Address


class DynamoSavedAddresses:
    def get(self, customer_id: str) -> Address | None:
        with translated():
            try:
                item = SavedAddressItem.get(*SavedAddressItem.key(customer_id), consistent_read=True)
            except SavedAddressItem.DoesNotExist:
                return None
        body = item.address
        return Address(body["recipient"], body["phone"], body["city"], body["detail"], body.get("lat"), body.get("lng"))

    def put(self, customer_id: str, address: Address, now_ms: int) -> None:
        item = SavedAddressItem(
            *SavedAddressItem.key(customer_id),
            customer_id=customer_id,
            address=address_view(address),
            created_at=now_ms,
        )
        with translated():
            item.save()
