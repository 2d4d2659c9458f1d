"""What people read: one template per message kind, in Chinese and English, per channel.

- SMS: at most 70 characters including the signature (one segment of a Chinese SMS), and no
  personal data beyond what the reader needs: an order's last eight characters, an amount, a pickup
  code or tracking number. Never a name, address or phone number.
- WeChat subscribe message: the template id registered in the mini-program console and its data
  fields (`character_string` <= 32, `thing` <= 20, `phrase` <= 5 characters, `amount`, `time`),
  and the page it opens.
- Email: subject and a plain-text body.

Template ids here are the local stand-ins; a deployment maps them to its mini-program's ids
(WECHAT_TEMPLATE_IDS, docs/notifications.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.notifications.model import Channel, Locale, Rendered

SMS_LIMIT = 70
SIGNATURE = {Locale.ZH: "【云店】", Locale.EN: "[CloudStore] "}
WECHAT_LIMITS = {"character_string": 32, "thing": 20, "phrase": 5, "amount": 32, "time": 32, "number": 32}
# Params that may be shortened to make an SMS fit (never the amount, the code or the order ref).
SHRINKABLE = ("sku", "location", "store", "tracking", "fulfilment", "coupon", "tier")
# Times shown to people are China time (UTC+8, no daylight saving), as birthdays are.
CHINA_TIME = timezone(timedelta(hours=8))

FULFILMENT = {
    "pickup": {Locale.ZH: "到店自提", Locale.EN: "pickup"},
    "ship_from_store": {Locale.ZH: "门店发货", Locale.EN: "ship from store"},
    "same_city": {Locale.ZH: "同城配送", Locale.EN: "same-city"},
    "delivery": {Locale.ZH: "快递配送", Locale.EN: "delivery"},
}


@dataclass(frozen=True)
class Template:
    key: str
    wechat_id: str
    wechat_fields: tuple[tuple[str, str], ...]  # (WeChat field, param) in the template's order
    page: str | None
    sms: dict[Locale, str]
    subject: dict[Locale, str]
    body: dict[Locale, str]


def _t(
    key: str, *, wechat: str, fields: str, page: str | None, zh: tuple[str, str, str], en: tuple[str, str, str]
) -> Template:
    """zh and en: (SMS text, email subject, email body)."""
    pairs = tuple(tuple(pair.split("=")) for pair in fields.split())
    return Template(
        key=key,
        wechat_id=wechat,
        wechat_fields=pairs,  # type: ignore[arg-type]
        page=page,
        sms={Locale.ZH: zh[0], Locale.EN: en[0]},
        subject={Locale.ZH: zh[1], Locale.EN: en[1]},
        body={Locale.ZH: zh[2], Locale.EN: en[2]},
    )


ORDER_PAGE = "pages/orders/detail?id={order_id}"
TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in [
        _t(
            "OrderPlaced",
            wechat="wx-order-placed",
            fields="character_string1=ref amount2=amount phrase3=state_placed",
            page=ORDER_PAGE,
            zh=(
                "订单{ref}已提交，请尽快支付¥{amount}。",
                "订单{ref}已提交",
                "您的订单{ref}已提交，应付¥{amount}。请在订单关闭前完成支付。",
            ),
            en=(
                "Order {ref} placed. Please pay CNY {amount}.",
                "Order {ref} placed",
                "Your order {ref} is placed. CNY {amount} is due; please pay before it closes.",
            ),
        ),
        _t(
            "OrderPaid",
            wechat="wx-order-paid",
            fields="character_string1=ref amount2=amount phrase3=state_paid",
            page=ORDER_PAGE,
            zh=(
                "订单{ref}已支付¥{amount}，正在为您备货。",
                "订单{ref}支付成功",
                "我们已收到订单{ref}的付款¥{amount}，正在为您备货。",
            ),
            en=(
                "Order {ref}: CNY {amount} received. Thanks!",
                "Order {ref}: payment received",
                "We received CNY {amount} for order {ref} and are preparing it.",
            ),
        ),
        _t(
            "StoreOrderPaid",
            wechat="wx-store-order",
            fields="character_string1=ref thing2=fulfilment thing3=store",
            page=ORDER_PAGE,
            zh=(
                "门店{store}新订单{ref}（{fulfilment}）已付款，请备货。",
                "门店新订单{ref}",
                "门店{store}有一笔已付款订单{ref}（{fulfilment}），请及时备货。",
            ),
            en=(
                "Store {store}: paid order {ref} ({fulfilment}) to prepare.",
                "New paid order {ref}",
                "Store {store} has a paid order {ref} ({fulfilment}) to prepare.",
            ),
        ),
        _t(
            "OrderShipped",
            wechat="wx-order-shipped",
            fields="character_string1=ref character_string2=tracking phrase3=state_shipped",
            page=ORDER_PAGE,
            zh=(
                "订单{ref}已发货，运单号{tracking}。",
                "订单{ref}已发货",
                "您的订单{ref}已发货，运单号{tracking}。",
            ),
            en=(
                "Order {ref} shipped, tracking {tracking}.",
                "Order {ref} shipped",
                "Your order {ref} has shipped. Tracking number: {tracking}.",
            ),
        ),
        _t(
            "OrderReadyForPickup",
            wechat="wx-order-pickup",
            fields="character_string1=ref character_string2=code thing3=store",
            page=ORDER_PAGE,
            zh=(
                "订单{ref}可到店自提，取货码{code}。",
                "订单{ref}可自提",
                "您的订单{ref}已可在门店{store}自提，取货码{code}。",
            ),
            en=(
                "Order {ref} is ready for pickup. Code {code}",
                "Order {ref} ready for pickup",
                "Your order {ref} is ready for pickup at store {store}. Pickup code: {code}.",
            ),
        ),
        _t(
            "OrderCancelled",
            wechat="wx-order-closed",
            fields="character_string1=ref phrase2=state_cancelled",
            page=ORDER_PAGE,
            zh=(
                "订单{ref}已取消。",
                "订单{ref}已取消",
                "您的订单{ref}已取消，预留的商品已释放。",
            ),
            en=(
                "Order {ref} was cancelled.",
                "Order {ref} cancelled",
                "Your order {ref} was cancelled.",
            ),
        ),
        _t(
            "OrderExpired",
            wechat="wx-order-closed",
            fields="character_string1=ref phrase2=state_expired",
            page=ORDER_PAGE,
            zh=(
                "订单{ref}超时未支付，已关闭。",
                "订单{ref}已关闭",
                "您的订单{ref}因超时未支付已关闭。",
            ),
            en=(
                "Order {ref} closed: not paid in time.",
                "Order {ref} closed",
                "Your order {ref} was closed as it was not paid in time.",
            ),
        ),
        _t(
            "RefundIssued",
            wechat="wx-refund",
            fields="character_string1=ref amount2=amount phrase3=state_refunded",
            page=ORDER_PAGE,
            zh=(
                "订单{ref}已退款¥{amount}，将原路退回。",
                "订单{ref}退款成功",
                "订单{ref}已退款¥{amount}，款项将原路退回。",
            ),
            en=(
                "Order {ref}: CNY {amount} refunded.",
                "Order {ref}: refund issued",
                "CNY {amount} was refunded for order {ref} to the original payment method.",
            ),
        ),
        _t(
            "PaymentNeedsRefund",
            wechat="wx-refund",
            fields="character_string1=ref amount2=amount phrase3=state_refunding",
            page=ORDER_PAGE,
            zh=(
                "订单{ref}已关闭，您支付的¥{amount}将退回。",
                "订单{ref}付款将退回",
                "订单{ref}已关闭，您支付的¥{amount}将全额原路退回。",
            ),
            en=(
                "Order {ref} closed. Refund: CNY {amount}.",
                "Order {ref}: refund on its way",
                "Order {ref} was closed before your payment arrived; CNY {amount} will be refunded in full.",
            ),
        ),
        _t(
            "PaymentNeedsRefundAdmin",
            wechat="wx-ops-alert",
            fields="character_string1=ref amount2=amount thing3=alert_refund",
            page=None,
            zh=(
                "订单{ref}关闭后收到付款¥{amount}，需退款。",
                "需退款：订单{ref}",
                "订单{ref}在关闭后收到付款¥{amount}，请安排退款。",
            ),
            en=(
                "Order {ref} paid late: refund CNY {amount}.",
                "Refund needed: order {ref}",
                "Order {ref} received CNY {amount} after it closed. Please arrange the refund.",
            ),
        ),
        _t(
            "LowStock",
            wechat="wx-low-stock",
            fields="thing1=sku thing2=location number3=available",
            page=None,
            zh=(
                "库存预警：{sku}在{location}仅剩{available}件。",
                "库存预警：{sku}",
                "{sku}在{location}的可售库存降到{available}件，低于预警值{threshold}。",
            ),
            en=(
                "Low stock: {sku} at {location}, {available} left.",
                "Low stock: {sku}",
                "Available stock of {sku} at {location} fell to {available}, below the threshold of {threshold}.",
            ),
        ),
        _t(
            "CouponExpiring",
            wechat="wx-coupon-expiring",
            fields="thing1=coupon time2=expires",
            page="pages/coupons/index",
            zh=(
                "您的优惠券{coupon}将于{expires}到期，请尽快使用。",
                "优惠券即将到期",
                "您的优惠券{coupon}将于{expires}（北京时间）到期，请在到期前使用。",
            ),
            en=(
                "Your coupon {coupon} expires {expires}. Use it soon!",
                "Your coupon expires soon",
                "Your coupon {coupon} expires on {expires} (China time). Use it before then.",
            ),
        ),
        _t(
            "MembershipExpiring",
            wechat="wx-membership-expiring",
            fields="thing1=tier time2=ends",
            page="pages/membership/index",
            zh=(
                "您的{tier}会员将于{ends}到期，续费可继续享受会员权益。",
                "付费会员即将到期",
                "您的{tier}会员将于{ends}（北京时间）到期。到期前续费，会员价和会员折扣不中断。",
            ),
            en=(
                "Your {tier} membership ends {ends}. Renew to keep it.",
                "Your membership ends soon",
                "Your {tier} membership ends on {ends} (China time). Renew before then to keep member prices.",
            ),
        ),
        _t(
            "MembershipExpired",
            wechat="wx-membership-expired",
            fields="thing1=tier time2=ends",
            page="pages/membership/index",
            zh=(
                "您的{tier}会员已于{ends}到期，续费即可恢复会员价和会员折扣。",
                "付费会员已到期",
                "您的{tier}会员已于{ends}（北京时间）到期，会员价和会员折扣已停止。续费即可恢复。",
            ),
            en=(
                "Your {tier} membership ended {ends}. Renew now.",
                "Your membership has ended",
                "Your {tier} membership ended on {ends} (China time). Renew to get member prices back.",
            ),
        ),
        _t(
            "Birthday",
            wechat="wx-birthday",
            fields="thing1=greeting",
            page="pages/index/index",
            zh=(
                "生日快乐！感谢您一直以来的支持。",
                "生日快乐",
                "祝您生日快乐！感谢您一直以来对我们的支持。",
            ),
            en=(
                "Happy birthday! Thank you for shopping with us.",
                "Happy birthday",
                "Happy birthday! Thank you for shopping with us.",
            ),
        ),
        _t(
            "BirthdayCoupon",
            wechat="wx-birthday",
            fields="thing1=greeting thing2=coupon",
            page="pages/coupons/index",
            zh=(
                "生日快乐！生日礼券{coupon}已放入您的券包。",
                "生日快乐，生日礼券已到账",
                "祝您生日快乐！生日礼券{coupon}已放入您的券包，感谢您一直以来对我们的支持。",
            ),
            en=(
                "Happy birthday! Your gift coupon {coupon} is in your wallet.",
                "Happy birthday: a gift coupon for you",
                "Happy birthday! Your gift coupon {coupon} is in your wallet. Thank you for shopping with us.",
            ),
        ),
    ]
}

STATES = {
    "state_placed": {Locale.ZH: "待支付", Locale.EN: "Due"},
    "state_paid": {Locale.ZH: "已支付", Locale.EN: "Paid"},
    "state_shipped": {Locale.ZH: "已发货", Locale.EN: "Sent"},
    "state_cancelled": {Locale.ZH: "已取消", Locale.EN: "Void"},
    "state_expired": {Locale.ZH: "已关闭", Locale.EN: "Ended"},
    "state_refunded": {Locale.ZH: "已退款", Locale.EN: "Done"},
    "state_refunding": {Locale.ZH: "退款中", Locale.EN: "Owed"},
    "alert_refund": {Locale.ZH: "关闭后收款，需退款", Locale.EN: "Late payment: refund"},
    "greeting": {Locale.ZH: "生日快乐", Locale.EN: "Happy birthday"},
}


def params_of(payload: dict[str, Any], locale: Locale) -> dict[str, str]:
    """Template parameters from an event payload: only what some template shows."""
    order_id = str(payload.get("order_id") or "")
    amount_fen = payload.get("amount_fen", payload.get("total_fen"))
    fulfilment = (payload.get("fulfilment") or {}).get("type", "")
    params = {
        "order_id": order_id,
        "ref": order_id[-8:].upper(),
        "amount": f"{int(amount_fen) / 100:,.2f}" if amount_fen is not None else "",
        "store": str(payload.get("store_id") or ""),
        "fulfilment": FULFILMENT.get(fulfilment, {}).get(locale, fulfilment),
        "tracking": str(payload.get("tracking_number") or ""),
        "code": str(payload.get("pickup_code") or ""),
        "sku": str(payload.get("sku") or ""),
        "location": str(payload.get("location") or ""),
        "available": str(payload.get("available", "")),
        "threshold": str(payload.get("threshold", "")),
        "coupon": str(payload.get("coupon_name") or ""),
        "expires": _china_time(payload.get("valid_to")),
        "tier": str(payload.get("tier") or ""),
        "ends": _china_time(payload.get("until")),
    }
    params.update({name: words[locale] for name, words in STATES.items()})
    return params


def _china_time(when: Any) -> str:
    """An event's ISO time as people read it: month, day, hour and minute in China time."""
    if not when:
        return ""
    return datetime.fromisoformat(str(when)).astimezone(CHINA_TIME).strftime("%m-%d %H:%M")


def wechat_template_id(template_key: str, overrides: dict[str, str] | None = None) -> str:
    """The deployment's template id for a kind (WECHAT_TEMPLATE_IDS), else the local stand-in."""
    return (overrides or {}).get(template_key) or TEMPLATES[template_key].wechat_id


def render(
    template_key: str,
    channel: Channel,
    locale: Locale,
    params: dict[str, str],
    template_ids: dict[str, str] | None = None,
) -> Rendered:
    template = TEMPLATES[template_key]
    if channel is Channel.SMS:
        return Rendered(channel, text=fit_sms(template.sms[locale], params, SIGNATURE[locale]))
    if channel is Channel.EMAIL:
        return Rendered(
            channel, text=template.subject[locale].format(**params), body=template.body[locale].format(**params)
        )
    data = {field: {"value": _wechat_value(field, params[param])} for field, param in template.wechat_fields}
    return Rendered(
        channel,
        text=template.sms[locale].format(**params),
        template_id=wechat_template_id(template_key, template_ids),
        data=data,
        page=template.page.format(**params) if template.page else None,
    )


def fit_sms(pattern: str, params: dict[str, str], signature: str, limit: int = SMS_LIMIT) -> str:
    """The signed SMS text within `limit` characters: long free-text params (a SKU, a location, a
    tracking number) are shortened with an ellipsis, never the amount, code or order reference."""
    values = dict(params)
    text = signature + pattern.format(**values)
    kept = {name: len(values.get(name, "")) for name in SHRINKABLE}
    while len(text) > limit:
        # One character at a time from whichever is longest, so two long values share the cut.
        longest = max(kept, key=lambda name: kept[name])
        if kept[longest] <= 1:
            raise ValueError(f"SMS template cannot fit {limit} characters: {pattern}")
        kept[longest] -= 1
        values[longest] = params[longest][: kept[longest]] + "…"
        text = signature + pattern.format(**values)
    return text


def _wechat_value(field: str, value: str) -> str:
    kind = field.rstrip("0123456789")
    limit = WECHAT_LIMITS.get(kind, 20)
    if kind == "amount" and value:
        value = f"¥{value}"
    return value if len(value) <= limit else value[: limit - 1] + "…"
