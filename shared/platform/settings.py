"""Settings, validated once per process, on the first request that needs them.

One pydantic model per concern; values come from the Lambda environment (set per stage in
`.chalice/config.json`, and by `infra/local` for the local stack). Logic receives the values as
arguments and never reads `os.environ` itself. Secrets of a deployed stage come from SSM Parameter
Store, never the environment (shared/platform/secrets.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from shared.platform import secrets


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: Literal["local", "test", "dev", "prod"] = Field(alias="STAGE")
    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    region: str = Field(alias="AWS_DEFAULT_REGION", default="ap-east-1")
    # Only the local stack and tests set an endpoint; in AWS the SDK finds DynamoDB itself.
    dynamodb_endpoint: str | None = Field(alias="DYNAMODB_ENDPOINT", default=None)
    sqs_endpoint: str | None = Field(alias="SQS_ENDPOINT", default=None)
    jwt_secret: SecretStr = Field(alias="JWT_SECRET", min_length=8)
    # The key of what is derived and must stay the same for good: order ids from Idempotency-Keys and
    # the stores' verification codes. Never rotated, so JWT_SECRET can be (docs/operations.md,
    # "Configuration and secrets"). Required in a deployed stage; local and test fall back to JWT_SECRET.
    keying_secret: SecretStr | None = Field(alias="KEYING_SECRET", default=None, min_length=8)
    # When set (non-empty), a token must carry this `iss` / `aud`: a Cognito or WeChat-login issuer (web/auth.py).
    jwt_issuer: str | None = Field(alias="JWT_ISSUER", default=None)
    jwt_audience: str | None = Field(alias="JWT_AUDIENCE", default=None)
    payment_webhook_secret: SecretStr = Field(alias="PAYMENT_WEBHOOK_SECRET", min_length=8)
    order_payment_window_s: int = Field(alias="ORDER_PAYMENT_WINDOW_S", default=900, gt=0)
    # The merchant's calendar for report days and months, in minutes east of UTC (China: 480). Cells
    # are keyed by these days: set it before the first sale; a change does not move cells written.
    report_utc_offset_minutes: int = Field(alias="REPORT_UTC_OFFSET_MINUTES", default=480, ge=-720, le=840)
    # Queue URLs for the stream relay, "consumer=url,consumer=url".
    consumer_queues: str = Field(alias="CONSUMER_QUEUES", default="")
    # Queue consumers (shared/messaging/consumers.py): first retry delay, doubled per receive, and the claim
    # lease, which must outlast one handler run (the queues' visibility timeout in the template).
    consumer_retry_base_s: float = Field(alias="CONSUMER_RETRY_BASE_S", default=2.0, ge=0)
    consumer_lease_s: float = Field(alias="CONSUMER_LEASE_S", default=60.0, gt=0)
    # Notifications (docs/notifications.md): "sink" records and prints every message (local, test,
    # dev); "live" sends WeChat subscribe messages and SMS through their providers, with these
    # credentials. WECHAT_TEMPLATE_IDS maps message kinds to the mini-program's template ids
    # ("OrderPaid=<id>,..."); kinds not named keep the local stand-in ids.
    notification_provider: Literal["sink", "live"] = Field(alias="NOTIFICATION_PROVIDER", default="sink")
    wechat_app_id: str | None = Field(alias="WECHAT_APP_ID", default=None)
    wechat_app_secret: SecretStr | None = Field(alias="WECHAT_APP_SECRET", default=None)
    wechat_miniprogram_state: Literal["formal", "trial", "developer"] = Field(
        alias="WECHAT_MINIPROGRAM_STATE", default="formal"
    )
    wechat_template_ids: str = Field(alias="WECHAT_TEMPLATE_IDS", default="")
    sms_api_key: SecretStr | None = Field(alias="SMS_API_KEY", default=None)
    # Pricing (shared/ordering/pricing.py, docs/pricing.md): shipping. Promotions are data (shared/promotions).
    free_shipping_threshold_fen: int = Field(alias="FREE_SHIPPING_THRESHOLD_FEN", default=9900, ge=0)
    shipping_delivery_fen: int = Field(alias="SHIPPING_DELIVERY_FEN", default=1000, ge=0)
    shipping_ship_from_store_fen: int = Field(alias="SHIPPING_SHIP_FROM_STORE_FEN", default=1000, ge=0)
    shipping_same_city_fen: int = Field(alias="SHIPPING_SAME_CITY_FEN", default=1500, ge=0)
    # Same-city delivery: stores within this distance of the address (shared/ordering/fulfilment.py).
    same_city_radius_km: float = Field(alias="SAME_CITY_RADIUS_KM", default=30.0, gt=0)
    # Flash sales (docs/flash-sales.md): the peak a sale is sharded for when its creator gives none
    # (N = ceil(peak / 500)); how long a unit may stay unclaimed before the reconciler gives it
    # back (longer than a purchase takes: the Lambda timeout); how long a process skips a shard it
    # saw empty.
    flash_sale_default_peak_per_s: int = Field(alias="FLASH_SALE_DEFAULT_PEAK_PER_S", default=2000, gt=0)
    flash_sale_settle_s: float = Field(alias="FLASH_SALE_SETTLE_S", default=15.0, gt=0)
    flash_sale_empty_hint_s: float = Field(alias="FLASH_SALE_EMPTY_HINT_S", default=1.0, ge=0)
    # How long a process keeps a sale on the contended (two round trip) path after a conflict.
    flash_sale_contended_s: float = Field(alias="FLASH_SALE_CONTENDED_S", default=10.0, ge=0)
    # Coupons (docs/coupons.md): the peak a template is sharded for when its creator gives none;
    # how long a process claims against the template it read (an edit or a stop reaches every
    # process within it); how long after an offline redemption an admin may reverse it; how often
    # a store's verification code changes.
    coupon_default_peak_per_s: int = Field(alias="COUPON_DEFAULT_PEAK_PER_S", default=2000, gt=0)
    coupon_template_cache_s: float = Field(alias="COUPON_TEMPLATE_CACHE_S", default=1.0, ge=0)
    coupon_reversal_window_s: int = Field(alias="COUPON_REVERSAL_WINDOW_S", default=86400, gt=0)
    coupon_verification_step_s: int = Field(alias="COUPON_VERIFICATION_STEP_S", default=300, ge=30)
    # Wrong verification codes (docs/coupons.md): counted in windows of this many seconds, at most
    # this many per customer (over every store) and per store (over every customer) in a window.
    coupon_wrong_code_window_s: int = Field(alias="COUPON_WRONG_CODE_WINDOW_S", default=900, ge=60)
    coupon_wrong_codes_per_customer: int = Field(alias="COUPON_WRONG_CODES_PER_CUSTOMER", default=5, gt=0)
    coupon_wrong_codes_per_store: int = Field(alias="COUPON_WRONG_CODES_PER_STORE", default=50, gt=0)
    # Guides (docs/commission.md, "Binding and credit"): the merchant's binding policy. 0: the first
    # binding wins for good; N: a binding lapses N days after it was made and the member may bind again.
    binding_expire_after_days: int = Field(alias="BINDING_EXPIRE_AFTER_DAYS", default=0, ge=0, le=3650)
    # Paid membership (docs/membership.md, "Expiry and the reminder before it"): the member is told
    # this many days before the membership ends (0: no reminder).
    paid_membership_remind_days: int = Field(alias="PAID_MEMBERSHIP_REMIND_DAYS", default=3, ge=0, le=60)
    # Payments (docs/payments.md). PAYMENT_PROVIDER picks who takes the customer's money: "hmac" (the
    # generic signed webhook of API.md, POST /payments/notify) or "wechatpay" (WeChat Pay v3: the prepay
    # route and POST /payments/wechatpay/notify). The HMAC route stays live wherever its secret is set.
    payment_provider: Literal["hmac", "wechatpay"] = Field(alias="PAYMENT_PROVIDER", default="hmac")
    # WeChat Pay: the mini-program's AppID, our merchant id and the serial of our merchant API
    # certificate; our private key (apiclient_key.pem) and the APIv3 key are secrets (SSM in a deployed
    # stage). WeChat Pay's own key: its public key and id (PUB_KEY_ID_...), or its platform
    # certificate(s) in PEM (certificate mode; both may be set while a merchant moves over).
    wechatpay_appid: str | None = Field(alias="WECHATPAY_APPID", default=None)
    wechatpay_mchid: str | None = Field(alias="WECHATPAY_MCHID", default=None)
    wechatpay_merchant_serial: str | None = Field(alias="WECHATPAY_MERCHANT_SERIAL", default=None)
    wechatpay_private_key: SecretStr | None = Field(alias="WECHATPAY_PRIVATE_KEY", default=None)
    wechatpay_apiv3_key: SecretStr | None = Field(alias="WECHATPAY_APIV3_KEY", default=None)
    wechatpay_public_key_id: str | None = Field(alias="WECHATPAY_PUBLIC_KEY_ID", default=None)
    wechatpay_public_key: str | None = Field(alias="WECHATPAY_PUBLIC_KEY", default=None)
    wechatpay_platform_certificates: str | None = Field(alias="WECHATPAY_PLATFORM_CERTIFICATES", default=None)
    wechatpay_notify_url: str | None = Field(alias="WECHATPAY_NOTIFY_URL", default=None)
    wechatpay_api_base: str = Field(alias="WECHATPAY_API_BASE", default="https://api.mch.weixin.qq.com")
    wechatpay_description: str = Field(alias="WECHATPAY_DESCRIPTION", default="Order", min_length=1, max_length=100)
    wechatpay_profit_sharing: bool = Field(alias="WECHATPAY_PROFIT_SHARING", default=False)
    wechatpay_timeout_s: float = Field(alias="WECHATPAY_TIMEOUT_S", default=4.0, gt=0, le=10)
    # How long after a refund was accepted the query job first asks WeChat Pay about it, if no
    # notification settled it (docs/payments.md, "Refunds"); later checks back off up to an hour.
    wechatpay_refund_query_after_s: int = Field(alias="WECHATPAY_REFUND_QUERY_AFTER_S", default=600, ge=1, le=86400)
    # Commission (docs/commission.md): the most a line may share out (WeChat Pay profit sharing
    # allows 30%), and the after-sale window after completion during which entries stay FROZEN.
    commission_cap_bp: int = Field(alias="COMMISSION_CAP_BP", default=3000, ge=0, le=10000)
    commission_after_sale_window_s: int = Field(alias="COMMISSION_AFTER_SALE_WINDOW_S", default=7 * 86400, ge=0)

    @model_validator(mode="after")
    def _deployed_stages_are_safe(self) -> Settings:
        if self.stage in ("dev", "prod"):
            if self.keying_secret is None:
                raise ValueError("KEYING_SECRET is needed outside local and test stages")
            for name in ("jwt_secret", "keying_secret", "payment_webhook_secret"):
                if len(getattr(self, name).get_secret_value()) < 32:
                    raise ValueError(f"{name} must be at least 32 bytes outside local and test stages")
            if self.dynamodb_endpoint:
                raise ValueError("DYNAMODB_ENDPOINT is for the local emulator only")
        elif not self.dynamodb_endpoint:
            raise ValueError("local and test stages need DYNAMODB_ENDPOINT (the emulator); run `make dev`")
        return self

    @property
    def is_local(self) -> bool:
        return self.stage in ("local", "test")

    @model_validator(mode="after")
    def _live_notifications_have_credentials(self) -> Settings:
        if self.notification_provider == "live":
            missing = [n for n in ("wechat_app_id", "wechat_app_secret", "sms_api_key") if not getattr(self, n)]
            if missing:
                raise ValueError(f"NOTIFICATION_PROVIDER=live needs {', '.join(missing).upper()}")
        return self

    @model_validator(mode="after")
    def _wechatpay_is_configured(self) -> Settings:
        if self.payment_provider != "wechatpay":
            return self
        required = ("wechatpay_appid", "wechatpay_mchid", "wechatpay_merchant_serial", "wechatpay_private_key")
        missing = [
            name for name in (*required, "wechatpay_apiv3_key", "wechatpay_notify_url") if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"PAYMENT_PROVIDER=wechatpay needs {', '.join(missing).upper()}")
        if (
            not (self.wechatpay_public_key_id and self.wechatpay_public_key)
            and not self.wechatpay_platform_certificates
        ):
            raise ValueError(
                "PAYMENT_PROVIDER=wechatpay needs WeChat Pay's key: WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY, "
                "or WECHATPAY_PLATFORM_CERTIFICATES"
            )
        assert self.wechatpay_apiv3_key is not None
        if len(self.wechatpay_apiv3_key.get_secret_value().encode()) != 32:
            raise ValueError("WECHATPAY_APIV3_KEY must be the 32-byte APIv3 key of the merchant platform")
        if not self.is_local:
            for name in ("wechatpay_notify_url", "wechatpay_api_base"):
                if not str(getattr(self, name)).startswith("https://"):
                    raise ValueError(f"{name.upper()} must be an https:// URL outside local and test stages")
        return self

    def derivation_key(self, purpose: str) -> bytes:
        """The key for one kind of derived value (`purpose` keeps the kinds apart): from KEYING_SECRET,
        or, in a local or test stage without one, from JWT_SECRET."""
        secret = self.keying_secret or self.jwt_secret
        return purpose.encode() + b":" + secret.get_secret_value().encode()

    def template_ids(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.wechat_template_ids.split(",") if "=" in item)
        return {kind.strip(): template_id.strip() for kind, template_id in pairs}

    def queue_urls(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.consumer_queues.split(",") if "=" in item)
        return {name.strip(): url.strip() for name, url in pairs}


def load_settings(environ: Mapping[str, str], fetch: secrets.Fetch | None = None) -> Settings:
    """Settings from an environment, its secrets resolved first: in a deployed stage from the SSM
    parameters the environment names (shared/platform/secrets.py), elsewhere from plain variables.
    The notification providers' and WeChat Pay's secrets are read only where they are used."""
    needed = {"JWT_SECRET", "KEYING_SECRET", "PAYMENT_WEBHOOK_SECRET"}
    if environ.get("NOTIFICATION_PROVIDER") == "live":
        needed |= {"WECHAT_APP_SECRET", "SMS_API_KEY"}
    if environ.get("PAYMENT_PROVIDER") == "wechatpay":
        needed |= {"WECHATPAY_PRIVATE_KEY", "WECHATPAY_APIV3_KEY"}
    return Settings.model_validate(secrets.resolve(environ, needed, fetch))


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process's settings; a missing or bad value (or an unreadable secret) fails the cold
    start with a clear message."""
    return load_settings(dict(os.environ))


def reset_settings() -> None:
    """For tests and the local runner, which change the environment between stacks."""
    settings.cache_clear()
    secrets.forget()
