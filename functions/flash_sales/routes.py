"""Flash sales (API.md, "Flash sales"): parse, authorise, call the flash-sale service, answer.
The service loads the data layer, so `bootstrap.flash_sales()` builds it on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Rate, Response

from shared.kernel.errors import NotFound
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import Api, idempotency_key, json_response, ok, parse, principal

if TYPE_CHECKING:
    from functions.flash_sales import models
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.flash_sales.models")


bp = Api(__name__)


def _sale_id(sale_id: str) -> str:
    if not models.SALE_ID.fullmatch(sale_id):
        raise NotFound("no such flash sale", flash_sale_id=sale_id[:64])  # not an id we ever gave out
    return sale_id


@bp.route("/admin/flash-sales", methods=["POST"], roles=[Role.MERCHANT_ADMIN])
def create_flash_sale() -> Response:
    body = parse(models.FlashSaleIn)
    who = principal()
    request = IdempotentRequest.of(f"flash-sales:{who.sub}", idempotency_key(), body.model_dump(mode="json"))
    stored = bootstrap.flash_sales().create(body.to_command(), request)
    return json_response(stored.body, stored.status)


@bp.route("/admin/flash-sales/{sale_id}/cancel", methods=["POST"], roles=[Role.MERCHANT_ADMIN])
def cancel_flash_sale(sale_id: str) -> Response:
    """Idempotent by nature (the same 200 again), so no Idempotency-Key (docs/flash-sales.md)."""
    return ok(bootstrap.flash_sales().cancel(_sale_id(sale_id)))


@bp.route("/flash-sales/{sale_id}", methods=["GET"], public=True)
def get_flash_sale(sale_id: str) -> Response:
    return ok(bootstrap.flash_sales().view(_sale_id(sale_id)))


@bp.route("/flash-sales/{sale_id}/orders", methods=["POST"], roles=[Role.CUSTOMER])
def buy(sale_id: str) -> Response:
    found = _sale_id(sale_id)
    body = parse(models.FlashOrderIn)
    who = principal()
    request = IdempotentRequest.of(
        f"flash:{found}:{who.sub}", idempotency_key(), {"flash_sale_id": found, **body.model_dump(mode="json")}
    )
    stored = bootstrap.flash_sales().purchase(found, who.sub, body.to_command(), request)
    return json_response(stored.body, stored.status)


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="reconcile_flash_sales")
def reconcile_flash_sales(event: object) -> dict:
    """Gives back flash units nobody claimed (a purchase that died between taking a unit and
    writing its order, or a decrement applied twice after a lost response)."""
    return {"returned": bootstrap.flash_sales().reconcile()}
