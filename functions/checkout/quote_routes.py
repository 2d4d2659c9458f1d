"""`POST /checkout/quote`: what the cart costs and where it would come from. Holds nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Response

from functions.checkout.blueprint import bp
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import ok, parse, principal

if TYPE_CHECKING:
    from functions.checkout import models
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.checkout.models")


@bp.route("/checkout/quote", methods=["POST"], roles=[Role.CUSTOMER])
def quote() -> Response:
    cart = parse(models.CartIn)
    return ok(bootstrap.checkout().quote(cart, principal().sub).to_dict())
