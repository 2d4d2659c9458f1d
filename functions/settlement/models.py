"""Request models of the settlement API (docs/openapi.yaml states the same constraints)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator

from shared.kernel.errors import NotFound

RUN_ID = re.compile(r"run-[0-9]{8}T[0-9]{6}Z")
PAYEE_FILE = re.compile(r"(dealer|store|guide|distributor):([!-~]{1,128})\.csv")


class SettlementIn(BaseModel):
    """The end of the period to settle: every SETTLEABLE entry due by then (to the second)."""

    model_config = ConfigDict(extra="forbid")

    period_end: AwareDatetime

    @field_validator("period_end", mode="before")
    @classmethod
    def _a_string(cls, value: Any) -> Any:
        # The document says date-time (a string); pydantic would also read a number as epoch seconds.
        if not isinstance(value, str):
            raise ValueError("period_end is an ISO-8601 date-time string")
        return value

    @field_validator("period_end")
    @classmethod
    def _a_year_a_run_can_be_named_by(cls, value: datetime) -> datetime:
        # A run is named by its period end, `run-YYYYMMDDTHHMMSSZ`: a year before 1000 wrote an id
        # of 7 digits that GET then refused (404 for the run just created), one past 9999 failed.
        if not 2000 <= value.year <= 8999:
            raise ValueError("period_end is in a year from 2000 to 8999")
        return value

    def period_end_ms(self) -> int:
        return int(self.period_end.timestamp()) * 1000


def checked_run_id(value: str) -> str:
    if not RUN_ID.fullmatch(value):
        raise NotFound("no such settlement run", run_id=value[:64])
    return value


def payee_of(file_name: str) -> str:
    """`guide:G001.csv` -> `guide:G001`."""
    if not PAYEE_FILE.fullmatch(file_name):
        raise NotFound("no such payee in this run", payee=file_name[:64])
    return file_name[: -len(".csv")]
