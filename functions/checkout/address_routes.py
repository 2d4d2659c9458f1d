"""The customer's saved default address (docs/orders.md, "The saved address")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from functions.checkout.blueprint import bp
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import Api, ok, parse, principal

if TYPE_CHECKING:
    from shared.ordering import addresses
    from shared.web import requests
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    addresses = lazy_import("shared.ordering.addresses")
    requests = lazy_import("shared.web.requests")


_: Api = bp


@bp.route("/me/address", methods=["PUT"], roles=[Role.CUSTOMER])
def put_my_address() -> Response:
    body = parse(requests.AddressIn)
    return ok(addresses.address_view(bootstrap.address_book().save(principal().sub, body.to_domain())))


@bp.route("/me/address", methods=["GET"], roles=[Role.CUSTOMER])
def get_my_address() -> Response:
    return ok(addresses.address_view(bootstrap.address_book().default(principal().sub)))
