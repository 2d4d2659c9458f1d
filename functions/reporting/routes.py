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
from shared.web.api import header, ok, query_str

if TYPE_CHECKING:
    from functions.reporting import models
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.reporting.models")


CSV = "text/csv; charset=utf-8"


@bp.route("/finance/reconciliation", methods=["GET"], roles=[Role.FINANCE])
def reconciliation() -> Response:
    return ok(bootstrap.reports().reconciliation(models.period_end_ms(query_str("period_end"))))


@bp.route("/admin/reports/sales", methods=["GET"], roles=[Role.MERCHANT_ADMIN, Role.FINANCE])
def sales() -> Response:
    first, last = models.sales_range(query_str("from"), query_str("to"))
    dimension = models.group_by(query_str("group_by"))
    if models.wants_csv(header("Accept")):
        lines = bootstrap.reports().sales_csv(dimension, first, last)
        return Response(body="".join(lines), status_code=200, headers={"Content-Type": CSV})
    return ok(bootstrap.reports().sales(dimension, first, last))
