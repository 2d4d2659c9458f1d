"""Every PynamoDB item class of the single table. Importing this package registers them all."""

from shared.data.items.catalog import ProductItem
from shared.data.items.commission import CommissionRulesItem, LedgerBookItem, LedgerEntryItem, PayeeTotalsItem
from shared.data.items.consumers import ConsumedItem
from shared.data.items.coupons import (
    CouponClaimantItem,
    CouponCodeItem,
    CouponGuideIssuesItem,
    CouponItem,
    CouponRedemptionItem,
    CouponReminderCheckpointItem,
    CouponReminderItem,
    CouponShardItem,
    CouponTallyItem,
    CouponTemplateItem,
)
from shared.data.items.events import EventItem
from shared.data.items.flash_sales import (
    FlashBuyerItem,
    FlashClaimItem,
    FlashReconcileItem,
    FlashSaleItem,
    FlashShardItem,
)
from shared.data.items.guides import BindingAuditItem, BindingItem, DistributorItem, ShareVisitItem
from shared.data.items.idempotency import IdempotencyItem
from shared.data.items.member import MemberItem
from shared.data.items.membership import (
    MemberProfileItem,
    MembershipRulesItem,
    OrderPointsItem,
    PointsBalanceItem,
    PointsEntryItem,
    PointsHoldItem,
)
from shared.data.items.membership_plans import MembershipPlanItem
from shared.data.items.notifications import ContactItem, NotificationItem, WeChatGrantItem
from shared.data.items.orders import OrderItem, PaymentItem, RefundItem
from shared.data.items.org import LocationItem, PartyItem
from shared.data.items.paid_expiry import PaidExpiryCheckpointItem
from shared.data.items.paid_membership import PaidMemberItem, PaidTermItem
from shared.data.items.payments import PrepayItem, ProviderRefundItem
from shared.data.items.promotions import PromotionItem
from shared.data.items.reporting import ReportBookItem, ReportCellItem
from shared.data.items.settlement import SettlementRunItem, SettlementShardItem, StatementRowItem
from shared.data.items.stock import StockItem

__all__ = [
    "BindingAuditItem",
    "BindingItem",
    "CommissionRulesItem",
    "ConsumedItem",
    "ContactItem",
    "CouponClaimantItem",
    "CouponCodeItem",
    "CouponGuideIssuesItem",
    "CouponItem",
    "CouponRedemptionItem",
    "CouponReminderCheckpointItem",
    "CouponReminderItem",
    "CouponShardItem",
    "CouponTallyItem",
    "CouponTemplateItem",
    "DistributorItem",
    "EventItem",
    "FlashBuyerItem",
    "FlashClaimItem",
    "FlashReconcileItem",
    "FlashSaleItem",
    "FlashShardItem",
    "IdempotencyItem",
    "LedgerBookItem",
    "LedgerEntryItem",
    "LocationItem",
    "MemberItem",
    "MemberProfileItem",
    "MembershipPlanItem",
    "MembershipRulesItem",
    "NotificationItem",
    "OrderItem",
    "OrderPointsItem",
    "PaidExpiryCheckpointItem",
    "PaidMemberItem",
    "PaidTermItem",
    "PartyItem",
    "PayeeTotalsItem",
    "PaymentItem",
    "PointsBalanceItem",
    "PointsEntryItem",
    "PointsHoldItem",
    "PrepayItem",
    "ProductItem",
    "PromotionItem",
    "ProviderRefundItem",
    "RefundItem",
    "ReportBookItem",
    "ReportCellItem",
    "SettlementRunItem",
    "SettlementShardItem",
    "ShareVisitItem",
    "StatementRowItem",
    "StockItem",
    "WeChatGrantItem",
]
