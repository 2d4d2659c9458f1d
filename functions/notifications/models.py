"""Request models of the notifications API (docs/openapi.yaml states the same constraints)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from shared.kernel.values import ECMA_WHITE_SPACE, Phone

# docs/openapi.yaml: `^[^@\s]+@[^@\s]+\.[^@\s]+$`, its \s read as ECMA-262 reads it (see ECMA_WHITE_SPACE).
_NOT_AT_OR_SPACE = rf"[^@{ECMA_WHITE_SPACE}]+"
Email = Annotated[str, Field(max_length=254, pattern=rf"^{_NOT_AT_OR_SPACE}@{_NOT_AT_OR_SPACE}\.{_NOT_AT_OR_SPACE}$")]
OpenId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# MM-DD of a day that exists in a leap year (so 02-29 is a birthday, 02-30 and 04-31 are not).
Birthday = Annotated[
    str,
    Field(
        pattern=r"^(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-9]))$"
    ),
]
ChannelName = Literal["wechat", "sms", "email"]
TemplateId = Annotated[str, Field(min_length=1, max_length=64)]


class ContactIn(BaseModel):
    """Only the fields sent change; an explicit null removes one."""

    model_config = ConfigDict(extra="forbid")

    phone: Phone | None = None
    email: Email | None = None
    wechat_openid: OpenId | None = None
    locale: Literal["zh", "en"] | None = None
    birthday: Birthday | None = None

    def changes(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: dict[ChannelName, StrictBool] = Field(min_length=1)


class ConsentsIn(BaseModel):
    """The template ids the person accepted in `wx.requestSubscribeMessage`."""

    model_config = ConfigDict(extra="forbid")

    template_ids: list[TemplateId] = Field(min_length=1, max_length=20)
