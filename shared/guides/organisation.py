"""Merchant admins create and list dealers, stores, guides and distributors (docs/commission.md,
"Organisation"). Every reference is checked: a store's dealer, a guide's store and a distributor's
upline must exist, and an upline never makes a cycle."""

from __future__ import annotations

from shared.guides.model import Dealer, Distributor, DistributorCycle, Guide, Store, UnknownParty, check_upline
from shared.guides.ports import Cursor, OrgDirectory
from shared.kernel.clock import Clock
from shared.kernel.errors import ConcurrentUpdate

# Deeper than any real upline; a longer chain is refused rather than walked for ever.
MAX_UPLINE_DEPTH = 32
ATTEMPTS = 4


class OrgAdmin:
    def __init__(self, directory: OrgDirectory, clock: Clock) -> None:
        self._directory = directory
        self._clock = clock

    @property
    def directory(self) -> OrgDirectory:
        return self._directory

    def put_dealer(self, dealer: Dealer) -> Dealer:
        self._directory.put_dealer(dealer, self._clock.now_ms())
        return dealer

    def list_dealers(self, limit: int, cursor: Cursor) -> tuple[list[Dealer], Cursor]:
        return self._directory.list_dealers(limit, cursor)

    def put_store(self, store: Store) -> Store:
        """A store of a dealer that exists, or self-operated (no dealer)."""
        if store.dealer_id is not None and self._directory.get_dealer(store.dealer_id) is None:
            raise UnknownParty("no such dealer", kind="dealer", dealer_id=store.dealer_id)
        self._directory.put_store(store, self._clock.now_ms())
        return store

    def list_stores(self, limit: int, cursor: Cursor) -> tuple[list[Store], Cursor]:
        return self._directory.list_stores(limit, cursor)

    def put_guide(self, guide: Guide) -> Guide:
        if self._directory.get_store(guide.store_id) is None:
            raise UnknownParty("no such store", kind="store", store_id=guide.store_id)
        self._directory.put_guide(guide, self._clock.now_ms())
        return guide

    def list_guides(self, store_id: str | None, limit: int, cursor: Cursor) -> tuple[list[Guide], Cursor]:
        return self._directory.list_guides(store_id, limit, cursor)

    def put_distributor(
        self, member_id: str, name: str, parent_id: str | None, payout_account: str | None
    ) -> Distributor:
        """Create or change a distributor. Its upline must be a distributor, not itself, and not
        below it; the write is conditional on the distributor and every ancestor read, so two
        concurrent changes cannot close a cycle between them (the loser reads again and is refused)."""
        for _ in range(ATTEMPTS):
            before = self._directory.get_distributor(member_id)
            ancestors = self._ancestors(parent_id)
            check_upline(member_id, ancestors)
            after = Distributor(
                member_id=member_id,
                name=name,
                parent_id=parent_id,
                payout_account=payout_account,
                version=(before.version + 1) if before else 1,
            )
            try:
                self._directory.put_distributor(after, before, ancestors, self._clock.now_ms())
                return after
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate("the distributors keep changing; retry", member_id=member_id)

    def list_distributors(self, limit: int, cursor: Cursor) -> tuple[list[Distributor], Cursor]:
        return self._directory.list_distributors(limit, cursor)

    def payee_details(self, payee: str) -> tuple[str | None, str | None]:
        """A payee's name and payout account reference, by its ledger key `<kind>:<id>` (statements)."""
        kind, _, party_id = payee.partition(":")
        party: Dealer | Store | Guide | Distributor | None = {
            "dealer": self._directory.get_dealer,
            "store": self._directory.get_store,
            "guide": self._directory.get_guide,
            "distributor": self._directory.get_distributor,
        }.get(kind, lambda _: None)(party_id)
        return (party.name, party.payout_account) if party is not None else (None, None)

    def _ancestors(self, parent_id: str | None) -> list[Distributor]:
        chain: list[Distributor] = []
        next_id = parent_id
        while next_id is not None:
            if any(a.member_id == next_id for a in chain) or len(chain) >= MAX_UPLINE_DEPTH:
                # Only a chain already broken (or absurdly deep) gets here: refuse to extend it.
                raise DistributorCycle("the upline's own chain does not end", chain=[a.member_id for a in chain])
            found = self._directory.get_distributor(next_id)
            if found is None:
                raise UnknownParty("no such distributor", kind="distributor", member_id=next_id)
            chain.append(found)
            next_id = found.parent_id
        return chain
