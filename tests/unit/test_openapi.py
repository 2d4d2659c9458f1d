"""docs/openapi.yaml against the code: the same routes, the same roles, a valid document, and
request schemas that accept and refuse what the pydantic models accept and refuse.

A new route without documentation, a documented route that is gone, a role change on one side
only, or a model constraint the document does not say all fail here."""

from __future__ import annotations

import inspect
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError as SchemaError
from openapi_spec_validator import validate as validate_openapi
from pydantic import BaseModel, ValidationError

from functions.catalog.models import ProductIn
from functions.checkout.models import CartIn
from functions.checkout.order_models import HandOverIn, RefundDecisionIn, RefundIn, ShipIn
from functions.commission.models import CommissionRulesIn
from functions.coupons.models import (
    CouponRedemptionIn,
    CouponTemplateEditIn,
    CouponTemplateIn,
    GuideIssueIn,
    ReversalIn,
)
from functions.flash_sales.models import FlashOrderIn, FlashSaleIn
from functions.guides.models import DealerIn, DistributorIn, GuideIn, ReassignIn, ShareVisitIn, StoreIn
from functions.inventory.models import StockIn
from functions.membership.models import MembershipPlanIn, MembershipPurchaseIn, MembershipRulesIn, SegmentIssueIn
from functions.notifications.models import ConsentsIn, ContactIn, PreferencesIn
from functions.payments.models import PrepayIn
from functions.payments.refund_models import AbnormalRefundIn, MarkRefundedIn
from functions.promotions.models import PromotionIn
from functions.settlement.models import SettlementIn
from shared.payments.hmac_webhook import _NoticeBody as PaymentNoticeBody  # the webhook's body model
from shared.payments.wechatpay import CallbackBody as WeChatPayCallback
from shared.web.requests import AddressIn

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch")

# The pydantic model behind each documented request body, by operationId. An operation with a
# body that is not listed here fails `test_every_request_body_names_its_model`.
BODY_MODELS: dict[str, type[BaseModel]] = {
    "putProduct": ProductIn,
    "putStock": StockIn,
    "quote": CartIn,
    "placeOrder": CartIn,
    "shipOrder": ShipIn,
    "handOver": HandOverIn,
    "requestRefund": RefundIn,
    "decideRefund": RefundDecisionIn,
    "markPaymentRefunded": MarkRefundedIn,
    "applyAbnormalRefund": AbnormalRefundIn,
    "paymentNotification": PaymentNoticeBody,
    "prepayOrder": PrepayIn,
    "wechatpayNotification": WeChatPayCallback,
    "createFlashSale": FlashSaleIn,
    "buyInFlashSale": FlashOrderIn,
    "putNotificationPreferences": PreferencesIn,
    "putContact": ContactIn,
    "putMyAddress": AddressIn,
    "postWechatConsents": ConsentsIn,
    "createCouponTemplate": CouponTemplateIn,
    "editCouponTemplate": CouponTemplateEditIn,
    "redeemCouponOffline": CouponRedemptionIn,
    "reverseCouponRedemption": ReversalIn,
    "issueGuideCoupon": GuideIssueIn,
    "putDealer": DealerIn,
    "putOrgStore": StoreIn,
    "putGuide": GuideIn,
    "putDistributor": DistributorIn,
    "reassignBinding": ReassignIn,
    "postShareVisit": ShareVisitIn,
    "putCommissionRules": CommissionRulesIn,
    "putMembershipRules": MembershipRulesIn,
    "putMembershipPlan": MembershipPlanIn,
    "buyMembership": MembershipPurchaseIn,
    "putSegmentIssue": SegmentIssueIn,
    "startSettlementRun": SettlementIn,
    "putPromotion": PromotionIn,
}


@cache
def document() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): operation
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def served_routes() -> dict[tuple[str, str], Any]:
    from app import app

    return {(path, method): entry for path, methods in app.routes.items() for method, entry in methods.items()}


def declared_access(view_function: Any) -> tuple[bool, set[str]]:
    """(public, roles) as the route declared them to `Api.route`, read from its wrapper's closure."""
    captured = inspect.getclosurevars(view_function).nonlocals
    assert {"public", "allowed"} <= captured.keys(), "shared.web.api.Api.route no longer wraps views as expected"
    return captured["public"], {str(role) for role in captured["allowed"]}


def body_schema(operation_id: str) -> dict[str, Any]:
    operation = next(op for op in operations().values() if op["operationId"] == operation_id)
    return operation["requestBody"]["content"]["application/json"]


@cache
def _ecma_pattern(pattern: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


def _pattern_as_ecma_262_reads_it(checker: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """JSON Schema's patterns are ECMA-262 regular expressions. Python's `re`, which `jsonschema`
    uses, reads them otherwise: its \\s takes U+0085 and U+001C..U+001F and leaves U+FEFF, and its `$`
    matches before a final newline. jsonschema_rs (schemathesis' validator) reads them as ECMA-262."""
    if checker.is_type(instance, "string") and not _ecma_pattern(pattern).is_valid(instance):
        yield SchemaError(f"{instance!r} does not match {pattern!r}")


DocumentValidator = validators.extend(Draft202012Validator, {"pattern": _pattern_as_ecma_262_reads_it})


def validator(media: dict[str, Any]) -> Any:
    # The document is the root so that "#/components/..." references resolve in it. Formats are
    # checked (date-time): the models refuse a time that is not one, so the document says so too.
    return DocumentValidator(
        {**media["schema"], "components": document()["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def pydantic_accepts(model: type[BaseModel], body: Any) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


def test_the_document_is_valid_openapi_3_1():
    # When the document is checked against the OpenAPI 3.1 specification
    validate_openapi(document())
    # Then it passes, and says it is 3.1
    assert document()["openapi"].startswith("3.1")


def test_the_document_has_exactly_the_routes_the_app_serves():
    # Given the routes app.py registers and the operations the document describes
    served = set(served_routes())
    documented = set(operations())
    # Then neither has one the other lacks
    assert served - documented == set(), "routes served but not in docs/openapi.yaml"
    assert documented - served == set(), "routes in docs/openapi.yaml that app.py does not serve"


def test_each_operation_names_the_roles_its_route_admits():
    served = served_routes()
    for key, operation in operations().items():
        if key not in served:
            continue  # reported by the route-set test
        public, roles = declared_access(served[key].view_function)
        # Then x-roles lists the route's roles, and a public route needs no token
        assert set(operation["x-roles"]) == roles, key
        assert (operation.get("security") == []) is public, key
        if roles:
            assert all(role in operation["description"] for role in roles), f"{key}: roles not in the description"


def test_every_request_body_names_its_model():
    with_body = {op["operationId"] for op in operations().values() if "requestBody" in op}
    assert with_body == set(BODY_MODELS)


@pytest.mark.parametrize("operation_id", sorted(BODY_MODELS))
def test_the_documented_example_is_accepted_by_the_schema_and_the_model(operation_id):
    # Given the example the document shows for the body
    media = body_schema(operation_id)
    example = media["example"]
    # Then both the document's schema and the pydantic model accept it
    assert list(validator(media).iter_errors(example)) == []
    assert pydantic_accepts(BODY_MODELS[operation_id], example)


PAID_AT = "2026-11-23T08:00:00+08:00"
WX_RESOURCE = {
    "algorithm": "AEAD_AES_256_GCM",
    "ciphertext": "c2VhbGVk",
    "nonce": "n1",
    "associated_data": "transaction",
}
ADDRESS = {"recipient": "张三", "phone": "+86 138 0000 0000", "city": "上海", "detail": "南京西路 1 号"}
LINE = {"sku": "TEA-001", "qty": 1}
SALE = {
    "sku": "TEA-001",
    "price_fen": 9900,
    "quantity": 100,
    "per_user_limit": 2,
    "starts_at": "2030-05-01T10:00:00+08:00",
    "ends_at": "2030-05-01T12:00:00Z",
}
TEMPLATE = {
    "kind": "threshold",
    "amount_fen": 3000,
    "threshold_fen": 30000,
    "total": 500,
    "per_user_limit": 2,
    "valid_from": "2030-05-01T00:00:00+08:00",
    "valid_to": "2030-05-31T00:00:00Z",
    "channels": ["online", "offline"],
}

# (operationId, body): the schema and the model must agree on each, accepted or refused.
AGREEMENT_CASES: list[tuple[str, Any]] = [
    ("putProduct", {"name": "茶", "price_fen": 100}),
    ("putProduct", {"name": "茶", "price_fen": 100, "member_price_fen": None, "category": None}),
    ("putProduct", {"name": "茶", "price_fen": 12.5}),  # money is never a float
    ("putProduct", {"name": "茶", "price_fen": -1}),
    ("putProduct", {"name": "茶", "price_fen": "100"}),
    ("putProduct", {"name": "", "price_fen": 100}),
    ("putProduct", {"name": "茶", "price_fen": 100, "colour": "red"}),
    ("putProduct", {"price_fen": 100}),
    ("putStock", {"location": "WH", "on_hand": 0}),
    ("putStock", {"location": "WH", "on_hand": -1}),
    ("putStock", {"location": "-WH", "on_hand": 1}),
    ("putStock", {"location": "WH", "on_hand": True}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "pickup", "store_id": "S001"}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "pickup"}}),  # pickup needs a store
    ("quote", {"lines": [LINE], "fulfilment": {"type": "delivery", "address": ADDRESS}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "delivery"}}),  # delivery needs an address
    ("quote", {"lines": [LINE], "fulfilment": {"type": "ship_from_store", "store_id": "S001"}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "ship_from_store", "store_id": "S001", "address": ADDRESS}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "same_city", "address": {**ADDRESS, "lat": 31.2, "lng": 121}}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "same_city", "address": {**ADDRESS, "lat": 31.2}}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "same_city", "address": {**ADDRESS, "lat": None, "lng": 1}}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "same_city", "address": {**ADDRESS, "lat": 91, "lng": 1}}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "same_city", "address": {**ADDRESS, "lat": 1, "lng": False}}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "same_city", "address": {**ADDRESS, "lat": "1", "lng": 1}}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "courier", "address": ADDRESS}}),
    ("quote", {"lines": [], "fulfilment": {"type": "pickup", "store_id": "S001"}}),
    ("quote", {"lines": [{"sku": "TEA-001", "qty": 0}], "fulfilment": {"type": "pickup", "store_id": "S001"}}),
    ("quote", {"lines": [LINE], "coupon_ids": [""], "fulfilment": {"type": "pickup", "store_id": "S001"}}),
    ("placeOrder", {"lines": [LINE] * 51, "fulfilment": {"type": "pickup", "store_id": "S001"}}),
    ("placeOrder", {"lines": [LINE], "fulfilment": {"type": "delivery", "address": {**ADDRESS, "phone": "12"}}}),
    ("shipOrder", {"tracking_number": "SF1"}),
    ("shipOrder", {"tracking_number": "SF"}),
    ("handOver", {"pickup_code": "000123"}),
    ("handOver", {"pickup_code": "12345"}),
    ("handOver", {"pickup_code": "12345a"}),
    ("requestRefund", {"lines": [LINE], "reason": "破损"}),
    ("requestRefund", {"lines": [LINE], "reason": ""}),
    ("decideRefund", {"approve": True}),
    ("decideRefund", {"approve": 1}),
    ("decideRefund", {"approve": "true"}),
    ("paymentNotification", {"order_id": "o1", "transaction_id": "t1", "amount_fen": 100, "paid_at": "now", "x": 1}),
    ("paymentNotification", {"order_id": "o1", "transaction_id": "t1", "amount_fen": 100, "paid_at": PAID_AT, "x": 1}),
    ("paymentNotification", {"order_id": "o1", "transaction_id": "t1", "amount_fen": 100, "paid_at": "2026-11-23"}),
    ("prepayOrder", {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}),
    ("prepayOrder", {"openid": ""}),
    ("prepayOrder", {"openid": "o 1"}),
    ("prepayOrder", {"openid": "o" * 129}),
    ("prepayOrder", {"openid": "o1", "appid": "wx1"}),
    ("wechatpayNotification", {"id": "e1", "event_type": "TRANSACTION.SUCCESS", "resource": WX_RESOURCE, "x": 1}),
    ("wechatpayNotification", {"id": "e1", "event_type": "TRANSACTION.SUCCESS"}),
    ("wechatpayNotification", {"id": "", "event_type": "TRANSACTION.SUCCESS", "resource": WX_RESOURCE}),
    ("wechatpayNotification", {"id": "e1", "event_type": "T", "resource": {**WX_RESOURCE, "nonce": ""}}),
    ("wechatpayNotification", {"id": "e1", "event_type": "T", "resource": {**WX_RESOURCE, "original_type": None}}),
    ("paymentNotification", {"order_id": "o1", "transaction_id": "t1", "amount_fen": 10**12 + 1, "paid_at": PAID_AT}),
    ("putProduct", {"name": "茶", "price_fen": 10**8}),
    ("putProduct", {"name": "茶", "price_fen": 10**8 + 1}),  # a price times 10,000 units is one payment at most
    ("putProduct", {"name": "茶", "price_fen": 1, "member_price_fen": 10**8 + 1}),
    ("putProduct", {"name": "   ", "price_fen": 100}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "delivery", "address": {**ADDRESS, "recipient": "   "}}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "delivery", "address": {**ADDRESS, "city": "\u3000"}}}),
    ("quote", {"lines": [LINE], "fulfilment": {"type": "delivery", "address": {**ADDRESS, "detail": " \t "}}}),
    ("buyInFlashSale", {"qty": 1, "fulfilment": {"type": "delivery", "address": {**ADDRESS, "city": "  "}}}),
    ("handOver", {"pickup_code": "１２３４５６"}),  # full-width digits are not the code
    ("putContact", {"phone": "+86 137 0000 0000"}),
    ("putContact", {"phone": "137-0000-0000"}),
    ("paymentNotification", {"order_id": "o1", "transaction_id": "t1", "amount_fen": 1.5, "paid_at": "now"}),
    ("paymentNotification", {"order_id": "", "transaction_id": "t1", "amount_fen": 100, "paid_at": "now"}),
    ("createFlashSale", SALE),
    ("createFlashSale", {**SALE, "payment_window_s": None, "expected_peak_per_s": 5000}),
    ("createFlashSale", {**SALE, "expected_peak_per_s": 0}),
    ("createFlashSale", {**SALE, "quantity": 1.5}),
    ("createFlashSale", {**SALE, "price_fen": "9900"}),
    ("createFlashSale", {**SALE, "sku": ""}),
    ("createFlashSale", {**SALE, "colour": "red"}),
    ("createFlashSale", {k: v for k, v in SALE.items() if k != "ends_at"}),
    ("buyInFlashSale", {"qty": 1}),
    ("buyInFlashSale", {"qty": 1, "fulfilment": None}),
    ("buyInFlashSale", {"qty": 1, "fulfilment": {"type": "pickup", "store_id": "S001"}}),
    ("buyInFlashSale", {"qty": 1, "fulfilment": {"type": "delivery", "address": ADDRESS}}),
    ("buyInFlashSale", {"qty": 1, "fulfilment": {"type": "delivery"}}),
    ("buyInFlashSale", {"qty": 1, "fulfilment": {"type": "ship_from_store", "address": ADDRESS}}),
    ("buyInFlashSale", {"qty": 1, "fulfilment": {"type": "same_city", "address": ADDRESS}}),
    ("buyInFlashSale", {"qty": 1, "fulfilment": {"type": "delivery", "address": {**ADDRESS, "lat": 1, "lng": 1}}}),
    ("buyInFlashSale", {"qty": 0}),
    ("putNotificationPreferences", {"channels": {"sms": False}}),
    ("putNotificationPreferences", {"channels": {}}),
    ("putNotificationPreferences", {"channels": {"fax": False}}),
    ("putNotificationPreferences", {"channels": {"sms": "false"}}),  # a string is not a boolean
    ("putNotificationPreferences", {"channels": {"sms": 0}}),
    ("putContact", {}),
    ("putContact", {"phone": None, "birthday": "02-29", "locale": "en"}),
    ("putContact", {"birthday": "02-30"}),  # no such day
    ("putContact", {"birthday": "04-31"}),
    ("putContact", {"birthday": "12-31", "phone": "+8613800000000"}),
    ("putContact", {"phone": "12345"}),
    ("putContact", {"email": "not-an-address"}),
    # The document's \s is ECMA-262's: U+0085 is not white space there, U+00A0, U+2028 and U+FEFF are,
    # and `$` is the end of the text (Python's `re` and pydantic's Rust engine read each otherwise)
    ("putContact", {"email": "0@0.\x85"}),
    ("putContact", {"email": "a\x1c@b.c"}),
    ("putContact", {"email": "a@b.c\xa0"}),
    ("putContact", {"email": "a@b\u2028.c"}),
    ("putContact", {"email": "a@\ufeffb.c"}),
    ("putContact", {"email": "a@b.c\n"}),
    ("putProduct", {"name": "\x85", "price_fen": 100}),
    ("putProduct", {"name": "\ufeff", "price_fen": 100}),
    ("putProduct", {"name": "\u3000", "price_fen": 100}),
    ("putContact", {"locale": "fr"}),
    ("putContact", {"name": "张三"}),  # no other fields
    ("postWechatConsents", {"template_ids": ["wx-order-paid"]}),
    ("postWechatConsents", {"template_ids": []}),
    ("postWechatConsents", {"template_ids": [""]}),
    ("createCouponTemplate", TEMPLATE),
    ("createCouponTemplate", {**TEMPLATE, "kind": "percent", "percent_off": 10, "cap_fen": 500, "amount_fen": None}),
    ("createCouponTemplate", {**TEMPLATE, "percent_off": 100}),
    ("createCouponTemplate", {**TEMPLATE, "kind": "voucher"}),
    ("createCouponTemplate", {**TEMPLATE, "channels": []}),
    ("createCouponTemplate", {**TEMPLATE, "channels": ["instore"]}),
    ("createCouponTemplate", {**TEMPLATE, "total": 0}),
    ("createCouponTemplate", {**TEMPLATE, "per_user_limit": 101}),
    ("createCouponTemplate", {**TEMPLATE, "amount_fen": 12.5}),
    ("createCouponTemplate", {**TEMPLATE, "scope": {"skus": ["TEA-001"], "exclude_categories": ["tea"]}}),
    ("createCouponTemplate", {**TEMPLATE, "scope": {"brands": ["x"]}}),
    ("createCouponTemplate", {**TEMPLATE, "stores": []}),
    ("createCouponTemplate", {**TEMPLATE, "stores": ["S001"], "valid_days": 7, "stackable_with_promotions": False}),
    ("createCouponTemplate", {**TEMPLATE, "stackable_with_promotions": "no"}),
    ("createCouponTemplate", {**TEMPLATE, "valid_days": 0}),
    ("createCouponTemplate", {k: v for k, v in TEMPLATE.items() if k != "valid_to"}),
    ("editCouponTemplate", {"issuing": False}),
    ("editCouponTemplate", {"name": None}),
    ("editCouponTemplate", {}),
    ("editCouponTemplate", {"total": 1000}),  # the quantity is never edited
    ("editCouponTemplate", {"issuing": "false"}),
    ("redeemCouponOffline", {"code": "RSCPN1:7K3M9QXA2RTW"}),
    ("redeemCouponOffline", {"code": "7K3M-9QXA-2RTW", "purchase_fen": 100, "verification_code": "012345"}),
    ("redeemCouponOffline", {"code": "7K3M", "verification_code": "12345"}),
    ("redeemCouponOffline", {"code": "7K3M", "verification_code": None}),
    ("redeemCouponOffline", {"code": "abc"}),
    ("redeemCouponOffline", {"code": "<script>"}),
    ("redeemCouponOffline", {}),
    ("reverseCouponRedemption", {"reason": "扫错"}),
    ("reverseCouponRedemption", {"reason": ""}),
    ("putDealer", {"name": "华东经销商"}),
    ("putDealer", {"name": "华东经销商", "payout_account": "wxpay:1900000109"}),
    ("putDealer", {"name": "华东经销商", "payout_account": "有空格 的账号"}),
    ("putDealer", {"name": " "}),
    ("putOrgStore", {"name": "直营店"}),
    ("putOrgStore", {"name": "店", "dealer_id": "D001", "city": "上海"}),
    ("putOrgStore", {"name": "店", "dealer_id": "-D001"}),
    ("putOrgStore", {"name": "店", "lat_e6": 1}),
    ("putGuide", {"name": "王芳", "store_id": "S001", "member_id": "c-wang"}),
    ("putGuide", {"name": "王芳"}),
    ("putDistributor", {"name": "小周", "parent_id": "m-1"}),
    ("putDistributor", {"name": "小周", "parent_id": ""}),
    ("reassignBinding", {"guide_id": "G002", "reason": "导购离职"}),
    ("reassignBinding", {"guide_id": "G002"}),
    ("postShareVisit", {"share": "G001"}),
    ("postShareVisit", {"share": "a b"}),
    ("putCommissionRules", {"rates_bp": {"dealer": 500, "guide": 300}}),
    ("putCommissionRules", {"rates_bp": {}}),
    ("putCommissionRules", {"rates_bp": {"dealer": 10_001}}),
    ("putCommissionRules", {"rates_bp": {"dealer": 1.5}}),
    ("putCommissionRules", {"rates_bp": {"boss": 100}}),
    ("putCommissionRules", {"rates_bp": {}, "fixed_fen": {"guide": 100}}),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"sku": "TEA-001", "rates_bp": {"guide": 100}}]}),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"sku": "T", "category": "tea", "rates_bp": {"guide": 1}}]}),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"guide_id": "G001"}]}),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"guide_id": "G001", "fixed_fen": {}}]}),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"category": "t", "sku": None, "fixed_fen": {"store": 5}}]}),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"rates_bp": {"guide": 1}}]}),
    ("startSettlementRun", {"period_end": "2026-11-30T16:00:00Z"}),
    ("startSettlementRun", {"period_end": "2026-11-30"}),
    ("startSettlementRun", {"period_end": "2026-11-30T16:00:00Z", "dry_run": True}),
    ("startSettlementRun", {}),
    ("startSettlementRun", {"period_end": 0}),  # a number is not a date-time
    ("putCommissionRules", {"rates_bp": {"dealer": 500, "guide": 300}}),
    ("putCommissionRules", {"rates_bp": {}}),
    ("putCommissionRules", {"rates_bp": {"dealer": 10_001}}),
    ("putCommissionRules", {"rates_bp": {"dealer": 1.5}}),
    ("putCommissionRules", {"rates_bp": {"boss": 100}}),
    ("putCommissionRules", {"rates_bp": {}, "fixed_fen": {"guide": 100}}),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"sku": "TEA-001", "rates_bp": {"guide": 100}}]}),
    (
        "putCommissionRules",
        {"rates_bp": {}, "overrides": [{"sku": "TEA-001", "category": "tea", "rates_bp": {"guide": 1}}]},
    ),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"guide_id": "G001"}]}),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"guide_id": "G001", "fixed_fen": {}}]}),
    (
        "putCommissionRules",
        {"rates_bp": {}, "overrides": [{"category": "tea", "sku": None, "fixed_fen": {"store": 5}}]},
    ),
    ("putCommissionRules", {"rates_bp": {}, "overrides": [{"rates_bp": {"guide": 1}}]}),
]


@pytest.mark.parametrize(("operation_id", "body"), AGREEMENT_CASES)
def test_the_schema_and_the_model_accept_and_refuse_the_same_bodies(operation_id, body):
    # When the document's schema and the route's pydantic model each judge the body
    by_schema = validator(body_schema(operation_id)).is_valid(body)
    by_model = pydantic_accepts(BODY_MODELS[operation_id], body)
    # Then they agree
    assert by_schema == by_model, f"schema says {by_schema}, model says {by_model}"


def test_an_integral_float_is_the_one_thing_the_schema_cannot_refuse():
    # Given a quantity written 1.0: JSON Schema counts it as the integer 1
    body = {"lines": [{"sku": "TEA-001", "qty": 1.0}], "fulfilment": {"type": "pickup", "store_id": "S001"}}
    assert validator(body_schema("quote")).is_valid(body)
    # Then the model refuses it all the same (StrictInt: money and counts are never floats), as
    # the document says in the description of Fen
    assert not pydantic_accepts(CartIn, body)
    assert "12.0" in document()["components"]["schemas"]["Fen"]["description"]


def as_json_schema_reads_it(value: Any) -> Any:
    """`value` with integral floats as ints: the same JSON Schema value, the form StrictInt takes."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: as_json_schema_reads_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json_schema_reads_it(v) for v in value]
    return value


def _cases_of(operation_id: str):
    import schemathesis

    schema = schemathesis.openapi.from_dict(document())
    path, method = next(key for key, op in operations().items() if op["operationId"] == operation_id)
    return schema[path][method].as_strategy()


# Bodies the generator drew once that the model refused, kept as explicit examples: with no example
# database (database=None, as on a fresh clone), a failure is only reproducible from this file.
DRAWN_BEFORE: dict[str, list[dict[str, Any]]] = {
    # U+0085 is not white space to the document (ECMA-262); it was to the model's (Rust's) \s
    "putContact": [{"email": "0@0.\x85"}],
}


def _case(operation_id: str, body: dict[str, Any]) -> Any:
    import schemathesis

    path, method = next(key for key, op in operations().items() if op["operationId"] == operation_id)
    return schemathesis.openapi.from_dict(document())[path][method].Case(body=body, media_type="application/json")


@pytest.mark.parametrize("operation_id", sorted(BODY_MODELS))
def test_every_body_the_document_allows_is_accepted_by_the_model(operation_id):
    # Given bodies generated from the document's schema (valid by it, by construction), and those drawn before
    def check(case):
        # Then the pydantic model accepts each: the document is no looser than the code
        # (a draw the document itself refuses would be the generator's slip, not the model's)
        assume(validator(body_schema(operation_id)).is_valid(case.body))
        body = as_json_schema_reads_it(case.body)
        assert pydantic_accepts(BODY_MODELS[operation_id], body), body

    test = given(case=_cases_of(operation_id))(check)
    for body in DRAWN_BEFORE.get(operation_id, []):
        test = example(case=_case(operation_id, body))(test)
    settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)(test)()
