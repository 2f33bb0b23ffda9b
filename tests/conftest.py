"""Fixtures shared across test modules (each is built only when a test asks for it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixture_home_template(tmp_path_factory) -> Path:
    """A home folder with the serving region's dataset and its five models registered as
    `champion` (tests/serving_fixture.py), written once per session; copy it before changing it."""
    from tests.serving_fixture import write_fixture_home

    home = tmp_path_factory.mktemp("fixture-home")
    write_fixture_home(home)
    return home


@pytest.fixture()
def fixture_home(fixture_home_template, tmp_path) -> Path:
    """A private copy of the fixture home: its own data, registry database, model files, keys and
    outbox (the copy's registry points at the copy's files when first opened: a home can move)."""
    home = tmp_path / "home"
    shutil.copytree(fixture_home_template, home)
    return home
