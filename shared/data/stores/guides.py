"""The organisation and the bindings in DynamoDB (docs/data-model.md, "Guides"): implements
shared.guides.ports.OrgDirectory and BindingStore."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from shared.data.batch_get import get_items
from shared.data.items.guides import BindingAuditItem, BindingItem, DistributorItem, ShareVisitItem
from shared.data.items.org import LocationItem, PartyItem
from shared.data.transactions import Transaction, TransactionCancelled, condition_failed, translated
from shared.guides.model import (
    Binding,
    BindingChange,
    ChangeKind,
    Dealer,
    Distributor,
    Guide,
    ShareVisit,
    Store,
)
from shared.guides.ports import Cursor
from shared.kernel.clock import iso
from shared.kernel.credited import Credited
from shared.kernel.errors import ConcurrentUpdate, Conflict

LOCATIONS_PARTITION = "LOCATIONS"  # shared.data.stores.locations lists every location here
DEALERS = "PARTIES#dealer"
GUIDES = "PARTIES#guide"
DISTRIBUTORS = "DISTRIBUTORS"


class DynamoOrgDirectory:
    # -- dealers ---------------------------------------------------------------------------
    def put_dealer(self, dealer: Dealer, now_ms: int) -> None:
        pk, sk = PartyItem.key(dealer.dealer_id)
        with translated():
            PartyItem(
                pk,
                sk,
                party_id=dealer.dealer_id,
                kind="dealer",
                name=dealer.name,
                payout_account=dealer.payout_account,
                gsi1pk=DEALERS,
                gsi1sk=dealer.dealer_id,
                created_at=now_ms,
            ).save()

    def get_dealer(self, dealer_id: str) -> Dealer | None:
        item = _party(dealer_id)
        if item is None or item.kind != "dealer":
            return None
        return Dealer(dealer_id=item.party_id, name=item.name, payout_account=item.payout_account)

    def list_dealers(self, limit: int, cursor: Cursor) -> tuple[list[Dealer], Cursor]:
        with translated():
            result = PartyItem.gsi1.query(DEALERS, limit=limit, last_evaluated_key=cursor)
            found = [
                Dealer(dealer_id=i.party_id, name=i.name, payout_account=i.payout_account)
                for i in result
                if isinstance(i, PartyItem)
            ]
            return found, result.last_evaluated_key

    # -- stores (locations of kind store) ---------------------------------------------------
    def put_store(self, store: Store, now_ms: int) -> None:
        pk, sk = LocationItem.key(store.store_id)
        actions: list[Action] = [
            LocationItem.entity.set(LocationItem),
            LocationItem.location_id.set(store.store_id),
            LocationItem.kind.set("store"),
            LocationItem.name.set(store.name),
            LocationItem.gsi1pk.set(LOCATIONS_PARTITION),
            LocationItem.gsi1sk.set(store.store_id),
            LocationItem.created_at.set(LocationItem.created_at | now_ms),
        ]
        actions += _set_or_remove(LocationItem.dealer_id, store.dealer_id)
        actions += _set_or_remove(LocationItem.payout_account, store.payout_account)
        if store.city is not None:
            actions.append(LocationItem.city.set(store.city))
        # Never the warehouse: a location that is not a store keeps what it is.
        is_store = LocationItem.kind.does_not_exist() | (LocationItem.kind == "store")
        with translated():
            try:
                LocationItem(pk, sk).update(actions=actions, condition=is_store)
            except UpdateError as exc:
                if not condition_failed(exc):
                    raise
                raise Conflict("this location is not a store", store_id=store.store_id) from exc

    def get_store(self, store_id: str) -> Store | None:
        pk, sk = LocationItem.key(store_id)
        with translated():
            try:
                item = LocationItem.get(pk, sk)
            except LocationItem.DoesNotExist:
                return None
        return _store(item) if item.kind == "store" else None

    def list_stores(self, limit: int, cursor: Cursor) -> tuple[list[Store], Cursor]:
        with translated():
            result = LocationItem.gsi1.query(
                LOCATIONS_PARTITION,
                filter_condition=LocationItem.kind == "store",
                limit=limit,
                last_evaluated_key=cursor,
            )
            found = [_store(i) for i in result if isinstance(i, LocationItem)]
            return found, result.last_evaluated_key

    # -- guides ----------------------------------------------------------------------------
    def put_guide(self, guide: Guide, now_ms: int) -> None:
        pk, sk = PartyItem.key(guide.guide_id)
        with translated():
            PartyItem(
                pk,
                sk,
                party_id=guide.guide_id,
                kind="guide",
                name=guide.name,
                store_id=guide.store_id,
                member_id=guide.member_id,
                payout_account=guide.payout_account,
                gsi1pk=GUIDES,
                gsi1sk=f"{guide.store_id}#{guide.guide_id}",
                created_at=now_ms,
            ).save()

    def get_guide(self, guide_id: str) -> Guide | None:
        item = _party(guide_id)
        if item is None or item.kind != "guide" or item.store_id is None:
            return None
        return _guide(item)

    def list_guides(self, store_id: str | None, limit: int, cursor: Cursor) -> tuple[list[Guide], Cursor]:
        condition = PartyItem.gsi1sk.startswith(f"{store_id}#") if store_id else None
        with translated():
            result = PartyItem.gsi1.query(GUIDES, condition, limit=limit, last_evaluated_key=cursor)
            found = [_guide(i) for i in result if isinstance(i, PartyItem)]
            return found, result.last_evaluated_key

    # -- distributors ----------------------------------------------------------------------
    def put_distributor(
        self, distributor: Distributor, before: Distributor | None, ancestors: Sequence[Distributor], now_ms: int
    ) -> None:
        pk, sk = DistributorItem.key(distributor.member_id)
        item = DistributorItem(
            pk,
            sk,
            member_id=distributor.member_id,
            name=distributor.name,
            parent_id=distributor.parent_id,
            payout_account=distributor.payout_account,
            version=distributor.version,
            gsi1pk=DISTRIBUTORS,
            gsi1sk=distributor.member_id,
            created_at=now_ms,
        )
        tx = Transaction()
        unchanged = DistributorItem.pk.does_not_exist() if before is None else DistributorItem.version == before.version
        tx.put(item, "distributor", unchanged)
        for n, ancestor in enumerate(ancestors):
            tx.check(
                DistributorItem,
                DistributorItem.key(ancestor.member_id),
                DistributorItem.version == ancestor.version,
                f"ancestor {n}",
            )
        try:
            tx.commit()
        except TransactionCancelled as exc:
            raise ConcurrentUpdate("a distributor changed meanwhile", failed=exc.failed) from exc

    def get_distributor(self, member_id: str) -> Distributor | None:
        pk, sk = DistributorItem.key(member_id)
        with translated():
            try:
                return _distributor(DistributorItem.get(pk, sk, consistent_read=True))
            except DistributorItem.DoesNotExist:
                return None

    def list_distributors(self, limit: int, cursor: Cursor) -> tuple[list[Distributor], Cursor]:
        with translated():
            result = DistributorItem.gsi1.query(DISTRIBUTORS, limit=limit, last_evaluated_key=cursor)
            found = [_distributor(i) for i in result if isinstance(i, DistributorItem)]
            return found, result.last_evaluated_key


class DynamoBindings:
    def get(self, customer_id: str) -> Binding | None:
        pk, sk = BindingItem.key(customer_id)
        with translated():
            try:
                item = BindingItem.get(pk, sk, consistent_read=True)
            except BindingItem.DoesNotExist:
                return None
        return _binding(item)

    def binding_and_share(self, customer_id: str) -> tuple[Binding | None, ShareVisit | None]:
        """One consistent BatchGetItem: a member who binds and orders at once is credited."""
        found = get_items([BindingItem.key(customer_id), ShareVisitItem.key(customer_id)], consistent=True)
        binding = next((_binding(i) for i in found.values() if isinstance(i, BindingItem)), None)
        share = next((_share(i) for i in found.values() if isinstance(i, ShareVisitItem)), None)
        return binding, share

    def save(self, before: Binding | None, after: Binding, change: BindingChange) -> None:
        pk, sk = BindingItem.key(after.customer_id)
        binding = BindingItem(
            pk,
            sk,
            customer_id=after.customer_id,
            guide_id=after.guide_id,
            store_id=after.store_id,
            dealer_id=after.dealer_id,
            bound_at=after.bound_at_ms,
            expires_at=after.expires_at_ms,
            version=after.version,
            gsi1pk=f"GUIDE_MEMBERS#{after.guide_id}",
            gsi1sk=f"{iso(after.bound_at_ms)}#{after.customer_id}",
            created_at=change.at_ms,
        )
        audit_pk, audit_sk = BindingAuditItem.key(after.customer_id, after.version)
        audit = BindingAuditItem(
            audit_pk,
            audit_sk,
            customer_id=change.customer_id,
            kind=change.kind.value,
            to_guide_id=change.to_guide_id,
            from_guide_id=change.from_guide_id,
            by=change.by,
            at=change.at_ms,
            reason=change.reason,
            created_at=change.at_ms,
        )
        tx = Transaction()
        unchanged = BindingItem.pk.does_not_exist() if before is None else BindingItem.version == before.version
        tx.put(binding, "binding", unchanged)
        tx.put(audit, "audit", BindingAuditItem.pk.does_not_exist())
        try:
            tx.commit()
        except TransactionCancelled as exc:
            raise ConcurrentUpdate("the binding changed meanwhile", customer_id=after.customer_id) from exc

    def history(self, customer_id: str, limit: int) -> list[BindingChange]:
        pk, _ = BindingItem.key(customer_id)
        with translated():
            found = BindingAuditItem.query(
                pk,
                BindingAuditItem.sk.startswith("AUDIT#"),
                scan_index_forward=False,
                limit=limit,
                consistent_read=True,
            )
            return [
                BindingChange(
                    customer_id=i.customer_id,
                    kind=ChangeKind(i.kind),
                    to_guide_id=i.to_guide_id,
                    from_guide_id=i.from_guide_id,
                    by=i.by,
                    at_ms=int(i.at),
                    reason=i.reason,
                )
                for i in found
                if isinstance(i, BindingAuditItem)
            ]

    def record_share(self, visit: ShareVisit) -> None:
        pk, sk = ShareVisitItem.key(visit.customer_id)
        with translated():
            ShareVisitItem(
                pk,
                sk,
                customer_id=visit.customer_id,
                sharer_id=visit.sharer_id,
                at=visit.at_ms,
                credit=visit.shared.to_dict(),
                created_at=visit.at_ms,
            ).save()

    def last_share(self, customer_id: str) -> ShareVisit | None:
        pk, sk = ShareVisitItem.key(customer_id)
        with translated():
            try:
                item = ShareVisitItem.get(pk, sk)
            except ShareVisitItem.DoesNotExist:
                return None
        return _share(item)


def _party(party_id: str) -> PartyItem | None:
    pk, sk = PartyItem.key(party_id)
    with translated():
        try:
            return PartyItem.get(pk, sk)
        except PartyItem.DoesNotExist:
            return None


def _guide(item: PartyItem) -> Guide:
    assert item.store_id is not None
    return Guide(
        guide_id=item.party_id,
        name=item.name,
        store_id=item.store_id,
        member_id=item.member_id,
        payout_account=item.payout_account,
    )


def _store(item: LocationItem) -> Store:
    return Store(
        store_id=item.location_id,
        name=item.name,
        dealer_id=item.dealer_id,
        city=item.city,
        payout_account=item.payout_account,
    )


def _distributor(item: DistributorItem) -> Distributor:
    return Distributor(
        member_id=item.member_id,
        name=item.name,
        parent_id=item.parent_id,
        payout_account=item.payout_account,
        version=int(item.version),
    )


def _set_or_remove(attribute: Any, value: str | None) -> list[Action]:
    return [attribute.set(value)] if value is not None else [attribute.remove()]


def _binding(item: BindingItem) -> Binding:
    return Binding(
        customer_id=item.customer_id,
        guide_id=item.guide_id,
        store_id=item.store_id,
        dealer_id=item.dealer_id,
        bound_at_ms=int(item.bound_at),
        expires_at_ms=int(item.expires_at) if item.expires_at is not None else None,
        version=int(item.version),
    )


def _share(item: ShareVisitItem) -> ShareVisit:
    return ShareVisit(
        customer_id=item.customer_id,
        sharer_id=item.sharer_id,
        at_ms=int(item.at),
        shared=Credited.from_dict(item.credit),
    )
