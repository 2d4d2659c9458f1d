from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class ConsumedItem(BaseItem, discriminator="Consumed"):
    """pk `CONSUMED#<consumer>#<event_id>`, sk `CONSUMED`: one consumer's progress on one event.

    `state` CLAIMED while a worker holds the lease (`lease_until`, epoch ms; `token` names the
    holder), DONE once the consumer's effect succeeded. A DONE item makes every redelivery of the
    event a no-op; an expired CLAIMED item (its worker crashed) may be claimed again. `ttl` clears it
    after the longest time a message can still arrive (queue retention plus the stream's 24 h)."""

    consumer = UnicodeAttribute()
    event_id = UnicodeAttribute()
    state = UnicodeAttribute()  # CLAIMED | DONE
    token = UnicodeAttribute()
    lease_until = NumberAttribute()

    @staticmethod
    def key(consumer: str, event_id: str) -> tuple[str, str]:
        return f"CONSUMED#{consumer}#{event_id}", "CONSUMED"
