"""The customer's saved default address (docs/orders.md, "The saved address")."""

from __future__ import annotations

from chalice import Response

from functions.checkout.blueprint import bp
from shared.kernel.identity import Role
from shared.ordering.addresses import address_view
from shared.platform import bootstrap
from shared.web.api import Api, ok, parse, principal
from shared.web.requests import AddressIn

_: Api = bp


@bp.route("/me/address", methods=["PUT"], roles=[Role.CUSTOMER])
def put_my_address() -> Response:
    body = parse(AddressIn)
    return ok(address_view(bootstrap.address_book().save(principal().sub, body.to_domain())))


@bp.route("/me/address", methods=["GET"], roles=[Role.CUSTOMER])
def get_my_address() -> Response:
    return ok(address_view(bootstrap.address_book().default(principal().sub)))
