"""Request models of finance's refund routes (docs/payments.md, "Refunds")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TransactionId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]


class TransactionPath(BaseModel):
    transaction_id: TransactionId


class MarkRefundedIn(BaseModel):
    """The order the payment was recorded for (a clashing payment is kept once per order), and what
    finance did (a bank reference, say)."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_|*-]+$")
    note: str | None = Field(default=None, min_length=1, max_length=500)


class RefundNumberPath(BaseModel):
    out_refund_no: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_|*@-]+$")


class AbnormalRefundIn(BaseModel):
    """The order the ABNORMAL refund pays back (a provider refund is kept beside its order), and where to:
    the merchant's bank card (the default), or the buyer's (`USER_BANK_CARD`, with WeChat Pay's bank code,
    the card number in ASCII digits and the holder's name; sent encrypted, never stored or logged)."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_|*-]+$")
    type: Literal["MERCHANT_BANK_CARD", "USER_BANK_CARD"] = "MERCHANT_BANK_CARD"
    bank_type: str | None = Field(default=None, pattern=r"^[A-Z0-9_]{2,32}$")
    bank_account: str | None = Field(default=None, pattern=r"^[0-9]{8,32}$")
    real_name: str | None = Field(
        default=None, min_length=1, max_length=50, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"
    )

    @model_validator(mode="after")
    def _card_only_for_the_buyer(self) -> AbnormalRefundIn:
        card = (self.bank_type, self.bank_account, self.real_name)
        if self.type == "USER_BANK_CARD" and None in card:
            raise ValueError("USER_BANK_CARD needs bank_type, bank_account and real_name")
        if self.type == "MERCHANT_BANK_CARD" and card != (None, None, None):
            raise ValueError("a bank card is given only with type USER_BANK_CARD")
        return self
