from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from shared.data.table import BaseItem


class ProfitShareItem(BaseItem, discriminator="ProfitShare"):
    """pk `PROFITSHARE#<order id>`, sk `SHARE#<out_order_no>`: one WeChat Pay profit share of an order
    (docs/payments.md, "Profit sharing"), in a partition of its own so the order's reads never meet it.
    `doc` is the share as JSON (receivers, returns); every change is conditional on `version`.
    gsi2 `PROFITSHARES#OPEN` / `<next check iso>#<out_order_no>` while PENDING or PROCESSING (the query
    job's index, sparse); gsi1 `PROFITSHARES#ATTENTION` / `<updated iso>#<out_order_no>` while finance
    must look at it (refused, a receiver closed, a return failed)."""

    order_id = UnicodeAttribute()
    out_order_no = UnicodeAttribute()
    status = UnicodeAttribute()
    version = NumberAttribute()
    doc = UnicodeAttribute()

    @staticmethod
    def key(order_id: str, out_order_no: str) -> tuple[str, str]:
        return f"PROFITSHARE#{order_id}", f"SHARE#{out_order_no}"
