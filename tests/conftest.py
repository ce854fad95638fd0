"""Test-wide fixtures: every test gets its own NIMBLE_HOME and no stray NIMBLE_* env."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("nimble-home")
    for key in list(os.environ):
        if key.startswith("NIMBLE_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NIMBLE_HOME", str(home))
    yield home
