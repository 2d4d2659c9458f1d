"""Items of any kind by key, in as few BatchGetItem round trips as DynamoDB allows (100 keys per
call). Mixed item classes come back as their own classes through the `entity` discriminator.

DynamoDB may leave keys unprocessed when it is busy; those are asked for again after a jittered
backoff, a bounded number of times, then the read fails as TemporarilyUnavailable (503).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.data.connection import connection, table_name
from shared.data.table import BaseItem
from shared.data.transactions import backoff, translated
from shared.kernel.errors import TemporarilyUnavailable

MAX_KEYS_PER_CALL = 100
UNPROCESSED_RETRIES = 5

Key = tuple[str, str]


def get_items(keys: Sequence[Key], *, consistent: bool = False) -> dict[Key, BaseItem]:
    """The items that exist among `keys`, by key. Missing items are simply absent."""
    wanted = list(dict.fromkeys(keys))
    found: dict[Key, BaseItem] = {}
    for start in range(0, len(wanted), MAX_KEYS_PER_CALL):
        for raw in _fetch(wanted[start : start + MAX_KEYS_PER_CALL], consistent):
            item = BaseItem.from_raw_data(raw)
            found[(item.pk, item.sk)] = item
    return found


def _fetch(keys: list[Key], consistent: bool) -> list[dict]:
    name = table_name()
    request: dict = {
        "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys],
        "ConsistentRead": consistent,
    }
    items: list[dict] = []
    for attempt in range(UNPROCESSED_RETRIES + 1):
        with translated():
            response = connection().dispatch("BatchGetItem", {"RequestItems": {name: request}})
        items.extend(response.get("Responses", {}).get(name, []))
        unprocessed = response.get("UnprocessedKeys", {}).get(name)
        if not unprocessed:
            return items
        request = unprocessed
        if attempt < UNPROCESSED_RETRIES:
            backoff(attempt)
    raise TemporarilyUnavailable("the database is busy; retry", unprocessed_keys=len(request["Keys"]))
