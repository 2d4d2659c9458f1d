"""The paid-membership jobs' checkpoints (shared/membership/paid_expiry.py; docs/data-model.md,
"Paid membership")."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from shared.data.table import BaseItem


class PaidExpiryCheckpointItem(BaseItem, discriminator="PaidExpiryCheckpoint"):
    """pk `PAIDMEMBER_JOB#<expiry|reminder>`, sk `CHECKPOINT`: how far the job has gone through gsi2
    `PAIDMEMBER#END` (`through`, a gsi2sk: every membership up to it was expired / reminded or
    skipped). Only ever moved forward (`through < :new`). `PAIDMEMBER_JOB#reminder-window`: the
    reminder's re-read of the window it passed, `through` = `<lap start iso>|<gsi2sk or ~>`."""

    through = UnicodeAttribute()

    @staticmethod
    def key(job: str) -> tuple[str, str]:
        return f"PAIDMEMBER_JOB#{job}", "CHECKPOINT"
