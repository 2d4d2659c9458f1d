"""Money paid back (docs/payments.md, "Refunds"): finance's list of WeChat Pay refunds that need a human,
finance marking a payment refunded by hand, the payments queue's consumer (refunds and closes at WeChat
Pay) and the query job that settles refunds whose notification never came."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Rate, Response

from functions.payments.routes import bp
from shared.kernel.clock import iso
from shared.kernel.errors import MalformedRequest
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.web.api import decode_cursor, encode_cursor, ok, parse, principal, query_int, query_str, validate

if TYPE_CHECKING:
    from functions.payments import refund_models
    from shared.messaging import consumers
    from shared.payments import model as payments_model
    from shared.payments import ports as payments_ports
    from shared.payments import wechatpay_refunds
    from shared.platform import bootstrap
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    refund_models = lazy_import("functions.payments.refund_models")
    wechatpay_refunds = lazy_import("shared.payments.wechatpay_refunds")
    consumers = lazy_import("shared.messaging.consumers")
    bootstrap = lazy_import("shared.platform.bootstrap")


@bp.route("/finance/provider-refunds", methods=["GET"], roles=[Role.FINANCE, Role.MERCHANT_ADMIN])
def provider_refunds_needing_attention() -> Response:
    if query_str("status") != "needs_attention":
        raise MalformedRequest("?status= is required; the refunds listed are those that need finance: needs_attention")
    limit = query_int("limit", 20, low=1, high=100)
    found, cursor = bootstrap.payment_refunds().needing_attention(limit, decode_cursor(query_str("cursor")))
    return ok({"items": [_provider_refund_view(r) for r in found], "next_cursor": encode_cursor(cursor)})


@bp.route("/finance/payments/{transaction_id}/refunded", methods=["POST"], roles=[Role.FINANCE, Role.MERCHANT_ADMIN])
def mark_payment_refunded(transaction_id: str) -> Response:
    body = parse(refund_models.MarkRefundedIn)
    tid = validate(refund_models.TransactionPath, {"transaction_id": transaction_id}).transaction_id
    marked = bootstrap.payment_refunds().mark_refunded(tid, body.order_id, principal(), body.note)
    return ok(_payment_view(marked))


@bp.route(
    "/finance/provider-refunds/{out_refund_no}/apply-abnormal-refund",
    methods=["POST"],
    roles=[Role.FINANCE, Role.MERCHANT_ADMIN],
)
def apply_abnormal_refund(out_refund_no: str) -> Response:
    body = parse(refund_models.AbnormalRefundIn)
    number = validate(refund_models.RefundNumberPath, {"out_refund_no": out_refund_no}).out_refund_no
    card = None
    if body.type == "USER_BANK_CARD":
        assert body.bank_type and body.bank_account and body.real_name  # the model requires them for this type
        card = wechatpay_refunds.BuyerBankCard(body.bank_type, body.bank_account, body.real_name.strip())
    refunds = bootstrap.wechatpay_refunds()
    return ok(_provider_refund_view(refunds.apply_abnormal_refund(body.order_id, number, card)))


@bp.lambda_function(name="payments_consumer")
def payments_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumers.consume(event, bootstrap.payments_consumer(), bootstrap.consumer_runtime())


@bp.schedule(Rate(5, unit=Rate.MINUTES), name="settle_wechatpay_refunds")
def settle_wechatpay_refunds(event: object) -> dict[str, int]:
    """Asks WeChat Pay about refunds still open past their check time (the local runner runs this every
    few seconds); nothing to do where WeChat Pay is not the provider."""
    if bootstrap.ready().payment_provider != "wechatpay":
        return {"checked": 0}
    return bootstrap.wechatpay_refunds().settle_due()


def _provider_refund_view(refund: payments_model.ProviderRefund) -> dict[str, object]:
    return {
        "out_refund_no": refund.out_refund_no,
        "order_id": refund.order_id,
        "source": refund.source,
        "source_id": refund.source_id,
        "transaction_id": refund.transaction_id,
        "refund_fen": refund.refund_fen,
        "total_fen": refund.total_fen,
        "status": refund.status,
        "provider_code": refund.provider_code,
        "provider_refund_id": refund.provider_refund_id,
        "created_at": iso(refund.created_at_ms),
        "updated_at": iso(refund.updated_at_ms),
    }


def _payment_view(payment: payments_ports.RecordedPayment) -> dict[str, object]:
    return {
        "transaction_id": payment.transaction_id,
        "order_id": payment.order_id,
        "amount_fen": payment.amount_fen,
        "paid_at": payment.paid_at,
        "status": payment.status,
        "reason": payment.reason,
        "recorded_at": iso(payment.recorded_at_ms),
        "refunded_by": payment.refunded_by,
        "refunded_at": iso(payment.refunded_at_ms) if payment.refunded_at_ms is not None else None,
        "note": payment.refund_note,
    }
