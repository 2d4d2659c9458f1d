"""The single table, as PynamoDB sees it.

Key design (docs/data-model.md lists every access pattern):
- `pk` / `sk`: the item's identity; an entity's related items share its `pk`.
- `gsi1pk` / `gsi1sk` (index `gsi1`): the second way in, e.g. a catalogue listing or a customer's orders.
- `gsi2pk` / `gsi2sk` (index `gsi2`): sparse, time-ordered work queues: orders due to expire,
  birthdays. An item leaves the queue by removing its `gsi2pk`.
- `entity`: the discriminator, so a query on the base class returns the right item classes.
- `ttl`: epoch seconds for housekeeping only (idempotency records); never a business deadline,
  since DynamoDB deletes expired items "within days".

The table itself is defined once, in `infra/template.yaml`; `tests/functional/test_table_definition.py`
proves these models agree with it.
"""

from __future__ import annotations

from pynamodb.attributes import (
    DiscriminatorAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model


class Gsi1(GlobalSecondaryIndex["BaseItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex["BaseItem"]):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class BaseItem(Model):
    class Meta:
        table_name = "unbound"  # set by shared.data.connection.bind at cold start
        region = "ap-east-1"
        host: str | None = None
        max_retry_attempts = 3  # botocore "standard" mode: bounded, jittered exponential backoff
        connect_timeout_seconds = 2
        read_timeout_seconds = 5
        max_pool_connections = 50

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    entity = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    ttl = TTLAttribute(null=True)
    created_at = NumberAttribute(null=True)  # epoch milliseconds

    gsi1 = Gsi1()
    gsi2 = Gsi2()


KEY_ATTRIBUTES = ("pk", "sk")
INDEXES = {"gsi1": ("gsi1pk", "gsi1sk"), "gsi2": ("gsi2pk", "gsi2sk")}
