"""The `make package` output of every deployed stage, built once per session into a temporary
directory (not build/); each test of tests/package runs once per stage."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from infra.package import DEPLOYED_STAGES, Package, package


@pytest.fixture(scope="session", params=DEPLOYED_STAGES)
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Package:
    """What `make package stage=<stage>` builds. The first run in a fresh clone downloads the
    Lambda wheels from PyPI (about a minute); later runs reuse Chalice's cache in .chalice/."""
    return package(request.param, tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="session")
def unzipped(packaged: Package, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("lambda-task-root")
    with zipfile.ZipFile(packaged.zip) as archive:
        archive.extractall(target)
    return target


@pytest.fixture(scope="session")
def merged_template(packaged: Package) -> dict:
    return yaml.safe_load(packaged.template.read_text())
