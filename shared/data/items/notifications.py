from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute

from shared.data.table import BaseItem


class NotificationItem(BaseItem, discriminator="Notification"):
    """One message: pk `NOTIFY#<notice_id>` (an event id, or `birthday-<year>-<user>`), sk
    `MSG#<channel>#<recipient>`. The key IS the exactly-once rule: created with
    `attribute_not_exists(pk)`, so a redelivered event finds its message and sends nothing twice.
    gsi1 `INBOX#<recipient>` / `<created iso>#<notice_id>#<channel>`: a person's messages, newest first.
    gsi2 `NOTIFYFEED#<yyyy-mm-dd>` / `<created iso>#<notice_id>#<channel>#<recipient>`: everyone's
    messages of a day, newest first (the admin feed), one partition per day.
    Every change after creation is a put conditional on the status read."""

    notice_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    template = UnicodeAttribute()
    channel = UnicodeAttribute()
    recipient = UnicodeAttribute()
    status = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    grant_held = BooleanAttribute(default=False)
    provider_ref = UnicodeAttribute(null=True)
    content = JSONAttribute()  # the rendered message: text, and per channel body / template_id, data, page
    updated_at = NumberAttribute()

    @staticmethod
    def key(notice_id: str, channel: str, recipient: str) -> tuple[str, str]:
        return f"NOTIFY#{notice_id}", f"MSG#{channel}#{recipient}"


class ContactItem(BaseItem, discriminator="Contact"):
    """How to reach a person: pk `USER#<sub>`, sk `CONTACT`. Written by the person
    (`PUT /me/contact`, `PUT /me/notification-preferences`) with attribute-level updates.
    gsi1 `AUDIENCE#STORE#<store_id>` (store staff) or `AUDIENCE#ADMINS` (merchant admins) / `<sub>`:
    who to tell about a store's orders and low stock.
    gsi2 `BIRTHDAY#<MMDD>` / `<sub>` (customers who gave a birthday): the daily greeting's query."""

    user_id = UnicodeAttribute()
    role = UnicodeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)
    locale = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    wechat_openid = UnicodeAttribute(null=True)
    birthday = UnicodeAttribute(null=True)  # "MM-DD"
    opted_out = UnicodeSetAttribute(null=True)  # channels the person turned off
    updated_at = NumberAttribute(null=True)

    @staticmethod
    def key(user_id: str) -> tuple[str, str]:
        return f"USER#{user_id}", "CONTACT"


class WeChatGrantItem(BaseItem, discriminator="WeChatGrant"):
    """WeChat subscribe-message consent: pk `USER#<sub>`, sk `WXGRANT#<template_id>`. Each time
    the person accepts the template in the mini-program, `remaining` grows by one; each message
    sent takes one, under the condition `remaining >= 1` (one grant, one message)."""

    user_id = UnicodeAttribute()
    template_id = UnicodeAttribute()
    remaining = NumberAttribute()

    @staticmethod
    def key(user_id: str, template_id: str) -> tuple[str, str]:
        return f"USER#{user_id}", f"WXGRANT#{template_id}"
