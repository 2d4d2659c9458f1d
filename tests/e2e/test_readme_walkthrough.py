"""The README's walkthrough, run as written against the end-to-end stack.

Every fenced `sh` block of the "Walkthrough" section runs, in order, in one bash session started in
the repository's directory (so variables carry from block to block, as in a terminal); the only
change is the API's address, the stack's free port for the README's 127.0.0.1:8000. A `json` block
right after an `sh` block is what that block prints, one JSON value per line, and must be exactly
what came out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.local.stack import ROOT

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
SECTION = "## Walkthrough"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MARK = "@@readme-block-done@@"


def walkthrough_blocks(readme: Path = README) -> list[tuple[str, str | None]]:
    """(shell, expected output or None) for each `sh` block of the section, in order."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    fences = [(m.group(1), m.group(2)) for m in FENCE.finditer(text[start : end if end > 0 else None])]
    blocks: list[tuple[str, str | None]] = []
    for i, (kind, body) in enumerate(fences):
        if kind != "sh":
            continue
        following = fences[i + 1] if i + 1 < len(fences) else None
        blocks.append((body, following[1] if following and following[0] == "json" else None))
    return blocks


def test_the_walkthrough_has_every_step_with_its_answer():
    steps = " ".join(shell for shell, _ in walkthrough_blocks())
    for step in ("/checkout/quote", "/orders", "/dev/pay/", "ready-for-pickup", "hand-over", "/refunds", "flash-sales"):
        assert step in steps, step
    assert sum(expected is not None for _, expected in walkthrough_blocks()) >= 6


def test_the_readme_starts_with_make_dev_and_make_test():
    first = FENCE.search(README.read_text(encoding="utf-8"))
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first.group(2).splitlines()]
    assert commands[:2] == ["make dev", "make test"]


@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("curl")), reason="the walkthrough needs curl and jq")
def test_the_walkthrough_runs_as_written(stack):
    blocks = walkthrough_blocks()
    script = "set -eu\n" + "".join(f"{shell}\necho {MARK}\n" for shell, _ in blocks)
    script = script.replace("API=http://127.0.0.1:8000", f"API={stack.api_url}", 1)
    assert f"API={stack.api_url}" in script, "the walkthrough no longer sets API=http://127.0.0.1:8000"
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    outputs = done.stdout.split(MARK + "\n")
    assert done.returncode == 0, f"stopped after block {len(outputs)}: {done.stderr[-2000:]}"
    for n, ((shell, expected), printed) in enumerate(zip(blocks, outputs, strict=False), start=1):
        if expected is None:
            continue
        got = [json.loads(line) for line in printed.splitlines() if line.strip()]
        want = [json.loads(line) for line in expected.splitlines() if line.strip()]
        assert got == want, f"block {n}:\n{shell}\nprinted {printed!r}"
