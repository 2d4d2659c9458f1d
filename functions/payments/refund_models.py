"""Request models of finance's refund routes (docs/payments.md, "Refunds")."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

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
    """The order the ABNORMAL refund pays back (a provider refund is kept beside its order)."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_|*-]+$")
