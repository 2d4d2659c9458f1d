"""What a person controls: how to reach them, which channels they allow, WeChat consents; and
what they (or a merchant admin) may read of the messages produced."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from shared.kernel.clock import today
from shared.kernel.errors import RuleViolation
from shared.kernel.events import EventType
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.notifications.model import CHANNELS, Channel, Contact, Page
from shared.notifications.templates import TEMPLATES, wechat_template_id

BIRTHDAY_NOTICE = "Birthday"


class ContactBook(Protocol):
    def get(self, user_id: str) -> Contact | None: ...

    def update(
        self, user_id: str, role: str, store_id: str | None, changes: dict[str, Any], now_ms: int
    ) -> Contact: ...

    def set_channels(
        self, user_id: str, role: str, store_id: str | None, off: set[Channel], on: set[Channel], now_ms: int
    ) -> Contact: ...

    def record_grants(
        self, user_id: str, template_ids: list[str], request: IdempotentRequest, response: StoredResponse
    ) -> StoredResponse: ...

    def grants(self, user_id: str) -> dict[str, int]: ...


class MessageLog(Protocol):
    def inbox(self, recipient: str, limit: int, cursor: dict | None, event_type: str | None) -> Page: ...

    def feed(self, limit: int, cursor: dict | None, event_type: str | None, today: date) -> Page: ...

    def of_notice(self, notice_id: str) -> list[Any]: ...


def contact_view(contact: Contact | None, user_id: str) -> dict[str, Any]:
    """The person's own details (only ever shown to them)."""
    contact = contact or Contact.unknown(user_id)
    return {
        "user_id": contact.user_id,
        "locale": str(contact.locale),
        "phone": contact.phone,
        "email": contact.email,
        "wechat_openid": contact.wechat_openid,
        "birthday": contact.birthday,
        "channels": preferences_view(contact),
    }


def preferences_view(contact: Contact | None) -> dict[str, bool]:
    return {str(channel): contact is None or contact.allows(channel) for channel in CHANNELS}


def save_contact(
    book: ContactBook, user_id: str, role: str, store_id: str | None, changes: dict[str, Any], now_ms: int
) -> Contact:
    """Set the given fields (None removes one). Role and store come from the token, so staff join
    their store's audience, and merchant admins the admins', by saving their details."""
    return book.update(user_id, role, store_id, changes, now_ms)


def set_preferences(
    book: ContactBook, user_id: str, role: str, store_id: str | None, channels: dict[str, bool], now_ms: int
) -> dict[str, bool]:
    """Per-channel opt-out: `{"sms": false}` stops SMS and leaves the other channels as they were."""
    off = {Channel(name) for name, allowed in channels.items() if not allowed}
    on = {Channel(name) for name, allowed in channels.items() if allowed}
    return preferences_view(book.set_channels(user_id, role, store_id, off, on, now_ms))


def known_template_ids(overrides: dict[str, str]) -> dict[str, str]:
    """{WeChat template id: message kind} of this deployment."""
    return {wechat_template_id(kind, overrides): kind for kind in TEMPLATES}


def record_consents(
    book: ContactBook, user_id: str, template_ids: list[str], overrides: dict[str, str], request: IdempotentRequest
) -> StoredResponse:
    """The templates the person accepted in the mini-program (`wx.requestSubscribeMessage`): one
    message each. Unknown template ids are refused (422), so nothing is granted for a typo."""
    known = known_template_ids(overrides)
    unknown = sorted(set(template_ids) - set(known))
    if unknown:
        raise RuleViolation("unknown WeChat template ids", template_ids=unknown)
    response = StoredResponse(200, {"granted": sorted(set(template_ids))})
    return book.record_grants(user_id, template_ids, request, response)


def own_messages(log: MessageLog, user_id: str, limit: int, cursor: dict | None) -> Page:
    """A person's own messages, newest first; nobody else's are reachable from here."""
    return log.inbox(user_id, limit, cursor, None)


def admin_feed(
    log: MessageLog, recipient: str | None, event: str | None, limit: int, cursor: dict | None, now_ms: int
) -> Page:
    """Messages produced, newest first. `event` is an event type (`OrderPaid`, `Birthday`) or one
    event's id; `recipient` a user id. The whole feed is read from the UTC day of `now_ms` back
    (its partitions are UTC days)."""
    event_type = event if event in _EVENT_TYPES else None
    if event and event_type is None:
        messages = [m for m in log.of_notice(event) if recipient is None or m.recipient == recipient]
        messages.sort(key=lambda m: m.created_at_ms, reverse=True)
        return Page(messages[:limit], None)
    if recipient:
        return log.inbox(recipient, limit, cursor, event_type)
    return log.feed(limit, cursor, event_type, today(now_ms))


_EVENT_TYPES = frozenset({*(str(t) for t in EventType), BIRTHDAY_NOTICE})
