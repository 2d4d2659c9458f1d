"""Distributors, bindings, their audit trail and share visits (shared/data/stores/guides.py)."""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class DistributorItem(BaseItem, discriminator="Distributor"):
    """pk `DISTRIBUTOR#<member sub>`, sk `DISTRIBUTOR`; gsi1 `DISTRIBUTORS` / `<member sub>` lists
    them. Written conditional on `version` (and on the upline's versions, in one transaction)."""

    member_id = UnicodeAttribute()
    name = UnicodeAttribute()
    parent_id = UnicodeAttribute(null=True)
    payout_account = UnicodeAttribute(null=True)
    version = NumberAttribute()

    @staticmethod
    def key(member_id: str) -> tuple[str, str]:
        return f"DISTRIBUTOR#{member_id}", "DISTRIBUTOR"


class BindingItem(BaseItem, discriminator="Binding"):
    """pk `BINDING#<customer sub>`, sk `BINDING`: the member's guide, and so store and dealer.
    gsi1 `GUIDE_MEMBERS#<guide_id>` / `<bound_at iso>#<customer>`: a guide's members. Every change
    is a Put conditional on `version` with its `BindingAuditItem` in the same transaction."""

    customer_id = UnicodeAttribute()
    guide_id = UnicodeAttribute()
    store_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute(null=True)
    bound_at = NumberAttribute()  # epoch ms
    expires_at = NumberAttribute(null=True)  # epoch ms; none: the first binding wins for good
    version = NumberAttribute()

    @staticmethod
    def key(customer_id: str) -> tuple[str, str]:
        return f"BINDING#{customer_id}", "BINDING"


class BindingAuditItem(BaseItem, discriminator="BindingAudit"):
    """pk `BINDING#<customer sub>`, sk `AUDIT#<version, zero-padded>`: one per binding change, in
    the change's transaction (the version makes it unique and ordered)."""

    customer_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # bind | renew | reassign
    to_guide_id = UnicodeAttribute()
    from_guide_id = UnicodeAttribute(null=True)
    by = UnicodeAttribute()
    at = NumberAttribute()  # epoch ms
    reason = UnicodeAttribute(null=True)

    @staticmethod
    def key(customer_id: str, version: int) -> tuple[str, str]:
        return f"BINDING#{customer_id}", f"AUDIT#{version:010d}"


class ShareVisitItem(BaseItem, discriminator="ShareVisit"):
    """pk `BINDING#<customer sub>`, sk `SHARE`: the last share link the member opened, with the
    parties it credits (resolved when it was opened), so checkout reads credit with the cart."""

    customer_id = UnicodeAttribute()
    sharer_id = UnicodeAttribute()
    at = NumberAttribute()  # epoch ms
    credit = JSONAttribute(null=True)  # shared.kernel.credited.Credited.to_dict

    @staticmethod
    def key(customer_id: str) -> tuple[str, str]:
        return f"BINDING#{customer_id}", "SHARE"
