"""What the payment providers need from the outside.

`PaymentProvider.verify` turns a provider's HTTP notification into a `PaymentNotice` or raises (401
bad or stale signature, 400 / 422 bad body); nothing after `verify` knows which provider spoke. The
HMAC webhook and WeChat Pay's callback both implement it.

WeChat Pay also needs: the order to pay (`PayableOrders`, the ordering capability's order passed in),
where its prepays are kept (`PrepayStore`, DynamoDB in production), the HTTPS transport to WeChat
Pay (`HttpTransport`: urllib, not AWS, so not the data layer) and the payment path that applies a
verified payment (`PaymentApplier`: the order lifecycle's, idempotent per transaction id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from shared.payments.model import PayableOrder, PaymentNotice, Prepay


class PaymentProvider(Protocol):
    def verify(self, headers: Mapping[str, str], raw_body: bytes, now_s: float) -> PaymentNotice: ...


class PaymentApplier(Protocol):
    def __call__(self, notice: PaymentNotice) -> object:
        """Apply a verified payment once per transaction id (a duplicate, late or mismatched one is
        recorded for refund or refused, never lost); raises the domain error of a refusal."""
        ...


class PayableOrders(Protocol):
    def get(self, order_id: str) -> PayableOrder | None: ...


class PrepayStore(Protocol):
    def get(self, order_id: str) -> Prepay | None: ...

    def keep(self, prepay: Prepay, replacing: Prepay | None) -> Prepay:
        """Store `prepay` if the stored prepay of its order is still `replacing` (None: there is none)
        and return it; when another request stored one first, return that one (nothing written)."""
        ...


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class HttpTransport(Protocol):
    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpReply:
        """One HTTPS exchange; any status is a reply. Raises ProviderUnavailable when there is no
        answer (timeout, refused or dropped connection)."""
        ...
