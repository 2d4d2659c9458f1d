"""API.md "Commission and settlement": `POST /finance/settlements` (202, idempotent per period),
`GET /finance/settlements/{run_id}` (progress), its `statement.csv`, and (docs/openapi.yaml) the
entries behind one payee's row."""

from __future__ import annotations

from chalice import Response

from functions.settlement.blueprint import bp
from functions.settlement.models import SettlementIn, checked_run_id, payee_of
from shared.kernel.identity import Role
from shared.platform import bootstrap
from shared.web.api import json_response, ok, parse

FINANCE = [Role.FINANCE]
CSV = "text/csv; charset=utf-8"


@bp.route("/finance/settlements", methods=["POST"], roles=FINANCE)
def start_run() -> Response:
    runs = bootstrap.settlement_runs()
    run = runs.start(parse(SettlementIn).period_end_ms())
    return json_response(runs.view(run.run_id), 202)


@bp.route("/finance/settlements/{run_id}", methods=["GET"], roles=FINANCE)
def show_run(run_id: str) -> Response:
    return ok(bootstrap.settlement_runs().view(checked_run_id(run_id)))


@bp.route("/finance/settlements/{run_id}/statement.csv", methods=["GET"], roles=FINANCE)
def statement(run_id: str) -> Response:
    lines = bootstrap.settlement_runs().statement_csv(checked_run_id(run_id))
    return Response(body="".join(lines), status_code=200, headers={"Content-Type": CSV})


@bp.route("/finance/settlements/{run_id}/payees/{payee_file}", methods=["GET"], roles=FINANCE)
def payee_statement(run_id: str, payee_file: str) -> Response:
    lines = bootstrap.settlement_runs().payee_csv(checked_run_id(run_id), payee_of(payee_file))
    return Response(body="".join(lines), status_code=200, headers={"Content-Type": CSV})
