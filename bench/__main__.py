"""`make bench` (`python -m bench [section ...] [--json FILE]`): runs every section of bench/ in
turn and prints one table.

A section is a module of this package with a `run() -> dict[str, object]` that returns its
figures, metric name to value (put the unit in the name: "median ms"); the first line of its
docstring is its title. Modules whose name starts with `_` are helpers, not sections. A section
that fails is reported as such and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import bench


def sections() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def title(module: ModuleType) -> str:
    return (module.__doc__ or module.__name__).strip().splitlines()[0]


def formatted(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    header = ("section", "metric", "value")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for row in [header, None, *rows]:
        if row is None:
            print(line)
            continue
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
    print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help=f"sections to run (default: all of {', '.join(sections())})")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    chosen = args.only or sections()
    unknown = sorted(set(chosen) - set(sections()))
    if unknown:
        parser.error(f"no such section: {', '.join(unknown)}")

    rows: list[tuple[str, str, str]] = []
    results: dict[str, dict[str, Any]] = {}
    failed = False
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {title(module)}", flush=True)
        started = time.monotonic()
        try:
            figures = dict(module.run())
        except Exception:
            traceback.print_exc()
            figures = {"error": "failed, see above"}
            failed = True
        figures["section took s"] = round(time.monotonic() - started, 1)
        results[name] = figures
        rows.extend((name, metric, formatted(value)) for metric, value in figures.items())
    print()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
