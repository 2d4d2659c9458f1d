"""Channels, contacts and messages: the nouns of notifications."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    WECHAT = "wechat"  # a WeChat mini-program subscribe message
    SMS = "sms"
    EMAIL = "email"


CHANNELS = tuple(Channel)


class Locale(StrEnum):
    ZH = "zh"
    EN = "en"


class Status(StrEnum):
    PENDING = "pending"  # created, not yet sent
    FAILED = "failed"  # the provider failed; the event will be retried
    SENT = "sent"
    SKIPPED = "skipped"  # deliberately not sent: `reason` says why
    DEAD = "dead"  # retries exhausted; the event is in the dead-letter queue with the reason


FINAL = frozenset({Status.SENT, Status.SKIPPED, Status.DEAD})


class SkipReason(StrEnum):
    OPTED_OUT = "opted_out"  # the person turned this channel off
    NO_ADDRESS = "no_address"  # no phone / email / WeChat openid on file
    NO_CONSENT = "no_consent"  # WeChat: no subscribe-message grant left for this template
    NO_PROVIDER = "no_provider"  # this deployment has no provider for the channel
    REJECTED = "rejected"  # the provider refused it for good (e.g. the user revoked consent)


@dataclass(frozen=True)
class Contact:
    """How to reach one person. Role and store come from their token when they saved it."""

    user_id: str
    role: str | None = None
    store_id: str | None = None
    locale: Locale = Locale.ZH
    phone: str | None = None
    email: str | None = None
    wechat_openid: str | None = None
    birthday: str | None = None  # "MM-DD"
    opted_out: frozenset[Channel] = frozenset()

    def address(self, channel: Channel) -> str | None:
        return {Channel.WECHAT: self.wechat_openid, Channel.SMS: self.phone, Channel.EMAIL: self.email}[channel]

    def allows(self, channel: Channel) -> bool:
        return channel not in self.opted_out

    @classmethod
    def unknown(cls, user_id: str) -> Contact:
        """Someone who never gave contact details: every channel is skipped for lack of an address."""
        return cls(user_id=user_id)


@dataclass(frozen=True)
class Rendered:
    """One message's content on one channel."""

    channel: Channel
    text: str  # the SMS text; the email subject; a one-line summary of a WeChat message
    body: str | None = None  # email body
    template_id: str | None = None  # WeChat subscribe-message template
    data: dict[str, dict[str, str]] | None = None  # WeChat template fields: {"thing1": {"value": "..."}}
    page: str | None = None  # WeChat: the mini-program page the message opens

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "channel"}


@dataclass(frozen=True)
class Message:
    """One message to one person on one channel about one notice (an event, or a birthday).
    Its identity, (notice_id, channel, recipient), is what makes it exactly once."""

    notice_id: str
    event_type: str
    template: str
    channel: Channel
    recipient: str
    rendered: Rendered
    status: Status = Status.PENDING
    reason: str | None = None
    attempts: int = 0
    grant_held: bool = False  # a WeChat consent grant is reserved for this message
    provider_ref: str | None = None
    created_at_ms: int = 0
    updated_at_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, Channel, str]:
        return self.notice_id, self.channel, self.recipient

    def moved(self, status: Status, at_ms: int, **changes: Any) -> Message:
        return replace(self, status=status, updated_at_ms=at_ms, **changes)

    def view(self) -> dict[str, Any]:
        """As API.md lists messages, plus `reason` and the rendered `content`."""
        return {
            "id": f"{self.notice_id}:{self.channel}:{self.recipient}",
            "recipient": self.recipient,
            "channel": str(self.channel),
            "event": self.event_type,
            "event_id": self.notice_id,
            "template": self.template,
            "status": str(self.status),
            "reason": self.reason,
            "text": self.rendered.text,
            "content": self.rendered.to_dict(),
            "attempts": self.attempts,
            "created_at": iso(self.created_at_ms),
        }


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    next_cursor: dict[str, Any] | None
