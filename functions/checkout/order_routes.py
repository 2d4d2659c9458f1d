"""Orders: place, read, cancel, pay, fulfil, refund (API.md, "Checkout and orders")."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from chalice import Rate, Response

from functions.checkout.blueprint import bp
from shared.kernel.clock import iso, now_s
from shared.kernel.errors import InvalidTransition, MalformedRequest, NotFound, TemporarilyUnavailable
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import API_ROLES, Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import (
    Api,
    current_request,
    decode_cursor,
    encode_cursor,
    idempotency_key,
    json_response,
    ok,
    parse,
    principal,
    query_int,
    query_str,
    raw_body,
    validate,
)

if TYPE_CHECKING:
    from functions.checkout import models, order_models
    from shared.ordering import model as ordering_model
    from shared.ordering import ports as ordering_ports
    from shared.payments import hmac_webhook
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    ordering_model = lazy_import("shared.ordering.model")
    models = lazy_import("functions.checkout.models")
    order_models = lazy_import("functions.checkout.order_models")
    ordering_ports = lazy_import("shared.ordering.ports")
    hmac_webhook = lazy_import("shared.payments.hmac_webhook")


STAFF = [Role.STORE_STAFF, Role.MERCHANT_ADMIN]
DEV_OPENID = "oDEVPAY_local_stage_payer"  # /dev/pay's payer at the local WeChat Pay
PICKUP_HANDLERS = [Role.STORE_STAFF, Role.GUIDE, Role.MERCHANT_ADMIN]  # of the fulfilling store (API.md)
ANY_ROLE = list(API_ROLES)
_: Api = bp


def _order_id(order_id: str) -> str:
    return validate(order_models.OrderPath, {"order_id": order_id}).order_id


@bp.route("/orders", methods=["POST"], roles=[Role.CUSTOMER])
def place_order() -> Response:
    cart = parse(models.CartIn)
    who = principal()
    request = IdempotentRequest.of(f"orders:{who.sub}", idempotency_key(), cart.model_dump(mode="json"))
    stored = bootstrap.ordering().place_order(cart, who.sub, request)
    return json_response(stored.body, stored.status)


@bp.route("/orders", methods=["GET"], roles=[Role.CUSTOMER])
def list_orders() -> Response:
    who = principal()
    limit = query_int("limit", 20, low=1, high=100)
    orders, cursor = bootstrap.order_lifecycle().list_for_customer(who.sub, limit, decode_cursor(query_str("cursor")))
    return ok({"items": [o.view(include_history=False) for o in orders], "next_cursor": encode_cursor(cursor)})


@bp.route("/orders/{order_id}", methods=["GET"], roles=ANY_ROLE)
def get_order(order_id: str) -> Response:
    who = principal()
    order = bootstrap.order_lifecycle().load_visible(_order_id(order_id), who)
    body = order.view()
    if who.role is Role.CUSTOMER and order.pickup_code:
        body["pickup_code"] = order.pickup_code  # shown to its customer only, who shows it at the store
    if who.role is Role.FINANCE:  # the money, not where it goes: no recipient, phone or address
        body["fulfilment"] = {k: v for k, v in body["fulfilment"].items() if k != "address"}
    body["refunds"] = bootstrap.order_refunds().refunds_of(order.order_id)
    return ok(body)


@bp.route("/orders/{order_id}/cancel", methods=["POST"], roles=[Role.CUSTOMER])
def cancel_order(order_id: str) -> Response:
    return ok(bootstrap.order_lifecycle().cancel(_order_id(order_id), principal()).view())


@bp.route("/orders/{order_id}/ship", methods=["POST"], roles=STAFF)
def ship_order(order_id: str) -> Response:
    body = parse(order_models.ShipIn)
    return ok(bootstrap.order_lifecycle().ship(_order_id(order_id), body.tracking_number, principal()).view())


@bp.route("/orders/{order_id}/ready-for-pickup", methods=["POST"], roles=PICKUP_HANDLERS)
def ready_for_pickup(order_id: str) -> Response:
    return ok(bootstrap.order_lifecycle().ready_for_pickup(_order_id(order_id), principal()).view())


@bp.route("/orders/{order_id}/hand-over", methods=["POST"], roles=PICKUP_HANDLERS)
def hand_over(order_id: str) -> Response:
    body = parse(order_models.HandOverIn)
    return ok(bootstrap.order_lifecycle().hand_over(_order_id(order_id), body.pickup_code, principal()).view())


@bp.route("/orders/{order_id}/pickup-code/reset", methods=["POST"], roles=[Role.MERCHANT_ADMIN])
def reset_pickup_attempts(order_id: str) -> Response:
    return ok(bootstrap.order_lifecycle().reset_pickup_attempts(_order_id(order_id), principal()).view())


@bp.route("/orders/{order_id}/complete", methods=["POST"], roles=[Role.CUSTOMER, *STAFF])
def complete_order(order_id: str) -> Response:
    return ok(bootstrap.order_lifecycle().complete(_order_id(order_id), principal()).view())


@bp.route("/orders/{order_id}/refunds", methods=["POST"], roles=[Role.CUSTOMER])
def request_refund(order_id: str) -> Response:
    body = parse(order_models.RefundIn)
    who = principal()
    oid = _order_id(order_id)
    request = IdempotentRequest.of(f"refunds:{who.sub}:{oid}", idempotency_key(), body.model_dump(mode="json"))
    stored = bootstrap.order_refunds().request_refund(oid, body.units(), body.reason, who, request)
    return json_response(stored.body, stored.status)


@bp.route("/admin/orders/{order_id}/refunds/{refund_id}/decision", methods=["POST"], roles=[Role.MERCHANT_ADMIN])
def decide_refund(order_id: str, refund_id: str) -> Response:
    body = parse(order_models.RefundDecisionIn)
    refund = bootstrap.order_refunds().decide_refund(
        _order_id(order_id), _order_id(refund_id), body.approve, body.restock, principal()
    )
    return ok(refund)


@bp.route("/payments/notify", methods=["POST"], public=True)
def payment_notification() -> Response:
    headers = dict(current_request().headers)
    notice = bootstrap.payment_provider().verify(headers, raw_body(), now_s())
    return ok(bootstrap.order_lifecycle().apply_payment(notice).view())


@bp.route("/finance/payments", methods=["GET"], roles=[Role.FINANCE])
def payments_needing_refund() -> Response:
    if query_str("status") != "needs_refund":
        raise MalformedRequest("?status= is required; the payments listed are those that need a refund: needs_refund")
    limit = query_int("limit", 20, low=1, high=100)
    found, cursor = bootstrap.order_lifecycle().payments_needing_refund(limit, decode_cursor(query_str("cursor")))
    return ok({"items": [_payment_view(p) for p in found], "next_cursor": encode_cursor(cursor)})


def _payment_view(payment: ordering_ports.PaymentRecord) -> dict[str, object]:
    return {
        "transaction_id": payment.transaction_id,
        "order_id": payment.order_id,
        "amount_fen": payment.amount_fen,
        "paid_at": payment.paid_at,
        "status": payment.status,
        "reason": payment.reason,
        "recorded_at": iso(payment.recorded_at_ms),
    }


@bp.route("/dev/pay/{order_id}", methods=["POST"], public=True)
def dev_pay(order_id: str) -> Response:
    """Local stage only: sign and apply the provider's notification for the order's full amount."""
    settings = bootstrap.ready()
    if not settings.is_local:
        raise NotFound("no such route")
    order = bootstrap.order_lifecycle().load(_order_id(order_id))
    if settings.payment_provider == "wechatpay":
        return ok(_paid_by_local_wechatpay(settings.wechatpay_api_base, order))
    now = now_s()
    body = json.dumps(
        {
            "order_id": order.order_id,
            "transaction_id": f"dev-{order.order_id}",
            "amount_fen": order.total_fen,
            "paid_at": iso(int(now * 1000)),
        }
    ).encode()
    secret = settings.payment_webhook_secret.get_secret_value()
    headers = {"x-pay-signature": hmac_webhook.sign(secret, body, int(now))}
    notice = bootstrap.payment_provider().verify(headers, body, now)
    return ok(bootstrap.order_lifecycle().apply_payment(notice).view())


def _paid_by_local_wechatpay(api_base: str, order: ordering_model.Order) -> dict[str, object]:
    """`make dev --payment-provider wechatpay`: the local WeChat Pay pays the order's prepay and sends its
    signed, encrypted TRANSACTION.SUCCESS callback to this API, which applies it as in production (so
    refunds later go back through WeChat Pay). An unpaid order the customer has not started paying gets
    its prepay first, as `POST /orders/{id}/payments` would give it, for a development payer. What the
    callback did is read back from the order."""
    import contextlib
    import urllib.error
    import urllib.request

    from shared.payments.model import PayerChanged

    was_paid = order.status is not ordering_model.Status.PENDING_PAYMENT
    if not was_paid:
        # A customer who started paying with their own openid has their prepay: that one is paid.
        with contextlib.suppress(PayerChanged):
            bootstrap.wechat_payments().prepay(order.order_id, order.customer_id, DEV_OPENID)
    request = urllib.request.Request(f"{api_base}/local/pay/{order.order_id}", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # the local stand-in's URL, from settings
            deliveries = json.loads(answer.read()).get("deliveries", [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # paid another way (the HMAC webhook): WeChat Pay has no transaction for it
            raise InvalidTransition("WeChat Pay has no transaction for this order", order_id=order.order_id) from exc
        raise InvalidTransition("the local WeChat Pay refused to pay the order", status=exc.code) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise TemporarilyUnavailable("the local WeChat Pay does not answer", api_base=api_base) from exc
    if 204 not in deliveries and 200 not in deliveries:
        raise TemporarilyUnavailable("the payment callback was not taken", deliveries=deliveries)
    after = bootstrap.order_lifecycle().load(order.order_id)
    return {"order_id": after.order_id, "status": after.status.value, "outcome": "duplicate" if was_paid else "paid"}


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="expire_unpaid_orders")
def expire_unpaid_orders(event: object) -> dict:
    """Cancels unpaid orders past their window and releases their units (the local runner runs this
    every few seconds). DynamoDB TTL is never the mechanism: it deletes "within days"."""
    bootstrap.ready()
    return {"expired": bootstrap.order_lifecycle().expire_due()}
