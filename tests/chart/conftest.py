"""Fixtures for the chart tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nimble_oke.kube.render import chart_path, render_chart

from .checks import NAMESPACE, RELEASE, SESSION

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return chart_path()


@pytest.fixture(scope="session")
def render(chart_dir: Path) -> Render:
    """Render the chart with ``values`` (the session is set unless given)."""

    def _render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        merged = {"session": SESSION, **(values or {})}
        return render_chart(
            merged, release=RELEASE, namespace=NAMESPACE, chart_dir=chart_dir, **kwargs
        )

    return _render
