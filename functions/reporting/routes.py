"""API.md "Commission and settlement": `GET /finance/reconciliation?period_end=` (finance) and
`GET /admin/reports/sales?from=&to=&group_by=` (merchant admins and finance; `Accept: text/csv`
for CSV)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from functions.reporting.blueprint import bp
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import decode_cursor, encode_cursor, header, ok, query_int, query_str

if TYPE_CHECKING:
    from functions.reporting import models
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.reporting.models")


CSV = "text/csv; charset=utf-8"


@bp.route("/finance/reconciliation", methods=["GET"], roles=[Role.FINANCE])
def reconciliation() -> Response:
    after = models.differences_after(decode_cursor(query_str("cursor")))
    limit = query_int("limit", 100, low=1, high=100)
    report = bootstrap.reports().reconciliation(models.period_end_ms(query_str("period_end")), after, limit)
    last = report.pop("differences_next")
    cursor = None if last is None else {"at": last[0], "order_id": last[1]}
    return ok({**report, "next_cursor": encode_cursor(cursor)})  # continues `differences`


@bp.route("/admin/reports/sales", methods=["GET"], roles=[Role.MERCHANT_ADMIN, Role.FINANCE])
def sales() -> Response:
    first, last = models.sales_range(query_str("from"), query_str("to"))
    dimension = models.group_by(query_str("group_by"))
    if models.wants_csv(header("Accept")):
        lines = bootstrap.reports().sales_csv(dimension, first, last)
        return Response(body="".join(lines), status_code=200, headers={"Content-Type": CSV})
    return ok(bootstrap.reports().sales(dimension, first, last))
