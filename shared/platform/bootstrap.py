"""Wiring, done on first use: settings validated once, the table bound once, real repositories handed out.
Tests and the local runner call `reset()` after changing the environment."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.kernel.lazy import lazy_import

if TYPE_CHECKING:
    from shared.platform import settings as config
    from shared.platform.settings import Settings
else:  # validated on the first request, not at import (pydantic is not part of the cold import)
    config = lazy_import("shared.platform.settings")

if TYPE_CHECKING:  # ordering: the services and their stores, typed
    from shared.data.stores.orders import DynamoOrders
    from shared.kernel.clock import Clock
    from shared.ordering.addresses import AddressBook
    from shared.ordering.checkout import Checkout
    from shared.ordering.lifecycle import OrderLifecycle
    from shared.ordering.placement import OrderPlacement
    from shared.ordering.ports import FlashUnitReleaser
    from shared.ordering.pricing import PricingRules
    from shared.ordering.refunds import OrderRefunds

if TYPE_CHECKING:  # the data layer stays out of the cold import: these are for the type checker only
    from shared.data.stores.addresses import DynamoSavedAddresses
    from shared.data.stores.catalog import DynamoProducts
    from shared.data.stores.locations import DynamoLocations
    from shared.data.stores.notifications import DynamoContacts, DynamoMessages
    from shared.data.stores.stock_levels import DynamoStockLevels
    from shared.flash_sales.service import FlashSales
    from shared.messaging.consumers import Runtime
    from shared.messaging.relay import Relay
    from shared.notifications.delivery import Notifier
    from shared.notifications.model import Channel
    from shared.notifications.providers import Provider
    from shared.payments.ports import PaymentProvider


@lru_cache(maxsize=1)
def ready() -> Settings:
    from shared.data import queues
    from shared.data.connection import bind

    current = config.settings()
    bind(current.table_name, current.region, current.dynamodb_endpoint)
    queues.configure(current.region, current.sqs_endpoint)
    return current


def reset() -> None:
    from shared.data import queues

    config.reset_settings()
    ready.cache_clear()
    queues.reset()


def products() -> DynamoProducts:
    from shared.data.stores.catalog import DynamoProducts

    ready()
    return DynamoProducts()


def orders() -> DynamoOrders:
    from shared.data.stores.orders import DynamoOrders

    return DynamoOrders(id_secret=order_id_secret())


def order_id_secret() -> bytes:
    """The key order ids are derived with from the caller and the Idempotency-Key (docs/orders.md,
    "Idempotency"): from the stage's never-rotated KEYING_SECRET, so rotating the JWT secret does
    not change the order a key names."""
    return ready().derivation_key("order-ids")


def saved_addresses() -> DynamoSavedAddresses:
    from shared.data.stores.addresses import DynamoSavedAddresses

    ready()
    return DynamoSavedAddresses()


def address_book() -> AddressBook:
    """Customers' saved default addresses (`PUT /me/address`), on the system clock."""
    from shared.kernel.clock import SYSTEM
    from shared.ordering.addresses import AddressBook

    return AddressBook(saved_addresses(), SYSTEM)


def payment_provider() -> PaymentProvider:
    from shared.payments.hmac_webhook import HmacWebhookProvider

    return HmacWebhookProvider(ready().payment_webhook_secret.get_secret_value())


def event_relay() -> Relay:
    from shared.data import queues, stream
    from shared.data.derived_events import emit_once
    from shared.messaging.relay import Relay

    current = ready()
    return Relay(current.queue_urls(), stream.decode, queues.send_batch, emit_once)


def consumer_runtime() -> Runtime:
    from shared.data.queues import ConsumerQueue
    from shared.data.stores.consumer_marks import DynamoMarks
    from shared.kernel.clock import now_ms
    from shared.messaging.consumers import RetryPolicy, Runtime

    current = ready()
    policy = RetryPolicy(base_s=current.consumer_retry_base_s, lease_s=current.consumer_lease_s)
    return Runtime(marks=DynamoMarks(), queue=ConsumerQueue(), policy=policy, clock=now_ms)


def notification_messages() -> DynamoMessages:
    from shared.data.stores.notifications import DynamoMessages

    ready()
    return DynamoMessages()


def contacts() -> DynamoContacts:
    from shared.data.stores.notifications import DynamoContacts

    ready()
    return DynamoContacts()


def notifier() -> Notifier:
    from shared.kernel.clock import now_ms
    from shared.notifications.delivery import Notifier

    current = ready()
    return Notifier(
        messages=notification_messages(),
        contacts=contacts(),
        providers=_notification_providers(current),
        clock=now_ms,
        template_ids=current.template_ids(),
        birthday_gift=birthday_coupons(),
    )


@lru_cache(maxsize=1)
def _notification_providers(current: Settings) -> dict[Channel, Provider]:
    """Per process (the WeChat access token is cached in its provider), per settings."""
    from shared.notifications import providers
    from shared.notifications.model import CHANNELS, Channel

    if current.notification_provider == "sink":
        sink = providers.SinkProvider()
        return {channel: sink for channel in CHANNELS}
    assert current.wechat_app_id and current.wechat_app_secret and current.sms_api_key  # Settings checked
    transport = providers.UrllibTransport()
    tokens = providers.StableAccessToken(current.wechat_app_id, current.wechat_app_secret.get_secret_value(), transport)
    # Email has no live adapter yet: its messages are skipped as NO_PROVIDER (docs/notifications.md).
    return {
        Channel.WECHAT: providers.WeChatSubscribeProvider(tokens, transport, current.wechat_miniprogram_state),
        Channel.SMS: providers.SmsGatewayProvider(current.sms_api_key.get_secret_value(), transport),
    }


def pricing_rules() -> PricingRules:
    from shared.ordering.pricing import PricingRules

    s = config.settings()
    return PricingRules(
        free_shipping_threshold_fen=s.free_shipping_threshold_fen,
        shipping_fen={
            "delivery": s.shipping_delivery_fen,
            "ship_from_store": s.shipping_ship_from_store_fen,
            "same_city": s.shipping_same_city_fen,
        },
    )


def locations() -> DynamoLocations:
    from shared.data.stores.locations import DynamoLocations

    ready()
    return DynamoLocations()


def stock_levels() -> DynamoStockLevels:
    from shared.data.stores.stock_levels import DynamoStockLevels

    ready()
    return DynamoStockLevels()


def checkout() -> Checkout:
    from shared.data.stores.checkout_reads import customer_coupons, load_for_checkout
    from shared.data.stores.membership import points_offer
    from shared.ordering.checkout import Checkout

    current = ready()
    return Checkout(
        read=load_for_checkout,
        rules=pricing_rules(),
        payment_window_s=current.order_payment_window_s,
        same_city_radius_km=current.same_city_radius_km,
        wallet=customer_coupons,
        points=points_offer,
    )


# The order services and their stores load the data layer (botocore, about 100 ms); importing them
# on first use keeps them out of the cold import of app.py, which every function of the app pays.
# `clock`: the system clock unless a test or the local stage passes its own.
def order_lifecycle(clock: Clock | None = None) -> OrderLifecycle:
    from shared.data.stores.ordering_uow import unit_of_work
    from shared.kernel.clock import SYSTEM
    from shared.ordering.lifecycle import OrderLifecycle

    return OrderLifecycle(unit_of_work, orders(), flash_unit_releaser(), clock or SYSTEM, order_coupons())


def ordering(clock: Clock | None = None) -> OrderPlacement:
    from shared.data.stores.membership import DynamoOrderPoints
    from shared.data.stores.ordering_uow import unit_of_work
    from shared.kernel.clock import SYSTEM
    from shared.ordering.placement import OrderPlacement

    return OrderPlacement(
        unit_of_work,
        orders(),
        checkout(),
        clock or SYSTEM,
        order_coupons(),
        id_secret=order_id_secret(),
        points=DynamoOrderPoints(),
    )


def order_refunds(clock: Clock | None = None) -> OrderRefunds:
    from shared.data.stores.ordering_uow import unit_of_work
    from shared.data.stores.paid_membership import DynamoPaidTerms
    from shared.kernel.clock import SYSTEM
    from shared.membership.refund_pricing import MembershipRefundPricing
    from shared.ordering.refunds import OrderRefunds

    return OrderRefunds(
        unit_of_work,
        orders(),
        clock or SYSTEM,
        order_coupons(),
        flash_unit_releaser(),
        id_secret=order_id_secret(),
        # A paid membership's line is refunded by the plan's policy, not by its unit (docs/membership.md).
        pricing=MembershipRefundPricing(DynamoPaidTerms(), coupons, orders()),
    )


def flash_unit_releaser() -> FlashUnitReleaser:
    """Gives an unpaid flash order's units back to its sale, in the order's unit of work."""
    return flash_sales().releaser


def flash_sales(clock: Clock | None = None) -> FlashSales:
    """The flash-sale service. It keeps what it learns (the sales it has read, the empty-shard
    hints, the contended marks), so the routes get one per process and settings, on the system
    clock; a test or the local stage that passes its own clock gets a new one, and keeps it."""
    current = ready()
    if clock is None:
        return _flash_sales_of_the_process(current)
    return _flash_sales(current, clock)


@lru_cache(maxsize=2)
def _flash_sales_of_the_process(current: Settings) -> FlashSales:
    from shared.kernel.clock import SYSTEM

    return _flash_sales(current, SYSTEM)


def _flash_sales(current: Settings, clock: Clock) -> FlashSales:
    from shared.data.stores.flash_sales import DynamoFlashSales, DynamoPurchaseParts, DynamoShards
    from shared.flash_sales.service import FlashSales, FlashSaleSettings

    return FlashSales(
        sales=DynamoFlashSales(),
        shards=DynamoShards(),
        parts=DynamoPurchaseParts(),
        orders=ordering(clock),
        replays=orders(),
        products=products(),
        stores=locations(),
        rules=pricing_rules(),
        addresses=saved_addresses(),
        settings=FlashSaleSettings(
            default_peak_per_s=current.flash_sale_default_peak_per_s,
            payment_window_s=current.order_payment_window_s,
            settle_s=current.flash_sale_settle_s,
            empty_hint_s=current.flash_sale_empty_hint_s,
            contended_s=current.flash_sale_contended_s,
        ),
        clock=clock,
    )


if TYPE_CHECKING:
    from shared.coupons.ports import CouponPorts


def coupons() -> CouponPorts:
    """The coupon use cases' ports: the DynamoDB stores, the system clock and the settings' policy.
    The stores' verification codes are keyed by a key derived from the JWT secret (a secret of the
    stage already, never shown), so a stage needs no second secret for them."""
    from shared.coupons.ports import CouponPolicy, CouponPorts
    from shared.data.stores import coupons as store
    from shared.kernel.clock import SYSTEM

    current = ready()
    coupon_ids = current.derivation_key("coupon-ids")  # keys the coupon ids derived from a claim's key
    policy = CouponPolicy(
        default_peak_per_s=current.coupon_default_peak_per_s,
        template_cache_s=current.coupon_template_cache_s,
        exhausted_hint_s=current.flash_sale_empty_hint_s,
        reversal_window_s=current.coupon_reversal_window_s,
        verification_step_s=current.coupon_verification_step_s,
        wrong_code_window_s=current.coupon_wrong_code_window_s,
        wrong_codes_per_customer=current.coupon_wrong_codes_per_customer,
        wrong_codes_per_store=current.coupon_wrong_codes_per_store,
    )
    return CouponPorts(
        templates=store.DynamoCouponTemplates(),
        coupons=store.DynamoCoupons(),
        unit_of_work=store.unit_of_work,
        replay=store.CouponReplays(coupon_ids),
        stores=store.DynamoStoreDirectory(),
        prices=store.DynamoCartPrices(),
        guides=store.DynamoGuideMembers(),
        levels=store.DynamoMemberLevels(),
        reminders=store.DynamoExpiryReminders(),
        wrong_codes=store.DynamoWrongCodes(),
        policy=policy,
        clock=SYSTEM,
        verification_key=current.derivation_key("store-verification"),
        id_secret=coupon_ids,
    )


if TYPE_CHECKING:
    from shared.promotions.service import Promotions


def promotions() -> Promotions:
    """Promotions for merchant admins and for everyone (shared/promotions/service.py); checkout
    reads the same store's cached list with the cart (shared/data/stores/checkout_reads.py)."""
    from shared.data.stores.promotions import DynamoPromotions
    from shared.promotions.service import Promotions

    ready()
    return Promotions(DynamoPromotions())


if TYPE_CHECKING:
    from shared.ordering.ports import CouponHolder


def order_coupons() -> CouponHolder:
    """Locks, uses and gives back an order's coupons in the order's own transaction."""
    from shared.data.stores.coupons import DynamoOrderCoupons

    ready()
    return DynamoOrderCoupons()


if TYPE_CHECKING:
    from shared.guides.binding import MemberBinding
    from shared.guides.organisation import OrgAdmin


def org_admin(clock: Clock | None = None) -> OrgAdmin:
    """Dealers, stores, guides and distributors for merchant admins (shared/guides/organisation.py)."""
    from shared.data.stores.guides import DynamoOrgDirectory
    from shared.guides.organisation import OrgAdmin
    from shared.kernel.clock import SYSTEM

    ready()
    return OrgAdmin(DynamoOrgDirectory(), clock or SYSTEM)


def member_binding(clock: Clock | None = None) -> MemberBinding:
    """Members bound to guides under the merchant's policy, share visits, and who an order credits."""
    from shared.data.stores.guides import DynamoBindings, DynamoOrgDirectory
    from shared.guides.binding import MemberBinding
    from shared.guides.model import BindingPolicy
    from shared.kernel.clock import SYSTEM

    current = ready()
    policy = BindingPolicy(expire_after_days=current.binding_expire_after_days)
    return MemberBinding(DynamoOrgDirectory(), DynamoBindings(), policy, clock or SYSTEM)


if TYPE_CHECKING:
    from shared.commission.ledger import CommissionLedger
    from shared.commission.release import CommissionRelease
    from shared.commission.rules import CommissionRulesAdmin
    from shared.data.stores.commission import DynamoLedger


def commission_rules(clock: Clock | None = None) -> CommissionRulesAdmin:
    from shared.commission.rules import CommissionRulesAdmin
    from shared.data.stores.commission import DynamoRules
    from shared.kernel.clock import SYSTEM

    return CommissionRulesAdmin(DynamoRules(), ready().commission_cap_bp, clock or SYSTEM)


def commission_ledger_store() -> DynamoLedger:
    from shared.data.stores.commission import DynamoLedger

    ready()
    return DynamoLedger()


def commission_ledger() -> CommissionLedger:
    """The consumer of OrderPaid / OrderCompleted / RefundIssued (one write with its mark). Orders
    placed before they carried their credited parties are credited by the binding at payment."""
    from shared.commission.ledger import CommissionLedger
    from shared.data.stores.commission import DynamoCatalogue, DynamoRules

    current = ready()
    return CommissionLedger(
        ledger=commission_ledger_store(),
        rules=DynamoRules(),
        catalogue=DynamoCatalogue(),
        credit_for=member_binding().credited_for,
        after_sale_window_ms=current.commission_after_sale_window_s * 1000,
    )


def commission_release(clock: Clock | None = None) -> CommissionRelease:
    from shared.commission.release import CommissionRelease
    from shared.kernel.clock import SYSTEM

    return CommissionRelease(commission_ledger_store(), clock or SYSTEM)


if TYPE_CHECKING:
    from shared.ordering.ports import OrderReads
    from shared.payments.model import PayableOrder
    from shared.payments.wechatpay import WeChatPayClient, WeChatPayments, WeChatPayMerchant


def wechat_payments(clock: Clock | None = None) -> WeChatPayments:
    """WeChat Pay v3 (docs/payments.md): prepays kept beside their orders, callbacks applied through the
    order lifecycle's payment path. NotFound where PAYMENT_PROVIDER is not wechatpay. `cryptography`
    and the keys load here, on the first WeChat Pay request, never in the cold import of app.py."""
    from shared.data.stores.payments import DynamoPrepays
    from shared.kernel.clock import SYSTEM
    from shared.payments.wechatpay import WeChatPayments

    current = ready()
    merchant = _wechatpay_merchant(current)
    clock = clock or SYSTEM
    client = _wechatpay_client(current, clock)
    payables = OrderPayables(orders())
    refunds = wechatpay_refunds(clock)
    on_paid = profit_sharing(clock).watch if current.wechatpay_profit_sharing else None
    return WeChatPayments(
        merchant,
        client,
        payables,
        DynamoPrepays(),
        order_lifecycle(clock).apply_payment,
        clock,
        refunds.notified,
        on_paid,
    )


if TYPE_CHECKING:
    from shared.messaging.ports import Consumer
    from shared.payments.provider_refunds import PaymentRefunds
    from shared.payments.wechatpay_refunds import WeChatPayRefunds


def wechatpay_refunds(clock: Clock | None = None) -> WeChatPayRefunds:
    """Refunds and closes through WeChat Pay (docs/payments.md, "Refunds"). NotFound where
    PAYMENT_PROVIDER is not wechatpay."""
    from shared.data.stores.payments import DynamoPrepays, DynamoProviderRefunds, DynamoRecordedPayments
    from shared.kernel.clock import SYSTEM
    from shared.payments.wechatpay_refunds import WeChatPayRefunds

    current = ready()
    merchant = _wechatpay_merchant(current)
    clock = clock or SYSTEM
    client = _wechatpay_client(current, clock)
    return WeChatPayRefunds(
        merchant,
        client,
        DynamoProviderRefunds(),
        DynamoRecordedPayments(orders()),
        DynamoPrepays(),
        clock,
        query_after_ms=current.wechatpay_refund_query_after_s * 1000,
    )


def payment_refunds(clock: Clock | None = None) -> PaymentRefunds:
    """Finance's side of refunds: in every stage, whatever the provider."""
    from shared.data.stores.payments import DynamoProviderRefunds, DynamoRecordedPayments
    from shared.kernel.clock import SYSTEM
    from shared.payments.provider_refunds import PaymentRefunds

    ready()
    return PaymentRefunds(DynamoRecordedPayments(orders()), DynamoProviderRefunds(), clock or SYSTEM)


def payments_consumer() -> Consumer:
    """The consumer of PaymentsQueue: WeChat Pay's refunds and closes, or nothing to call (HMAC)."""
    from shared.payments.provider_refunds import NoProviderRefunds

    if ready().payment_provider != "wechatpay":
        return NoProviderRefunds()
    from shared.payments.wechatpay_refunds import WeChatPayConsumer

    sharing = profit_sharing() if ready().wechatpay_profit_sharing else None
    return WeChatPayConsumer(wechatpay_refunds(), sharing.refund_issued if sharing else None)


if TYPE_CHECKING:
    from shared.guides.ports import OrgDirectory
    from shared.payments.profit_sharing import ProfitSharing
    from shared.payments.profit_sharing_model import OwedEntry, ReceiverAccount


def profit_sharing(clock: Clock | None = None) -> ProfitSharing:
    """Profit sharing through WeChat Pay (docs/payments.md, "Profit sharing"): the commission ledger's
    entries and the parties' payout accounts meet the payments capability here. NotFound where
    PAYMENT_PROVIDER is not wechatpay."""
    from shared.data.stores.guides import DynamoOrgDirectory
    from shared.data.stores.payments import DynamoRecordedPayments
    from shared.data.stores.profit_sharing import DynamoProfitShares
    from shared.kernel.clock import SYSTEM
    from shared.payments.profit_sharing import ProfitSharing

    current = ready()
    merchant = _wechatpay_merchant(current)
    clock = clock or SYSTEM
    client = _wechatpay_client(current, clock)
    return ProfitSharing(
        merchant,
        client,
        DynamoProfitShares(),
        DynamoRecordedPayments(orders()),
        LedgerOwed(commission_ledger_store()),
        PartyAccounts(DynamoOrgDirectory()),
        clock,
        max_ratio_bp=current.commission_cap_bp,
        query_after_ms=current.wechatpay_refund_query_after_s * 1000,
        wait_min_ms=current.wechatpay_refund_query_after_s * 1000,
    )


class LedgerOwed:
    """The commission ledger's entries of an order as profit sharing reads them (shared.payments.
    profit_sharing.CommissionOwed)."""

    def __init__(self, ledger: DynamoLedger) -> None:
        self._ledger = ledger

    def entries(self, order_id: str) -> list[OwedEntry]:
        from shared.payments.profit_sharing_model import OwedEntry

        return [
            OwedEntry(e.role.value, e.payee_id, e.amount_fen, e.status.value, e.refund_id, e.entry_id, e.payout)
            for e in self._ledger.entries(order_id)
        ]


class PartyAccounts:
    """Where a party is paid in WeChat Pay: its `payout_account` (shared.payments.profit_sharing.ReceiverAccounts)."""

    def __init__(self, directory: OrgDirectory) -> None:
        self._directory = directory

    def account(self, role: str, payee_id: str) -> ReceiverAccount | None:
        from shared.payments.profit_sharing_model import receiver_account_of

        get: Any = {
            "dealer": self._directory.get_dealer,
            "store": self._directory.get_store,
            "guide": self._directory.get_guide,
            "distributor_1": self._directory.get_distributor,
            "distributor_2": self._directory.get_distributor,
        }.get(role)
        party = get(payee_id) if get is not None else None
        return receiver_account_of(getattr(party, "payout_account", None), getattr(party, "name", None))


def _wechatpay_client(current: Settings, clock: Clock) -> WeChatPayClient:
    """The signed v3 client that prepays, refunds and profit sharing each call WeChat Pay through."""
    from shared.payments.urllib_transport import UrllibTransport
    from shared.payments.wechatpay import WeChatPayClient

    return WeChatPayClient(_wechatpay_merchant(current), UrllibTransport(current.wechatpay_timeout_s), clock)


@lru_cache(maxsize=2)
def _wechatpay_merchant(current: Settings) -> WeChatPayMerchant:
    """Per process and settings: parsing the keys is the slow part (a few milliseconds)."""
    from shared.kernel.errors import NotFound
    from shared.payments.wechatpay import WeChatPayMerchant

    if current.payment_provider != "wechatpay":
        raise NotFound("WeChat Pay is not this stage's payment provider")
    assert current.wechatpay_private_key and current.wechatpay_apiv3_key  # Settings checked
    return WeChatPayMerchant.load(
        appid=str(current.wechatpay_appid),
        mchid=str(current.wechatpay_mchid),
        merchant_serial=str(current.wechatpay_merchant_serial),
        private_key_pem=current.wechatpay_private_key.get_secret_value(),
        apiv3_key=current.wechatpay_apiv3_key.get_secret_value(),
        public_key_id=current.wechatpay_public_key_id,
        public_key_pem=current.wechatpay_public_key,
        certificates_pem=current.wechatpay_platform_certificates,
        notify_url=str(current.wechatpay_notify_url),
        api_base=current.wechatpay_api_base,
        description=current.wechatpay_description,
        profit_sharing=current.wechatpay_profit_sharing,
    )


class OrderPayables:
    """The payments capability's view of an order (shared.payments.ports.PayableOrders), read through
    the ordering capability's reads: the two meet here, in the composition root, not in each other."""

    def __init__(self, reads: OrderReads) -> None:
        self._reads = reads

    def get(self, order_id: str) -> PayableOrder | None:
        from shared.payments.model import PayableOrder

        order = self._reads.get(order_id)
        if order is None:
            return None
        # `credited` is {} when placement credited nobody, None when the ledger credits at payment (flash)
        may_credit = order.credited != {}
        return PayableOrder(
            order.order_id, order.customer_id, order.status.value, order.total_fen, order.expires_at_ms, may_credit
        )


if TYPE_CHECKING:
    from shared.settlement.runs import SettlementRuns, SettlementWorker


def settlement_runs(clock: Clock | None = None) -> SettlementRuns:
    """Finance's settlement runs over the commission ledger; statements name each payee and its account."""
    from shared.data.stores.settlement import DynamoSettlements
    from shared.kernel.clock import SYSTEM
    from shared.settlement.runs import SettlementRuns

    return SettlementRuns(DynamoSettlements(), commission_ledger_store(), org_admin().payee_details, clock or SYSTEM)


def settlement_worker() -> SettlementWorker:
    from shared.settlement.runs import SettlementWorker

    return SettlementWorker(settlement_runs())


if TYPE_CHECKING:
    from shared.reporting.bookkeeping import ReportBookkeeping
    from shared.reporting.reports import Reports


def report_bookkeeping() -> ReportBookkeeping:
    """The consumer of OrderPaid / RefundIssued / CommissionRecorded that keeps the report books
    (docs/commission.md, "Reports"); orders that carry no credited parties are credited by the
    binding, as the ledger credits them."""
    from shared.data.stores.reporting import DynamoReportBooks
    from shared.reporting.bookkeeping import ReportBookkeeping

    ready()
    return ReportBookkeeping(
        DynamoReportBooks(), member_binding().credited_for, config.settings().report_utc_offset_minutes
    )


def reports() -> Reports:
    """The reconciliation and sales reports, read from the report books' cells."""
    from shared.data.stores.reporting import DynamoReportBooks
    from shared.reporting.reports import Reports

    ready()
    return Reports(DynamoReportBooks(), utc_offset_min=config.settings().report_utc_offset_minutes)


# -- members: levels and points (docs/membership.md) --------------------------------------------
if TYPE_CHECKING:
    from shared.membership.accounts import MemberAccounts
    from shared.membership.birthdays import BirthdayCoupons
    from shared.membership.directory import MemberDirectory
    from shared.membership.earning import PointsEarning
    from shared.membership.expiry import PointsExpiry
    from shared.membership.paid import MembershipPlans
    from shared.membership.paid_activation import MembershipConsumer
    from shared.membership.paid_expiry import PaidExpiry
    from shared.membership.paid_reports import PaidMembershipReport
    from shared.membership.ports import PointsHolds
    from shared.membership.purchase import MembershipPurchase
    from shared.membership.release import PointsRelease
    from shared.membership.reports import MembershipReport
    from shared.membership.rules import MembershipRulesAdmin
    from shared.membership.segments import SegmentIssues


def membership_rules() -> MembershipRulesAdmin:
    """The merchant's level table and points rule (`/admin/membership-rules`)."""
    from shared.data.stores.membership import DynamoMembershipRules
    from shared.membership.rules import MembershipRulesAdmin

    ready()
    return MembershipRulesAdmin(DynamoMembershipRules())


def membership_plans() -> MembershipPlans:
    """The merchant's paid-membership plans (`/admin/membership-plans`)."""
    from shared.data.stores.membership_plans import DynamoMembershipPlans
    from shared.membership.paid import MembershipPlans

    ready()
    return MembershipPlans(DynamoMembershipPlans())


def membership_purchase(clock: Clock | None = None) -> MembershipPurchase:
    """`POST /memberships`: a plan bought as an ordinary order (the ordering's placement, the
    customer's binding read as checkout reads it)."""
    from shared.data.stores.checkout_reads import load_for_checkout
    from shared.data.stores.membership_plans import DynamoMembershipPlans
    from shared.inventory.locations import WAREHOUSE
    from shared.membership.purchase import MembershipPurchase

    current = ready()
    return MembershipPurchase(
        DynamoMembershipPlans(),
        ordering(clock),
        orders(),
        lambda sub: load_for_checkout([], sub, [WAREHOUSE]).credit,
        current.order_payment_window_s,
    )


def member_accounts(clock: Clock | None = None) -> MemberAccounts:
    """`GET /me/member` (enrols on the first ask) and `GET /me/points`."""
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules
    from shared.data.stores.paid_membership import DynamoPaidTerms
    from shared.kernel.clock import SYSTEM
    from shared.membership.accounts import MemberAccounts

    ready()
    return MemberAccounts(DynamoMembers(), DynamoMembershipRules(), clock or SYSTEM, DynamoPaidTerms())


def points_earning() -> PointsEarning:
    """The consumer of OrderPaid / OrderCompleted / RefundIssued: growth, levels and points, one
    write with its mark. The points stay frozen for the commission ledger's after-sale window."""
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules
    from shared.membership.earning import PointsEarning

    current = ready()
    return PointsEarning(DynamoMembers(), DynamoMembershipRules(), current.commission_after_sale_window_s * 1000)


def membership_consumer() -> MembershipConsumer:
    """The MembershipQueue's consumer: a paid membership activated by its OrderPaid and undone by
    its RefundIssued (terms, paid member, checkout's MEMBER item, the welcome pack), then points."""
    from shared.data.stores.paid_membership import DynamoPaidTerms
    from shared.membership.paid_activation import MembershipConsumer, PaidMembershipEvents

    # Once its membership runs, the order completes (its rebate then frozen and settled as any).
    paid = PaidMembershipEvents(DynamoPaidTerms(), coupons, lambda order: order_lifecycle().complete_membership(order))
    return MembershipConsumer(points_earning(), paid)


def points_release(clock: Clock | None = None) -> PointsRelease:
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules
    from shared.kernel.clock import SYSTEM
    from shared.membership.release import PointsRelease

    ready()
    return PointsRelease(DynamoMembers(), DynamoMembershipRules(), clock or SYSTEM)


def points_expiry(clock: Clock | None = None) -> PointsExpiry:
    from shared.data.stores.membership import DynamoMembers
    from shared.kernel.clock import SYSTEM
    from shared.membership.expiry import PointsExpiry

    ready()
    return PointsExpiry(DynamoMembers(), clock or SYSTEM)


def points_holds() -> PointsHolds:
    """Spending points on an order: reserve, commit on payment, release when it ends unpaid. Checkout
    will add the same parts to the order's own transaction (shared.data.stores.membership.hold_parts)."""
    from shared.data.stores.membership import DynamoPointsHolds

    ready()
    return DynamoPointsHolds()


def member_directory(clock: Clock | None = None) -> MemberDirectory:
    """`GET /admin/members?tag=`: members by tag, through the tags' index ranges."""
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules
    from shared.kernel.clock import SYSTEM
    from shared.membership.directory import MemberDirectory

    ready()
    return MemberDirectory(DynamoMembers(), DynamoMembershipRules(), clock or SYSTEM)


def membership_report(clock: Clock | None = None) -> MembershipReport:
    """`GET /admin/reports/membership`: members per store and tag, through the tags' index ranges."""
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules
    from shared.kernel.clock import SYSTEM
    from shared.membership.reports import MembershipReport

    ready()
    return MembershipReport(DynamoMembers(), DynamoMembershipRules(), clock or SYSTEM)


def paid_membership_report() -> PaidMembershipReport:
    """`GET /admin/reports/membership?from=&to=`: the paid-membership ratios, through the terms' and
    the tags' index ranges and the guides' bound customers."""
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules
    from shared.data.stores.paid_reports import DynamoGuideRoster, DynamoTermsEnding
    from shared.membership.paid_reports import PaidMembershipReport

    current = ready()
    return PaidMembershipReport(
        DynamoTermsEnding(),
        DynamoGuideRoster(),
        DynamoMembers(),
        DynamoMembershipRules(),
        utc_offset_min=current.report_utc_offset_minutes,
    )


def paid_expiry(clock: Clock | None = None) -> PaidExpiry:
    """The paid-membership expiry and the reminder before it (two schedules), through gsi2
    `PAIDMEMBER#END` from their checkpoints."""
    from shared.data.stores.paid_expiry import DynamoEndingMembers, DynamoJobCheckpoints
    from shared.kernel.clock import SYSTEM
    from shared.membership.paid_expiry import PaidExpiry

    current = ready()
    return PaidExpiry(
        DynamoEndingMembers(), DynamoJobCheckpoints(), clock or SYSTEM, current.paid_membership_remind_days
    )


def segment_issues(clock: Clock | None = None) -> SegmentIssues:
    """Issuing a coupon template to a segment: the job, its schedule, through the coupons' claim path."""
    from shared.data.stores.membership import DynamoMembers, DynamoMembershipRules, DynamoSegmentJobs
    from shared.kernel.clock import SYSTEM
    from shared.membership.coupon_gifts import ClaimedGifts
    from shared.membership.segments import SegmentIssues

    ready()
    return SegmentIssues(
        DynamoMembers(), DynamoSegmentJobs(), DynamoMembershipRules(), ClaimedGifts(coupons()), clock or SYSTEM
    )


def birthday_coupons() -> BirthdayCoupons:
    """The birthday coupon the greeting gives (the template named in the membership rules)."""
    from shared.data.stores.membership import DynamoMembershipRules
    from shared.membership.birthdays import BirthdayCoupons
    from shared.membership.coupon_gifts import ClaimedGifts

    ready()
    return BirthdayCoupons(DynamoMembershipRules(), ClaimedGifts(coupons()))
