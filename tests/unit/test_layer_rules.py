"""The rules of DESIGN.md ("Layers") bite: on a copy of shared/ and functions/ with the project's
pyproject.toml, a forbidden import makes lint-imports fail, and a misspelt service method or an
untyped factory makes mypy fail. The copy without the change passes the same contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """shared/, functions/ and pyproject.toml copied to a tmp dir (no caches)."""
    for package in ("shared", "functions"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def run(tree: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def lint_imports(tree: Path, contract: str) -> subprocess.CompletedProcess[str]:
    return run(tree, str(BIN / "lint-imports"), "--no-cache", "--no-logo", "--contract", contract)


def add_line(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_a_function_folder_importing_another_breaks_the_independence_contract(tree: Path):
    # Given the copy keeps the contract
    assert lint_imports(tree, "functions-independent").returncode == 0
    # When the catalog function imports the inventory function
    add_line(tree / "functions" / "catalog" / "routes.py", "from functions.inventory import routes as _other  # noqa")
    # Then lint-imports fails, naming both folders
    result = lint_imports(tree, "functions-independent")
    assert result.returncode != 0
    assert "functions.catalog is not allowed to import functions.inventory" in result.stdout


def test_a_model_importing_the_data_layer_breaks_the_pure_model_contract(tree: Path):
    # Given the copy keeps the contract
    clean = lint_imports(tree, "pure-models")
    assert clean.returncode == 0, clean.stdout
    # When the catalogue's model imports the data layer
    add_line(tree / "shared" / "catalog" / "model.py", "from shared.data import table as _table  # noqa")
    # Then lint-imports fails on that import
    result = lint_imports(tree, "pure-models")
    assert result.returncode != 0
    assert "shared.catalog.model is not allowed to import shared.data" in result.stdout


def test_a_new_capability_is_covered_by_the_wildcard_and_exhaustive_contracts(tree: Path):
    # Given a capability nobody listed, whose model reaches for the web edge
    (tree / "shared" / "loyalty").mkdir()
    (tree / "shared" / "loyalty" / "__init__.py").write_text("")
    (tree / "shared" / "loyalty" / "model.py").write_text("from shared.web import problems as _problems  # noqa\n")
    # Then the model rule and the web rule catch it, and the layers contract asks where it belongs
    pure = lint_imports(tree, "pure-models")
    assert "shared.loyalty.model is not allowed to import shared.web" in pure.stdout
    assert lint_imports(tree, "web-is-the-edge").returncode != 0
    assert "- shared.loyalty" in lint_imports(tree, "layers").stdout


def mypy(tree: Path, *files: str) -> subprocess.CompletedProcess[str]:
    # Only the named files are reported (imports are followed for their types, silently), and
    # third-party packages are left out: fast, and our own classes are what the boundary types are.
    return run(
        tree,
        sys.executable,
        "-m",
        "mypy",
        "--cache-dir",
        str(tree / ".mypy_cache"),
        "--no-site-packages",
        "--follow-imports=silent",
        *files,
    )


def test_mypy_refuses_a_misspelt_service_method_and_an_untyped_factory(tree: Path):
    handlers = "functions/notifications/handlers.py"
    bootstrap = "shared/platform/bootstrap.py"
    # Given the copy type-checks
    clean = mypy(tree, handlers, bootstrap)
    assert clean.returncode == 0, clean.stdout
    # When a route calls a method the notifier does not have, and a factory comes back untyped
    source = (tree / handlers).read_text()
    assert ".greet_birthdays(" in source
    (tree / handlers).write_text(source.replace(".greet_birthdays(", ".greet_birthdayz("))
    add_line(tree / bootstrap, "def birthday_clock():\n    return None")
    # Then mypy fails on both
    result = mypy(tree, handlers, bootstrap)
    assert result.returncode != 0
    assert '"Notifier" has no attribute "greet_birthdayz"' in result.stdout
    assert "bootstrap.py:" in result.stdout and "Function is missing a return type annotation" in result.stdout


def test_the_composition_root_silences_no_type_errors():
    assert "type: ignore" not in (ROOT / "shared" / "platform" / "bootstrap.py").read_text()
