from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from shared.data.table import BaseItem


class EventItem(BaseItem, discriminator="Event"):
    """The outbox: pk `EVENT#<event_id>`, sk `EVENT`. Written in the transaction of the change it
    announces; the stream relay forwards its INSERT. `ttl` removes it after a week (housekeeping)."""

    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    aggregate_id = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    body = UnicodeAttribute()  # the JSON message, exactly as consumers receive it

    @staticmethod
    def key(event_id: str) -> tuple[str, str]:
        return f"EVENT#{event_id}", "EVENT"
