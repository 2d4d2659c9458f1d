"""Personal data out of logs (DESIGN.md, "Observability"): what a log line or the notification sink
may print of a phone number, an address or a pickup code. Logging only; stored data is untouched."""

from __future__ import annotations

import re
from typing import Any

# Keys whose values are personal wherever they appear: an address's parts, contact details, codes.
PII_KEYS = frozenset(
    {"phone", "mobile", "address", "name", "recipient", "recipient_name", "detail", "email", "id_card", "pickup_code"}
)
_PHONE = re.compile(r"(?<![0-9])(1[0-9]{2})[0-9]{4}([0-9]{4})(?![0-9])")  # a mainland mobile number
# Six or more digits, possibly split by single spaces or hyphens: a pickup code (six), a phone
# written "+86 137 0000 0000", a tracking number. Amounts ("¥168.00") and order refs stay readable.
_DIGIT_RUN = re.compile(r"\+?(?<![0-9])[0-9](?:[ -]?[0-9]){5,}(?![0-9])")


def mask_pii(value: Any, key: str | None = None) -> Any:
    """A copy of `value` with phone numbers, addresses, names and codes masked."""
    if isinstance(value, dict):
        return {k: mask_pii(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_pii(v, key) for v in value]
    if key in PII_KEYS and value is not None:
        text = str(value)
        return text[:1] + "***" if text and key != "pickup_code" else "******"
    if isinstance(value, str):
        return _PHONE.sub(r"\1****\2", value)
    return value


def mask_text(text: str) -> str:
    """Free text people read (a rendered message): every run of six or more digits masked."""
    return _DIGIT_RUN.sub(lambda found: "*" * len(found.group()), text)
