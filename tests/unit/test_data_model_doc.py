"""docs/data-model.md names every item class of the table, so the access patterns and keys of a
new capability cannot land undocumented (the standards: keep docs/ true)."""

from __future__ import annotations

import re
from pathlib import Path

import shared.data.items  # noqa: F401  (imports every item class)
from shared.data.table import BaseItem

DATA_MODEL = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"


def item_classes() -> set[type]:
    found: set[type] = set()
    pending = [BaseItem]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__.startswith("shared.data.") and sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def test_every_item_class_is_named_in_the_data_model():
    # Given every item class the table's model defines
    classes = {cls.__name__ for cls in item_classes()}
    assert len(classes) > 40  # the walk found the model, not an empty package
    # Then each is named, as code, in docs/data-model.md
    named = set(re.findall(r"`(\w+Item)`", DATA_MODEL.read_text(encoding="utf-8")))
    assert sorted(classes - named) == []
