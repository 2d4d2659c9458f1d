"""API.md "Commission and settlement": `PUT /admin/commission-rules` (and `GET` the current) and
`GET /me/commissions`, a payee's own ledger: a guide's (its `sub`), a store's (store staff, by
the token's store), a distributor's (a customer who is one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from functions.commission.blueprint import bp
from shared.kernel.errors import Forbidden
from shared.kernel.identity import Principal, Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import decode_cursor, encode_cursor, ok, parse, principal, query_int, query_str

if TYPE_CHECKING:
    from functions.commission import models
    from shared.commission import statements
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.commission.models")
    statements = lazy_import("shared.commission.statements")


@bp.route("/admin/commission-rules", methods=["PUT"], roles=[Role.MERCHANT_ADMIN])
def put_rules() -> Response:
    return ok(bootstrap.commission_rules().put(parse(models.CommissionRulesIn).draft()))


@bp.route("/admin/commission-rules", methods=["GET"], roles=[Role.MERCHANT_ADMIN, Role.FINANCE])
def get_rules() -> Response:
    return ok(bootstrap.commission_rules().current())


def _payee(who: Principal) -> str:
    if who.role is Role.GUIDE:
        return f"guide:{who.sub}"
    if who.role is Role.STORE_STAFF and who.store_id:
        return f"store:{who.store_id}"
    if who.role is Role.DEALER and who.dealer_id:
        return f"dealer:{who.dealer_id}"
    if who.role is Role.CUSTOMER:
        return f"distributor:{who.sub}"  # a customer who is no distributor has an empty ledger
    raise Forbidden("only payees have a commission ledger", role=who.role.value)


@bp.route("/me/commissions", methods=["GET"], roles=[Role.GUIDE, Role.STORE_STAFF, Role.CUSTOMER, Role.DEALER])
def my_ledger() -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    body, cursor = statements.my_commissions(
        bootstrap.commission_ledger_store(), _payee(principal()), limit, decode_cursor(query_str("cursor"))
    )
    return ok({**body, "next_cursor": encode_cursor(cursor)})
