"""Flash sales (API.md, "Flash sales"). The service (shared.flash_sales.purchase) loads the data layer,
so it is imported on first use; the domain module is imported here, which registers the releaser
that gives unpaid flash orders' units back to the shards."""

from __future__ import annotations

from chalice import Rate, Response

from functions.flash_sales.models import SALE_ID, FlashOrderIn, FlashSaleIn
from shared.flash_sales.model import FlashSale, new_sale_id
from shared.kernel.clock import now_ms
from shared.kernel.errors import NotFound, UnknownSku
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import Role
from shared.platform import bootstrap
from shared.web.api import Api, idempotency_key, json_response, ok, parse, principal

bp = Api(__name__)


def _sale_id(sale_id: str) -> str:
    if not SALE_ID.fullmatch(sale_id):
        raise NotFound("no such flash sale", flash_sale_id=sale_id[:64])  # not an id we ever gave out
    return sale_id


@bp.route("/admin/flash-sales", methods=["POST"], roles=[Role.MERCHANT_ADMIN])
def create_flash_sale() -> Response:
    body = parse(FlashSaleIn)
    who = principal()
    settings = bootstrap.ready()
    product = bootstrap.products().get(body.sku)
    if product is None:
        raise UnknownSku("no such product", sku=body.sku)
    now = now_ms()
    planned = FlashSale.plan(
        new_sale_id(now),
        product,
        price_fen=body.price_fen,
        quantity=body.quantity,
        per_user_limit=body.per_user_limit,
        starts_at_ms=body.ms(body.starts_at),
        ends_at_ms=body.ms(body.ends_at),
        payment_window_s=settings.order_payment_window_s if body.payment_window_s is None else body.payment_window_s,
        expected_peak_per_s=body.expected_peak_per_s or settings.flash_sale_default_peak_per_s,
        now_ms=now,
    )
    request = IdempotentRequest.of(f"flash-sales:{who.sub}", idempotency_key(), body.model_dump(mode="json"))
    stored = bootstrap.flash_purchases().create_sale(planned, request, now)
    return json_response(stored.body, stored.status)


@bp.route("/flash-sales/{sale_id}", methods=["GET"], public=True)
def get_flash_sale(sale_id: str) -> Response:
    return ok(bootstrap.flash_purchases().view(_sale_id(sale_id), now_ms()))


@bp.route("/flash-sales/{sale_id}/orders", methods=["POST"], roles=[Role.CUSTOMER])
def buy(sale_id: str) -> Response:
    found = _sale_id(sale_id)
    body = parse(FlashOrderIn)
    who = principal()
    service = bootstrap.flash_purchases()
    request = IdempotentRequest.of(
        f"flash:{found}:{who.sub}", idempotency_key(), {"flash_sale_id": found, **body.model_dump(mode="json")}
    )
    wanted = service.FlashOrder(body.qty, body.fulfilment.to_domain() if body.fulfilment else None)
    stored = service.purchase(
        found, who.sub, wanted, request, now_ms(), bootstrap.pricing_rules(), bootstrap.locations().list
    )
    return json_response(stored.body, stored.status)


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="reconcile_flash_sales")
def reconcile_flash_sales(event: object) -> dict:
    """Gives back flash units nobody claimed (a purchase that died between taking a unit and
    writing its order, or a decrement applied twice after a lost response)."""
    settings = bootstrap.ready()
    returned = bootstrap.flash_purchases().reconcile(now_ms(), int(settings.flash_sale_settle_s * 1000))
    return {"returned": returned}
