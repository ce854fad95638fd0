"""Catalog data files shipped with the package (shapes, prices, models) and their loader."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from nimble_oke.domain.catalog import Catalog, parse_catalog


def _read(name: str) -> Any:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped with this version of nimble (cached)."""
    return parse_catalog(_read("shapes.yaml"), _read("prices.yaml"), _read("models.yaml"))
