"""Request models of the payment routes (API.md, `POST /orders/{id}/payments`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class OrderPath(BaseModel):
    order_id: OrderId


class PrepayIn(BaseModel):
    """The payer's openid from the mini-program's WeChat login (at most 128 characters, WeChat Pay's bound)."""

    model_config = ConfigDict(extra="forbid")
    openid: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")


class PaymentParametersOut(BaseModel):
    """What `wx.requestPayment` takes (signType RSA)."""

    timeStamp: str
    nonceStr: str
    package: str
    signType: str
    paySign: str
