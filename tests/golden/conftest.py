"""Fixtures of the golden tests: each test module names its committed folder in ``GOLDEN`` (holding ``store/`` and
``expected.json``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest


@pytest.fixture
def golden_store(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of the module's committed store, so no test can alter the committed files."""
    dst = tmp_path / "golden-store"
    shutil.copytree(request.module.GOLDEN / "store", dst)
    return dst


@pytest.fixture(scope="module")
def expected(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The module's expected.json: what its committed backup holds."""
    doc: dict[str, Any] = orjson.loads((request.module.GOLDEN / "expected.json").read_bytes())
    return doc
