"""Delivering notifications: the consumer of order and stock events, and the birthday greetings.

Exactly once to the person. Each message is keyed by (notice id, channel, recipient) and moves
PENDING -> SENT | SKIPPED | FAILED -> ... -> SENT | DEAD, every move a conditional write:

- The event consumer (shared.messaging.consumers) already turns a redelivered event into a no-op once the
  event is DONE; and if the event is handled again (a crash between sending and marking), each
  message is found by its key and a SENT or SKIPPED one is not sent again.
- A provider failure is retried in place a few times with jittered backoff; if it still fails the
  message is FAILED with the reason and the event is reported failed, so SQS brings it back after
  the consumer's backoff; messages already SENT are not touched. On the last receive the consumer
  dead-letters the event and `gave_up` turns its unfinished messages DEAD with the reason.
- What cannot be made exactly once: a provider that took the message but whose answer was lost
  (a timeout), or a crash after the provider answered and before SENT was written. The message is
  then sent again on retry (at least once); no provider API here offers an idempotency key.
- Opted-out channels, missing addresses and channels without a provider are SKIPPED with the
  reason, as is a WeChat message for which the person has no consent grant left.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

from shared.kernel.errors import TemporarilyUnavailable
from shared.kernel.events import DomainEvent
from shared.notifications.model import CHANNELS, FINAL, Channel, Contact, Message, SkipReason, Status
from shared.notifications.providers import Provider, ProviderError
from shared.notifications.recipients import Addressee, Audience, plan
from shared.notifications.templates import params_of, render
from shared.platform.observability import count, logger

# Birthdays are days in China (UTC+8, no daylight saving), whatever the server's clock.
BUSINESS_TZ = timezone(timedelta(hours=8))
UNFINISHED = (Status.PENDING, Status.FAILED)


class Messages(Protocol):
    def get(self, notice_id: str, channel: Channel, recipient: str) -> Message | None: ...

    def create(self, message: Message) -> bool: ...

    def save(self, message: Message, expected: Iterable[Status]) -> None: ...

    def of_notice(self, notice_id: str) -> list[Message]: ...

    def hold_grant(self, message: Message, template_id: str, now_ms: int) -> bool: ...

    def return_grant(self, message: Message, template_id: str, now_ms: int) -> None: ...


class Contacts(Protocol):
    def get(self, user_id: str) -> Contact | None: ...

    def audience(self, key: str) -> list[Contact]: ...

    def with_birthday(self, mmdd: str) -> list[Contact]: ...


class DeliveryFailed(Exception):
    """Some messages of the notice could not be sent yet; the reasons, one per message."""


@dataclass
class Notifier:
    """The notifications consumer (shared.messaging.ports.Consumer) and the birthday greeter."""

    messages: Messages
    contacts: Contacts
    providers: dict[Channel, Provider]
    clock: Callable[[], int]  # epoch ms
    tries: int = 3  # provider calls per message per delivery, before the queue's own backoff
    backoff_s: float = 0.2
    sleep: Callable[[float], None] = time.sleep
    template_ids: dict[str, str] = field(default_factory=dict)  # WeChat ids of this deployment
    name: str = "notifications"
    rng: random.Random = field(default_factory=random.Random)
    # The member's birthday coupon for a year, asked before the greeting (its name, or None).
    birthday_gift: Callable[[str, int], str | None] | None = None

    # -- the event consumer --------------------------------------------------------------------
    def handle(self, event: DomainEvent) -> None:
        failures: list[str] = []
        for addressee in plan(event):
            for contact in self._reach(addressee):
                params = params_of(event.payload, contact.locale)
                failures += self._notify(event.event_id, str(event.type), addressee.template, contact, params)
        if failures:
            raise DeliveryFailed("; ".join(failures))

    def gave_up(self, event: DomainEvent, reason: str) -> None:
        """The event went to the dead-letter queue: its unfinished messages are DEAD, with why."""
        now = self.clock()
        for message in self.messages.of_notice(event.event_id):
            if message.status not in UNFINISHED:
                continue
            self.messages.save(message.moved(Status.DEAD, now, reason=message.reason or reason), UNFINISHED)
            if message.grant_held and message.rendered.template_id:
                self.messages.return_grant(message, message.rendered.template_id, now)
            count("NotificationsDead", channel=str(message.channel))

    # -- birthdays -----------------------------------------------------------------------------
    def greet_birthdays(self, now_ms: int) -> int:
        """Greets every customer whose birthday is today (China time), once a year: the notice id
        holds the year, so runs later the same day (or a retry) find the greeting already sent.
        Returns the number of people looked at."""
        today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(BUSINESS_TZ).date()
        seen = 0
        for mmdd in birthday_keys(today):
            for contact in self.contacts.with_birthday(mmdd):
                if contact.role not in (None, "customer"):
                    continue
                seen += 1
                try:
                    gift = self.birthday_gift(contact.user_id, today.year) if self.birthday_gift else None
                except TemporarilyUnavailable:
                    logger.warning("birthday coupon not issued yet: greeting in the next run")
                    continue
                template = "Birthday" if gift is None else "BirthdayCoupon"
                params = params_of({"coupon_name": gift} if gift else {}, contact.locale)
                notice_id = f"birthday-{today.year}-{contact.user_id}"
                failures = self._notify(notice_id, "Birthday", template, contact, params)
                if failures:
                    logger.warning("birthday greeting not sent yet", extra={"failures": failures})
        return seen

    # -- one notice to one person ----------------------------------------------------------------
    def _reach(self, addressee: Addressee) -> list[Contact]:
        if addressee.audience is Audience.CUSTOMER:
            return [self.contacts.get(addressee.target) or Contact.unknown(addressee.target)]
        key = "AUDIENCE#ADMINS" if addressee.audience is Audience.ADMINS else f"AUDIENCE#STORE#{addressee.target}"
        return self.contacts.audience(key)

    def _notify(self, notice_id: str, event_type: str, template: str, contact: Contact, params: dict) -> list[str]:
        failures = []
        for channel in CHANNELS:
            problem = self._deliver(notice_id, event_type, template, contact, channel, params)
            if problem:
                failures.append(f"{channel}->{contact.user_id}: {problem}")
        return failures

    def _deliver(
        self, notice_id: str, event_type: str, template: str, contact: Contact, channel: Channel, params: dict
    ) -> str | None:
        """Take one message as far as it can go now; the failure reason if it must be retried."""
        message = self.messages.get(notice_id, channel, contact.user_id)
        if message is None:
            message = self._first(notice_id, event_type, template, contact, channel, params)
        if message.status in FINAL:
            return None
        skip = self._skip_reason(contact, channel)
        if skip is not None:
            self._finish(message, Status.SKIPPED, reason=skip)
            return None
        if channel is Channel.WECHAT and not message.grant_held:
            if not self.messages.hold_grant(message, message.rendered.template_id or "", self.clock()):
                self._finish(message, Status.SKIPPED, reason=SkipReason.NO_CONSENT)
                return None
            message = replace(message, grant_held=True)
        return self._send(message, contact)

    def _first(
        self, notice_id: str, event_type: str, template: str, contact: Contact, channel: Channel, params: dict
    ) -> Message:
        now = self.clock()
        message = Message(
            notice_id=notice_id,
            event_type=event_type,
            template=template,
            channel=channel,
            recipient=contact.user_id,
            rendered=render(template, channel, contact.locale, params, self.template_ids),
            created_at_ms=now,
            updated_at_ms=now,
        )
        if self.messages.create(message):
            return message
        # Created by a delivery we raced with: continue from what it stored.
        return self.messages.get(notice_id, channel, contact.user_id) or message

    def _skip_reason(self, contact: Contact, channel: Channel) -> SkipReason | None:
        if not contact.allows(channel):
            return SkipReason.OPTED_OUT
        if not contact.address(channel):
            return SkipReason.NO_ADDRESS
        if channel not in self.providers:
            return SkipReason.NO_PROVIDER
        return None

    def _send(self, message: Message, contact: Contact) -> str | None:
        provider, address = self.providers[message.channel], contact.address(message.channel) or ""
        attempts = message.attempts
        error: ProviderError | None = None
        for attempt in range(self.tries):
            attempts += 1
            try:
                reference = provider.send(message, address, contact.locale)
            except ProviderError as exc:
                error = exc
                if not exc.retryable:
                    break
                if attempt + 1 < self.tries:
                    self.sleep(self.rng.uniform(0, self.backoff_s * 2**attempt))  # full jitter
                continue
            self._finish(message, Status.SENT, attempts=attempts, provider_ref=reference, reason=None)
            count("NotificationsSent", channel=str(message.channel))
            return None
        assert error is not None
        if not error.retryable:
            self._finish(message, Status.SKIPPED, attempts=attempts, reason=f"{SkipReason.REJECTED}: {error.reason}")
            if message.grant_held and message.rendered.template_id:
                self.messages.return_grant(message, message.rendered.template_id, self.clock())
            return None
        failed = message.moved(Status.FAILED, self.clock(), attempts=attempts, reason=error.reason)
        self.messages.save(failed, UNFINISHED)
        count("NotificationsFailed", channel=str(message.channel))
        return error.reason

    def _finish(self, message: Message, status: Status, **changes: object) -> None:
        self.messages.save(message.moved(status, self.clock(), **changes), UNFINISHED)
        if status is Status.SKIPPED:
            count("NotificationsSkipped", reason=str(changes.get("reason", "")).split(":")[0])


def birthday_keys(today: date) -> list[str]:
    """The MMDD index keys to greet today: 29 February birthdays are greeted on the 28th in
    years without one."""
    keys = [today.strftime("%m%d")]
    if keys[0] == "0228" and not _is_leap(today.year):
        keys.append("0229")
    return keys


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
