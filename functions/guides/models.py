"""Request models of the organisation and binding API (docs/openapi.yaml states the same constraints)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.guides.model import Dealer, Guide, Store
from shared.kernel.errors import NotFound
from shared.kernel.values import LongText, Name

PARTY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
PartyId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
# A member's id is the `sub` of its token: any printable text up to 128 characters.
MemberId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
PayoutAccount = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
City = Annotated[str, Field(min_length=1, max_length=64)]


def path_id(value: str, what: str) -> str:
    """An id from the path: one we could never have stored is a 404, not a query."""
    if not PARTY_ID.fullmatch(value):
        raise NotFound(f"no such {what}", id=value[:64])
    return value


class DealerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    payout_account: PayoutAccount | None = None

    def to_dealer(self, dealer_id: str) -> Dealer:
        return Dealer(dealer_id=dealer_id, name=self.name, payout_account=self.payout_account)


class StoreIn(BaseModel):
    """`dealer_id` left out: a self-operated store."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    dealer_id: PartyId | None = None
    city: City | None = None
    payout_account: PayoutAccount | None = None

    def to_store(self, store_id: str) -> Store:
        return Store(
            store_id=store_id,
            name=self.name,
            dealer_id=self.dealer_id,
            city=self.city,
            payout_account=self.payout_account,
        )


class GuideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    store_id: PartyId
    member_id: MemberId | None = None
    payout_account: PayoutAccount | None = None

    def to_guide(self, guide_id: str) -> Guide:
        return Guide(
            guide_id=guide_id,
            name=self.name,
            store_id=self.store_id,
            member_id=self.member_id,
            payout_account=self.payout_account,
        )


class DistributorIn(BaseModel):
    """`parent_id`: the distributor who recruited this one (paid as level 2)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    parent_id: MemberId | None = None
    payout_account: PayoutAccount | None = None


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guide_id: PartyId
    reason: LongText


class ShareVisitIn(BaseModel):
    """The `share` parameter of the link the member opened: a guide's or a distributor's id."""

    model_config = ConfigDict(extra="forbid")

    share: MemberId
