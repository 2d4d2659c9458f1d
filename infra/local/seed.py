"""Demo data for `make dev`: a dozen products (Chinese and English names), the warehouse `WH`, two
stores, a dealer and a guide per store, stock of every product at each location, and one member
(`c-demo`). Idempotent: running it twice changes nothing."""

from __future__ import annotations

import time

from infra.local.seed_contacts import seed_contacts
from shared.catalog import model as catalog
from shared.catalog.model import Product
from shared.data.items import LocationItem, MemberItem
from shared.guides.model import Dealer, Guide, Store
from shared.inventory import stock as inventory
from shared.platform import bootstrap
from shared.promotions.model import Kind, Promotion, Tier

PRODUCTS = [
    # sku, 中文名, English name, category, price_fen, member_price_fen
    ("TEA-001", "西湖龙井 250克", "West Lake Longjing tea 250 g", "tea", 16800, 15800),
    ("TEA-002", "云南普洱茶饼 357克", "Yunnan Pu'er tea cake 357 g", "tea", 12800, None),
    ("SNK-001", "手工凤梨酥 6枚", "Handmade pineapple cakes, 6", "snacks", 5800, 5200),
    ("SNK-002", "五香牛肉干 200克", "Five-spice beef jerky 200 g", "snacks", 4500, None),
    ("BEV-001", "冷萃咖啡 12瓶", "Cold brew coffee, 12 bottles", "drinks", 9900, 8900),
    ("BEV-002", "椰子水 1升×6", "Coconut water 1 L x 6", "drinks", 5400, None),
    ("HOM-001", "竹纤维毛巾套装", "Bamboo fibre towel set", "home", 8900, 7900),
    ("HOM-002", "陶瓷茶具八件套", "Ceramic tea set, 8 pieces", "home", 29900, 26900),
    ("BTY-001", "玫瑰保湿面膜 10片", "Rose hydrating masks, 10", "beauty", 12900, 11900),
    ("BTY-002", "草本洗发水 500毫升", "Herbal shampoo 500 ml", "beauty", 6900, None),
    ("FRS-001", "阳澄湖大闸蟹礼券", "Yangcheng Lake hairy crab voucher", "fresh", 59800, 55800),
    ("FRS-002", "新疆阿克苏苹果 5公斤", "Aksu apples 5 kg", "fresh", 8800, None),
]

LOCATIONS = [
    # id, kind, 中文名, English name, city, lat_e6, lng_e6
    ("WH", "warehouse", "嘉兴中心仓", "Jiaxing central warehouse", "嘉兴", 30746000, 120755000),
    ("S001", "store", "上海静安店", "Shanghai Jing'an store", "上海", 31229000, 121448000),
    ("S002", "store", "杭州西湖店", "Hangzhou West Lake store", "杭州", 30259000, 120130000),
]
# Each location's city in the other script: same-city matches "上海" and "Shanghai" alike.
CITY_EN = {"嘉兴": "Jiaxing", "上海": "Shanghai", "杭州": "Hangzhou"}

# Units on hand per location for every product: enough to play with, few enough at the stores
# that same-city and pickup run out where a developer can see it.
STOCK = {"WH": 100, "S001": 20, "S002": 20}
MEMBERS = ["c-demo"]  # the customer of the demo token pays member prices

# 满300减30 on the whole catalogue, from 2025 to 2035.
STANDING_PROMOTION = Promotion(
    promotion_id="FULL-300-OFF-30",
    kind=Kind.SPEND_THRESHOLD,
    starts_ms=1_735_689_600_000,  # 2025-01-01T00:00:00Z
    ends_ms=2_051_222_400_000,  # 2035-01-01T00:00:00Z
    tiers=(Tier(threshold_fen=30000, off_fen=3000),),
    name="满300减30",
)

# The organisation (docs/commission.md): a dealer owning both stores, a guide per store, and two
# distributors, the second recruited by the first (so an order through its link pays two levels).
# Payout accounts as WeChat Pay profit sharing receives them (docs/payments.md): the dealer and the
# stores by their own merchant ids, the guides and distributors by their openid under our AppID.
DEALER = ("D001", "华东经销商", "wechatpay:merchant:1900000109")
STORE_ACCOUNTS = {"S001": "wechatpay:merchant:1900000301", "S002": "wechatpay:merchant:1900000302"}
GUIDES = [("G001", "导购 王芳", "S001"), ("G002", "导购 李明", "S002")]
DISTRIBUTORS = [("m-li", "分销员 李娜", None), ("m-zhou", "分销员 周杰", "m-li")]


def seed() -> dict[str, int]:
    now_ms = int(time.time() * 1000)
    products = bootstrap.products()
    for sku, name, name_en, category, price, member in PRODUCTS:
        catalog.upsert_product(
            Product(
                sku=sku,
                name=name,
                name_en=name_en,
                category=category,
                price_fen=price,
                member_price_fen=member,
                low_stock_threshold=10,
            ),
            products,
            now_ms,
        )
    for loc_id, kind, name, name_en, city, lat, lng in LOCATIONS:
        pk, sk = LocationItem.key(loc_id)
        LocationItem(
            pk,
            sk,
            location_id=loc_id,
            kind=kind,
            name=name,
            name_en=name_en,
            city=city,
            city_en=CITY_EN[city],
            lat_e6=lat,
            lng_e6=lng,
            dealer_id=DEALER[0] if kind == "store" else None,
            gsi1pk="LOCATIONS",
            gsi1sk=loc_id,
            created_at=now_ms,
        ).save()
    _seed_organisation()
    stocked = _seed_stock()
    contacts = seed_contacts(now_ms)
    for customer_sub in MEMBERS:
        pk, sk = MemberItem.key(customer_sub)
        MemberItem(pk, sk, customer_sub=customer_sub, created_at=now_ms).save()
    promotions = _seed_promotions()
    return {
        "products": len(PRODUCTS),
        "locations": len(LOCATIONS),
        "parties": 1 + len(GUIDES) + len(DISTRIBUTORS),
        "stock_items": stocked,
        "members": len(MEMBERS),
        "contacts": contacts,
        "promotions": promotions,
    }


def _seed_promotions() -> int:
    """The 满300减30 that was a setting (PROMOTION_*) before promotions were data (docs/pricing.md):
    created once, through the admin use case; a second run leaves it (and any edit of it) alone."""
    service = bootstrap.promotions()
    if service.show(STANDING_PROMOTION.promotion_id) is not None:
        return 0
    service.put(STANDING_PROMOTION, expected_version=0)
    return 1


def _seed_organisation() -> None:
    """Through the admin use cases, so the seed keeps their rules (a guide's store exists, an upline
    is a distributor). Puts replace: running twice changes nothing."""
    org = bootstrap.org_admin()
    org.put_dealer(Dealer(dealer_id=DEALER[0], name=DEALER[1], payout_account=DEALER[2]))
    for loc_id, kind, name, *_ in LOCATIONS:
        if kind == "store":
            org.put_store(Store(loc_id, name, dealer_id=DEALER[0], payout_account=STORE_ACCOUNTS[loc_id]))
    for guide_id, name, store_id in GUIDES:
        org.put_guide(
            Guide(
                guide_id=guide_id, name=name, store_id=store_id, payout_account=f"wechatpay:openid:o_{guide_id}_local"
            )
        )
    for member_id, name, parent_id in DISTRIBUTORS:
        org.put_distributor(member_id, name, parent_id, f"wechatpay:openid:o_{member_id}_local")


def _seed_stock() -> int:
    """Count stock where none was counted yet, so a second run leaves orders' reservations alone."""
    levels = bootstrap.stock_levels()
    stocked = 0
    for sku, *_ in PRODUCTS:
        counted = {level.location for level in inventory.stock_sheet(sku, levels).levels}
        for location, on_hand in STOCK.items():
            if location not in counted:
                inventory.set_on_hand(sku, location, on_hand, levels)
                stocked += 1
    return stocked
