"""The one interface every payment provider implements (the HMAC webhook today, WeChat Pay v3 next).

`verify` turns a provider's HTTP notification into a `PaymentNotice` or raises (401 bad or stale
signature, 400 / 422 bad body); nothing after `verify` knows which provider spoke.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from shared.payments.model import PaymentNotice


class PaymentProvider(Protocol):
    def verify(self, headers: Mapping[str, str], raw_body: bytes, now_s: float) -> PaymentNotice: ...
