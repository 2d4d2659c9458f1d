"""Notifications in DynamoDB: messages (NotificationItem), contacts and preferences (ContactItem),
WeChat consent grants (WeChatGrantItem). Keys and access patterns: docs/data-model.md."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from pynamodb.exceptions import PutError

from shared.data.items.notifications import ContactItem, NotificationItem, WeChatGrantItem
from shared.data.stores import idempotency as idempotency_store
from shared.data.transactions import Transaction, TransactionCancelled, condition_failed, translated
from shared.kernel.errors import ConcurrentUpdate
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.notifications.model import Channel, Contact, Locale, Message, Page, Rendered, Status, iso

FEED_DAYS = 30  # how far back the admin feed walks its day partitions


# -- messages ------------------------------------------------------------------------------------
def _to_message(item: NotificationItem) -> Message:
    content: dict[str, Any] = item.content or {}
    channel = Channel(item.channel)
    rendered = Rendered(
        channel,
        text=str(content.get("text", "")),
        body=content.get("body"),
        template_id=content.get("template_id"),
        data=content.get("data"),
        page=content.get("page"),
    )
    return Message(
        notice_id=item.notice_id,
        event_type=item.event_type,
        template=item.template,
        channel=channel,
        recipient=item.recipient,
        rendered=rendered,
        status=Status(item.status),
        reason=item.reason,
        attempts=int(item.attempts or 0),
        grant_held=bool(item.grant_held),
        provider_ref=item.provider_ref,
        created_at_ms=int(item.created_at or 0),
        updated_at_ms=int(item.updated_at or 0),
    )


def _to_item(message: Message) -> NotificationItem:
    pk, sk = NotificationItem.key(message.notice_id, message.channel, message.recipient)
    created = iso(message.created_at_ms)
    return NotificationItem(
        pk,
        sk,
        notice_id=message.notice_id,
        event_type=message.event_type,
        template=message.template,
        channel=str(message.channel),
        recipient=message.recipient,
        status=str(message.status),
        reason=message.reason,
        attempts=message.attempts,
        grant_held=message.grant_held,
        provider_ref=message.provider_ref,
        content=message.rendered.to_dict(),
        created_at=message.created_at_ms,
        updated_at=message.updated_at_ms,
        gsi1pk=f"INBOX#{message.recipient}",
        gsi1sk=f"{created}#{message.notice_id}#{message.channel}",
        gsi2pk=f"NOTIFYFEED#{created[:10]}",
        gsi2sk=f"{created}#{message.notice_id}#{message.channel}#{message.recipient}",
    )


class DynamoMessages:
    def get(self, notice_id: str, channel: Channel, recipient: str) -> Message | None:
        with translated():
            try:
                return _to_message(
                    NotificationItem.get(*NotificationItem.key(notice_id, channel, recipient), consistent_read=True)
                )
            except NotificationItem.DoesNotExist:
                return None

    def create(self, message: Message) -> bool:
        """Store a new message; False if one with its key exists (a redelivered event)."""
        with translated():
            try:
                _to_item(message).save(condition=NotificationItem.pk.does_not_exist())
                return True
            except PutError as exc:
                if condition_failed(exc):
                    return False
                raise

    def save(self, message: Message, expected: Iterable[Status]) -> None:
        """Replace the message if its stored status is still one of `expected`."""
        allowed = [str(status) for status in expected]
        with translated():
            try:
                _to_item(message).save(condition=NotificationItem.status.is_in(*allowed))
            except PutError as exc:
                if condition_failed(exc):
                    raise ConcurrentUpdate("the message changed meanwhile", notice_id=message.notice_id) from exc
                raise

    def of_notice(self, notice_id: str) -> list[Message]:
        with translated():
            items = NotificationItem.query(f"NOTIFY#{notice_id}", NotificationItem.sk.startswith("MSG#"))
            return [_to_message(item) for item in items if isinstance(item, NotificationItem)]

    def hold_grant(self, message: Message, template_id: str, now_ms: int) -> bool:
        """Take one WeChat consent grant for this message, in one transaction with marking the
        message as holding it (so a retry never takes a second). False if no grant is left."""
        tx = Transaction()
        tx.update(
            WeChatGrantItem,
            WeChatGrantItem.key(message.recipient, template_id),
            [WeChatGrantItem.remaining.add(-1)],
            "grant",
            condition=WeChatGrantItem.remaining >= 1,
        )
        tx.update(
            NotificationItem,
            NotificationItem.key(message.notice_id, message.channel, message.recipient),
            [NotificationItem.grant_held.set(True), NotificationItem.updated_at.set(now_ms)],
            "message",
            condition=NotificationItem.status.is_in(str(Status.PENDING), str(Status.FAILED))
            & (NotificationItem.grant_held == False),  # noqa: E712 (a condition expression, not a comparison)
        )
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if "message" in cancelled.failed:
                raise ConcurrentUpdate("the message changed meanwhile", notice_id=message.notice_id) from cancelled
            return False
        return True

    def return_grant(self, message: Message, template_id: str, now_ms: int) -> None:
        """Give the grant back (the message was never delivered)."""
        tx = Transaction()
        tx.update(
            WeChatGrantItem,
            WeChatGrantItem.key(message.recipient, template_id),
            [WeChatGrantItem.remaining.add(1)],
            "grant",
            condition=WeChatGrantItem.pk.exists(),
        )
        tx.update(
            NotificationItem,
            NotificationItem.key(message.notice_id, message.channel, message.recipient),
            [NotificationItem.grant_held.set(False), NotificationItem.updated_at.set(now_ms)],
            "message",
            condition=NotificationItem.grant_held == True,  # noqa: E712
        )
        with contextlib.suppress(TransactionCancelled):  # already returned
            tx.commit()

    # -- reading -------------------------------------------------------------------------------
    def inbox(self, recipient: str, limit: int, cursor: dict | None, event_type: str | None) -> Page:
        """A person's messages, newest first (gsi1)."""
        with translated():
            result = NotificationItem.gsi1.query(
                f"INBOX#{recipient}",
                scan_index_forward=False,
                limit=limit,
                last_evaluated_key=cursor,
                filter_condition=(NotificationItem.event_type == event_type) if event_type else None,
            )
            messages = [_to_message(item) for item in result if isinstance(item, NotificationItem)]
            return Page(messages, result.last_evaluated_key if len(messages) >= limit else None)

    def feed(self, limit: int, cursor: dict | None, event_type: str | None, today: date) -> Page:
        """Everyone's messages, newest first: one gsi2 partition per day, walked backwards."""
        day = date.fromisoformat(cursor["day"]) if cursor else today
        key = cursor.get("key") if cursor else None
        oldest = today - timedelta(days=FEED_DAYS)
        found: list[Message] = []
        while day >= oldest:
            with translated():
                result = NotificationItem.gsi2.query(
                    f"NOTIFYFEED#{day.isoformat()}",
                    scan_index_forward=False,
                    limit=limit - len(found),
                    last_evaluated_key=key,
                    filter_condition=(NotificationItem.event_type == event_type) if event_type else None,
                )
                found.extend(_to_message(item) for item in result if isinstance(item, NotificationItem))
                key = result.last_evaluated_key
            if len(found) >= limit:
                if key:
                    return Page(found, {"day": day.isoformat(), "key": key})
                earlier = day - timedelta(days=1)
                return Page(found, {"day": earlier.isoformat()} if earlier >= oldest else None)
            day, key = day - timedelta(days=1), None
        return Page(found, None)


# -- contacts, preferences, grants ----------------------------------------------------------------
def _to_contact(item: ContactItem) -> Contact:
    return Contact(
        user_id=item.user_id,
        role=item.role,
        store_id=item.store_id,
        locale=Locale(item.locale or "zh"),
        phone=item.phone,
        email=item.email,
        wechat_openid=item.wechat_openid,
        birthday=item.birthday,
        opted_out=frozenset(Channel(c) for c in (item.opted_out or ())),
    )


def audience_key(role: str | None, store_id: str | None) -> str | None:
    """Which audience a person belongs to, by the role and store of their token."""
    if role == "store_staff" and store_id:
        return f"AUDIENCE#STORE#{store_id}"
    if role == "merchant_admin":
        return "AUDIENCE#ADMINS"
    return None


class DynamoContacts:
    def get(self, user_id: str) -> Contact | None:
        with translated():
            try:
                return _to_contact(ContactItem.get(*ContactItem.key(user_id), consistent_read=True))
            except ContactItem.DoesNotExist:
                return None

    def audience(self, key: str) -> list[Contact]:
        with translated():
            return [_to_contact(i) for i in ContactItem.gsi1.query(key) if isinstance(i, ContactItem)]

    def with_birthday(self, mmdd: str) -> list[Contact]:
        with translated():
            return [_to_contact(i) for i in ContactItem.gsi2.query(f"BIRTHDAY#{mmdd}") if isinstance(i, ContactItem)]

    def update(self, user_id: str, role: str, store_id: str | None, changes: dict[str, Any], now_ms: int) -> Contact:
        """Set (or, for None, remove) the given fields; one UpdateItem, so two devices saving
        different fields never undo each other."""
        actions: list[Any] = [*_identity(user_id, role, store_id, now_ms)]
        for name, value in changes.items():
            attribute = getattr(ContactItem, name)
            actions.append(attribute.set(value) if value not in (None, set(), frozenset()) else attribute.remove())
        if "birthday" in changes:
            birthday = changes["birthday"]
            if birthday and role == "customer":
                mmdd = birthday.replace("-", "")
                actions += [ContactItem.gsi2pk.set(f"BIRTHDAY#{mmdd}"), ContactItem.gsi2sk.set(user_id)]
            else:
                actions += [ContactItem.gsi2pk.remove(), ContactItem.gsi2sk.remove()]
        item = ContactItem(*ContactItem.key(user_id))
        with translated():
            item.update(actions=actions)
        return _to_contact(item)

    def set_channels(
        self, user_id: str, role: str, store_id: str | None, off: set[Channel], on: set[Channel], now_ms: int
    ) -> Contact:
        """Turn channels off (ADD to the opted-out set) and on (DELETE from it): set operations, so
        concurrent changes of different channels both stick. DynamoDB refuses two operations on
        one attribute in an update, hence one update for each direction."""
        item = ContactItem(*ContactItem.key(user_id))
        identity = _identity(user_id, role, store_id, now_ms)
        with translated():
            if off or not on:
                extra = [ContactItem.opted_out.add({str(c) for c in off})] if off else []
                item.update(actions=[*identity, *extra])
            if on:
                item.update(actions=[*identity, ContactItem.opted_out.delete({str(c) for c in on})])
        return _to_contact(item)

    def record_grants(
        self, user_id: str, template_ids: list[str], request: IdempotentRequest, response: StoredResponse
    ) -> StoredResponse:
        """One more message allowed per accepted template, in one transaction with the request's
        idempotency record: a client retrying the same consent never doubles a grant."""
        tx = Transaction()
        for template_id in dict.fromkeys(template_ids):
            tx.update(
                WeChatGrantItem,
                WeChatGrantItem.key(user_id, template_id),
                [
                    WeChatGrantItem.entity.set(WeChatGrantItem),
                    WeChatGrantItem.user_id.set(user_id),
                    WeChatGrantItem.template_id.set(template_id),
                    WeChatGrantItem.remaining.add(1),
                ],
                f"grant:{template_id}",
            )
        return idempotency_store.commit(tx, request, response)

    def grant(self, user_id: str, template_ids: Iterable[str]) -> dict[str, int]:
        """One more message allowed per accepted template; returns what is left per template."""
        left: dict[str, int] = {}
        for template_id in dict.fromkeys(template_ids):
            item = WeChatGrantItem(*WeChatGrantItem.key(user_id, template_id))
            with translated():
                item.update(
                    actions=[
                        WeChatGrantItem.entity.set(WeChatGrantItem),
                        WeChatGrantItem.user_id.set(user_id),
                        WeChatGrantItem.template_id.set(template_id),
                        WeChatGrantItem.remaining.add(1),
                    ]
                )
            left[template_id] = int(item.remaining)
        return left

    def grants(self, user_id: str) -> dict[str, int]:
        with translated():
            items = WeChatGrantItem.query(f"USER#{user_id}", WeChatGrantItem.sk.startswith("WXGRANT#"))
            return {i.template_id: int(i.remaining) for i in items if isinstance(i, WeChatGrantItem)}


def _identity(user_id: str, role: str, store_id: str | None, now_ms: int) -> list[Any]:
    audience = audience_key(role, store_id)
    actions: list[Any] = [
        ContactItem.entity.set(ContactItem),
        ContactItem.user_id.set(user_id),
        ContactItem.role.set(role),
        ContactItem.updated_at.set(now_ms),
        ContactItem.created_at.set(ContactItem.created_at | now_ms),
    ]
    actions.append(ContactItem.store_id.set(store_id) if store_id else ContactItem.store_id.remove())
    if audience:
        actions += [ContactItem.gsi1pk.set(audience), ContactItem.gsi1sk.set(user_id)]
    else:
        actions += [ContactItem.gsi1pk.remove(), ContactItem.gsi1sk.remove()]
    return actions
