"""Request models of the settlement API (docs/openapi.yaml states the same constraints)."""

from __future__ import annotations

import re

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.kernel.errors import NotFound

RUN_ID = re.compile(r"run-[0-9]{8}T[0-9]{6}Z")
PAYEE_FILE = re.compile(r"(dealer|store|guide|distributor):([!-~]{1,128})\.csv")


class SettlementIn(BaseModel):
    """The end of the period to settle: every SETTLEABLE entry due by then (to the second)."""

    model_config = ConfigDict(extra="forbid")

    period_end: AwareDatetime

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
