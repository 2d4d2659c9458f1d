"""API.md "Commission and settlement": `POST /finance/settlements` (202, idempotent per period),
`GET /finance/settlements/{run_id}` (progress), its `statement.csv`, and (docs/openapi.yaml) the
entries behind one payee's row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from functions.settlement.blueprint import bp
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import json_response, ok, parse

if TYPE_CHECKING:
    from functions.settlement import models
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.settlement.models")


FINANCE = [Role.FINANCE]
CSV = "text/csv; charset=utf-8"


@bp.route("/finance/settlements", methods=["POST"], roles=FINANCE)
def start_run() -> Response:
    runs = bootstrap.settlement_runs()
    run = runs.start(parse(models.SettlementIn).period_end_ms())
    return json_response(runs.view(run.run_id), 202)


@bp.route("/finance/settlements/{run_id}", methods=["GET"], roles=FINANCE)
def show_run(run_id: str) -> Response:
    return ok(bootstrap.settlement_runs().view(models.checked_run_id(run_id)))


@bp.route("/finance/settlements/{run_id}/statement.csv", methods=["GET"], roles=FINANCE)
def statement(run_id: str) -> Response:
    lines = bootstrap.settlement_runs().statement_csv(models.checked_run_id(run_id))
    return Response(body="".join(lines), status_code=200, headers={"Content-Type": CSV})


@bp.route("/finance/settlements/{run_id}/payees/{payee_file}", methods=["GET"], roles=FINANCE)
def payee_statement(run_id: str, payee_file: str) -> Response:
    lines = bootstrap.settlement_runs().payee_csv(models.checked_run_id(run_id), models.payee_of(payee_file))
    return Response(body="".join(lines), status_code=200, headers={"Content-Type": CSV})
