"""Demo contact details for `make dev`, so notifications have someone to reach: the demo customer
(every channel, WeChat consents, a birthday today), the staff of S001 and the merchant admin.
Idempotent: a second run changes nothing (grants are only given to someone who has none)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.notifications.delivery import BUSINESS_TZ
from shared.notifications.templates import TEMPLATES, wechat_template_id
from shared.platform import bootstrap

GRANTS_PER_TEMPLATE = 5


def seed_contacts(now_ms: int) -> int:
    contacts = bootstrap.contacts()
    today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(BUSINESS_TZ).strftime("%m-%d")
    people = [
        (
            "c-demo",
            "customer",
            None,
            {
                "locale": "zh",
                "phone": "13800000000",
                "email": "c-demo@example.com",
                "wechat_openid": "o-demo-openid",
                "birthday": today,
            },
        ),
        ("staff-S001", "store_staff", "S001", {"locale": "zh", "phone": "13900000001"}),
        ("admin", "merchant_admin", None, {"locale": "en", "email": "admin@example.com"}),
    ]
    for user_id, role, store_id, details in people:
        contacts.update(user_id, role, store_id, details, now_ms)
    if not contacts.grants("c-demo"):
        template_ids = {wechat_template_id(kind, bootstrap.ready().template_ids()) for kind in TEMPLATES}
        for _ in range(GRANTS_PER_TEMPLATE):
            contacts.grant("c-demo", sorted(template_ids))
    return len(people)
