"""checkov on the merged template of each deployed stage (`make package` runs it, pinned in
requirements-checkov.txt): no failed check, and every check .checkov.yaml waives says why."""

from __future__ import annotations

import re

from infra.package import CHECKOV_CONFIG, Package, waived_checks


def test_checkov_finds_no_failed_check(packaged: Package):
    # Given the counts checkov reported when `make package` scanned the stage's template
    assert packaged.checks is not None
    # Then it ran checks, none failed and the template parsed
    assert packaged.checks["passed"] > 0
    assert packaged.checks["failed"] == 0 and packaged.checks["parsing_errors"] == 0


def test_every_waived_check_gives_its_reason():
    # Given the waivers of .checkov.yaml
    lines = CHECKOV_CONFIG.read_text().splitlines()
    waived = waived_checks()
    assert waived
    for check in waived:
        # Then each is preceded by a comment that names it and says why, in a sentence or more
        (entry,) = [i for i, line in enumerate(lines) if line.strip() == f"- {check}"]
        comment: list[str] = []
        for line in reversed(lines[:entry]):
            if not line.strip().startswith("#"):
                break
            comment.insert(0, line.strip().lstrip("#").strip())
        reason = " ".join(comment)
        assert reason.startswith(f"{check} ("), (check, reason)
        assert len(re.findall(r"\w+", reason)) >= 20, (check, reason)
