"""WeChat Pay v3 routes: the prepay a customer pays with, and WeChat Pay's payment callback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from chalice import Response

from shared.kernel.errors import BadSignature, DomainError
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.platform.observability import logger
from shared.web.api import Api, current_request, ok, parse, principal, raw_body, validate
from shared.web.problems import status_for

if TYPE_CHECKING:
    from functions.payments import models
    from shared.payments import model as payments_model
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.payments.models")
    payments_model = lazy_import("shared.payments.model")


bp = Api(__name__)


@bp.route("/orders/{order_id}/payments", methods=["POST"], roles=[Role.CUSTOMER])
def prepay(order_id: str) -> Response:
    body = parse(models.PrepayIn)
    oid = validate(models.OrderPath, {"order_id": order_id}).order_id
    return ok(bootstrap.wechat_payments().prepay(oid, principal().sub, body.openid))


@bp.route("/payments/wechatpay/notify", methods=["POST"], public=True)
def wechatpay_notification() -> Response:
    """204 once the payment is applied (or was before: WeChat Pay repeats its callbacks); otherwise
    4xx or 5xx with WeChat Pay's `{"code": "FAIL", "message"}`, and WeChat Pay tries again later."""
    headers = {name.lower(): value for name, value in current_request().headers.items()}
    try:
        # Before anything else, in every stage.
        if not all(headers.get(name) for name in payments_model.SIGNATURE_HEADERS):
            raise BadSignature("a WeChat Pay callback carries Wechatpay-Timestamp, -Nonce, -Signature and -Serial")
        bootstrap.wechat_payments().notified(headers, raw_body())
    except DomainError as exc:
        logger.info("WeChat Pay notification refused", extra={"code": exc.code})
        body = json.dumps({"code": "FAIL", "message": exc.message}, ensure_ascii=False)
        return Response(body=body, status_code=status_for(exc), headers={"Content-Type": "application/json"})
    return Response(body="", status_code=204)
