"""In-memory organisation directory and binding store (shared.guides.ports), with the same
conditions as shared.data.stores.guides; tests/contract/test_guides_ports.py runs both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.guides.model import Binding, BindingChange, Dealer, Distributor, Guide, ShareVisit, Store
from shared.kernel.errors import ConcurrentUpdate, Conflict


def _page(items: list[Any], key: Any, limit: int, cursor: dict[str, Any] | None) -> tuple[list[Any], dict | None]:
    ordered = sorted(items, key=key)
    start = 0
    if cursor is not None:
        start = next((n + 1 for n, item in enumerate(ordered) if key(item) == cursor["after"]), len(ordered))
    page = ordered[start : start + limit]
    more = start + limit < len(ordered)
    return page, ({"after": key(page[-1])} if more and page else None)


class MemoryOrgDirectory:
    def __init__(self) -> None:
        self.dealers: dict[str, Dealer] = {}
        self.stores: dict[str, Store] = {}
        self.guides: dict[str, Guide] = {}
        self.distributors: dict[str, Distributor] = {}
        self.not_stores: set[str] = {"WH"}

    def put_dealer(self, dealer: Dealer, now_ms: int) -> None:
        self.dealers[dealer.dealer_id] = dealer

    def get_dealer(self, dealer_id: str) -> Dealer | None:
        return self.dealers.get(dealer_id)

    def list_dealers(self, limit: int, cursor: dict | None) -> tuple[list[Dealer], dict | None]:
        return _page(list(self.dealers.values()), lambda d: d.dealer_id, limit, cursor)

    def put_store(self, store: Store, now_ms: int) -> None:
        if store.store_id in self.not_stores:
            raise Conflict("this location is not a store", store_id=store.store_id)
        self.stores[store.store_id] = store

    def get_store(self, store_id: str) -> Store | None:
        return self.stores.get(store_id)

    def list_stores(self, limit: int, cursor: dict | None) -> tuple[list[Store], dict | None]:
        return _page(list(self.stores.values()), lambda s: s.store_id, limit, cursor)

    def put_guide(self, guide: Guide, now_ms: int) -> None:
        self.guides[guide.guide_id] = guide

    def get_guide(self, guide_id: str) -> Guide | None:
        return self.guides.get(guide_id)

    def list_guides(self, store_id: str | None, limit: int, cursor: dict | None) -> tuple[list[Guide], dict | None]:
        found = [g for g in self.guides.values() if store_id is None or g.store_id == store_id]
        return _page(found, lambda g: f"{g.store_id}#{g.guide_id}", limit, cursor)

    def put_distributor(
        self, distributor: Distributor, before: Distributor | None, ancestors: Sequence[Distributor], now_ms: int
    ) -> None:
        stored = self.distributors.get(distributor.member_id)
        if (stored is None) != (before is None) or (stored and before and stored.version != before.version):
            raise ConcurrentUpdate("a distributor changed meanwhile")
        for ancestor in ancestors:
            held = self.distributors.get(ancestor.member_id)
            if held is None or held.version != ancestor.version:
                raise ConcurrentUpdate("a distributor changed meanwhile")
        self.distributors[distributor.member_id] = distributor

    def get_distributor(self, member_id: str) -> Distributor | None:
        return self.distributors.get(member_id)

    def list_distributors(self, limit: int, cursor: dict | None) -> tuple[list[Distributor], dict | None]:
        return _page(list(self.distributors.values()), lambda d: d.member_id, limit, cursor)


class MemoryBindings:
    def __init__(self) -> None:
        self.bindings: dict[str, Binding] = {}
        self.audit: dict[str, list[BindingChange]] = {}
        self.shares: dict[str, ShareVisit] = {}

    def get(self, customer_id: str) -> Binding | None:
        return self.bindings.get(customer_id)

    def save(self, before: Binding | None, after: Binding, change: BindingChange) -> None:
        stored = self.bindings.get(after.customer_id)
        if (stored is None) != (before is None) or (stored and before and stored.version != before.version):
            raise ConcurrentUpdate("the binding changed meanwhile", customer_id=after.customer_id)
        self.bindings[after.customer_id] = after
        self.audit.setdefault(after.customer_id, []).append(change)

    def history(self, customer_id: str, limit: int) -> list[BindingChange]:
        return list(reversed(self.audit.get(customer_id, [])))[:limit]

    def record_share(self, visit: ShareVisit) -> None:
        self.shares[visit.customer_id] = visit

    def last_share(self, customer_id: str) -> ShareVisit | None:
        return self.shares.get(customer_id)

    def binding_and_share(self, customer_id: str) -> tuple[Binding | None, ShareVisit | None]:
        return self.get(customer_id), self.last_share(customer_id)
