"""`POST /checkout/quote`: what the cart costs and where it would come from. Holds nothing."""

from __future__ import annotations

from chalice import Response

from functions.checkout.blueprint import bp
from functions.checkout.models import CartIn
from shared.kernel.identity import Role
from shared.platform import bootstrap
from shared.web.api import ok, parse, principal


@bp.route("/checkout/quote", methods=["POST"], roles=[Role.CUSTOMER])
def quote() -> Response:
    cart = parse(CartIn)
    return ok(bootstrap.checkout().quote(cart, principal().sub).to_dict())
