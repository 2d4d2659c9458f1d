"""The one moto version the emulator patches were written against, and the guard they install behind.

`moto_transactions.py` and `moto_speedups.py` replace moto internals that moto does not promise to
keep. Each was checked line by line against this version and is held to moto's own behaviour by
tests/functional/test_emulator_patches_differential.py and test_emulator_speedups.py. On a moto bump:
re-read the patched functions against the new moto, run those tests, then change MOTO_VERSION
together with requirements-dev.txt (tests/functional/test_emulator_patches_differential.py checks
they agree). docs/flash-sales.md, "Performance", says why the patches exist.
"""

from __future__ import annotations

MOTO_VERSION = "5.2.5"  # must equal the moto pin in requirements-dev.txt


class MotoVersionMismatch(RuntimeError):
    """A patch was asked to install on a moto it was not written for."""

    def __init__(self, patch: str, found: str) -> None:
        super().__init__(
            f"{patch} patches moto {MOTO_VERSION} (the pin in requirements-dev.txt) but moto {found} is "
            f"installed: re-read the patch against moto {found}, run "
            "tests/functional/test_emulator_patches_differential.py, then update MOTO_VERSION in "
            "infra/local/moto_pin.py (or install the pinned moto: make install)"
        )
        self.patch = patch
        self.found = found


def installed_moto() -> str:
    import moto

    return str(moto.__version__)


def require_pinned_moto(patch: str) -> None:
    """Raise MotoVersionMismatch unless the imported moto is MOTO_VERSION."""
    found = installed_moto()
    if found != MOTO_VERSION:
        raise MotoVersionMismatch(patch, found)
