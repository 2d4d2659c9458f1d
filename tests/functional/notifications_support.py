"""Fakes and helpers for the notification tests: a provider that records (and fails on demand),
the real DynamoDB stores wired into a Notifier, people registered through the HTTP API."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from chalice.test import Client

from shared.data.stores.notifications import DynamoContacts, DynamoMessages
from shared.kernel.clock import now_ms
from shared.notifications.delivery import Notifier
from shared.notifications.model import CHANNELS, Locale, Message
from shared.notifications.providers import ProviderError
from shared.notifications.templates import wechat_template_id
from tests.conftest import bearer


@dataclass
class RecordingProvider:
    """Takes every message, or fails: a share of calls (seeded), or every call to some recipients."""

    failure_rate: float = 0.0
    seed: int = 0
    always_fail: set[str] = field(default_factory=set)
    permanent: bool = False  # failures are refusals for good (e.g. WeChat 43101) rather than busy
    sent: list[tuple[str, str, str, str]] = field(default_factory=list)  # (notice, channel, recipient, text)
    failures: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def send(self, message: Message, address: str, locale: Locale) -> str:
        if message.recipient in self.always_fail or self._rng.random() < self.failure_rate:
            self.failures += 1
            raise ProviderError("provider said 503", retryable=not self.permanent)
        self.sent.append((message.notice_id, str(message.channel), message.recipient, message.rendered.text))
        return f"ref-{len(self.sent)}"

    def per_key(self) -> Counter[tuple[str, str, str]]:
        return Counter((notice, channel, recipient) for notice, channel, recipient, _ in self.sent)

    def to(self, recipient: str) -> list[tuple[str, str, str, str]]:
        return [s for s in self.sent if s[2] == recipient]


def notifier(provider: RecordingProvider, tries: int = 1) -> Notifier:
    return Notifier(
        messages=DynamoMessages(),
        contacts=DynamoContacts(),
        providers=dict.fromkeys(CHANNELS, provider),
        clock=now_ms,
        tries=tries,
        backoff_s=0,
        sleep=lambda _: None,
    )


def register(client: Client, token: str, **details: object) -> None:
    """The person saves their contact details through the API (role and store from the token)."""
    response = client.http.put("/me/contact", headers=bearer(token), body=_json(details))
    assert response.status_code == 200, response.body


def consent(client: Client, token: str, *kinds: str, key: str | None = None) -> dict:
    headers = bearer(token) | ({"Idempotency-Key": key} if key else {})
    template_ids = [wechat_template_id(kind) for kind in kinds]
    response = client.http.post("/me/wechat-consents", headers=headers, body=_json({"template_ids": template_ids}))
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def everyone(phone: str = "13800000001", locale: str = "zh") -> dict[str, str]:
    return {"phone": phone, "email": "someone@example.com", "wechat_openid": "o-openid-1", "locale": locale}


def _json(value: object) -> str:
    import json

    return json.dumps(value)
