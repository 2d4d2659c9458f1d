"""What the guides use cases need from outside: the organisation's directory and the bindings.

`shared.data.stores.guides` implements both on DynamoDB; `tests/fakes/guides.py` in memory, and
`tests/contract/test_guides_ports.py` runs one test class against both, so the fake cannot drift.
Refused conditions come back as domain errors: `ConcurrentUpdate` when what was read changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from shared.guides.model import Binding, BindingChange, Dealer, Distributor, Guide, ShareVisit, Store

Cursor = dict[str, Any] | None
Page = tuple[list[Any], Cursor]


class OrgDirectory(Protocol):
    def put_dealer(self, dealer: Dealer, now_ms: int) -> None: ...

    def get_dealer(self, dealer_id: str) -> Dealer | None: ...

    def list_dealers(self, limit: int, cursor: Cursor) -> tuple[list[Dealer], Cursor]: ...

    def put_store(self, store: Store, now_ms: int) -> None:
        """Create the store (a location of kind store) or change its name, dealer and account."""
        ...

    def get_store(self, store_id: str) -> Store | None: ...

    def list_stores(self, limit: int, cursor: Cursor) -> tuple[list[Store], Cursor]: ...

    def put_guide(self, guide: Guide, now_ms: int) -> None: ...

    def get_guide(self, guide_id: str) -> Guide | None: ...

    def list_guides(self, store_id: str | None, limit: int, cursor: Cursor) -> tuple[list[Guide], Cursor]: ...

    def put_distributor(
        self, distributor: Distributor, before: Distributor | None, ancestors: Sequence[Distributor], now_ms: int
    ) -> None:
        """Write `distributor` only if the stored one is still `before` (None: none stored) and
        every one of `ancestors` still has the version read, so two concurrent upline changes
        cannot together make a cycle (ConcurrentUpdate otherwise)."""
        ...

    def get_distributor(self, member_id: str) -> Distributor | None: ...

    def list_distributors(self, limit: int, cursor: Cursor) -> tuple[list[Distributor], Cursor]: ...


class BindingStore(Protocol):
    def get(self, customer_id: str) -> Binding | None:
        """The member's binding as last written (a consistent read), or None."""
        ...

    def save(self, before: Binding | None, after: Binding, change: BindingChange) -> None:
        """Write `after` and its audit line in one transaction, only if the stored binding is still
        `before` (its version; None: no binding stored). ConcurrentUpdate otherwise."""
        ...

    def history(self, customer_id: str, limit: int) -> list[BindingChange]:
        """The member's audit trail, newest first."""
        ...

    def record_share(self, visit: ShareVisit) -> None:
        """The member's last share visit (the newest replaces any older one)."""
        ...

    def last_share(self, customer_id: str) -> ShareVisit | None: ...

    def binding_and_share(self, customer_id: str) -> tuple[Binding | None, ShareVisit | None]:
        """Both in one read (an order's credit is resolved on the checkout path)."""
        ...
