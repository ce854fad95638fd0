"""Reading ``nimble.yaml`` (the I/O half of configuration; validation is in domain.config).

Where the file comes from: ``-c/--config``, else ``NIMBLE_CONFIG``, else ``./nimble.yaml``
when it exists, else defaults only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.errors import ConfigError
from nimble_oke.user_files import CONFIG_LIMITS, load_yaml, read_user_text

DEFAULT_FILE = "nimble.yaml"


def config_path(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("NIMBLE_CONFIG"):
        return Path(env["NIMBLE_CONFIG"])
    local = Path(DEFAULT_FILE)
    return local if local.exists() else None


def read_yaml(path: Path) -> Any:
    """The config file's YAML, read safely (regular file, bounded, UTF-8, no duplicate
    keys; see :mod:`nimble_oke.user_files`)."""
    if not os.path.lexists(path):
        raise ConfigError(f"config file {path} does not exist (create one: nimble config init)")
    return parse_yaml(read_user_text(path, what="config file"), str(path))


def parse_yaml(text: str, source: str) -> Any:
    return load_yaml(text, source, limits=CONFIG_LIMITS)


def load_config(
    explicit: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[NimbleConfig, Path | None]:
    """Load, merge and validate: flags > env > file > defaults."""
    env = os.environ if env is None else env
    path = config_path(explicit, env)
    data = read_yaml(path) if path else None
    return build_config(data, env, flags, source=str(path) if path else "config"), path


def check_deployable(cfg: NimbleConfig) -> None:
    """Every refusal ``plan`` (and ``up``'s preflight, from the catalog) would make, so
    ``config validate`` refuses the same configs: the model, shape, precision, profile and
    preemptible combination, the warm-up shape, the fallback shapes. It calls the planner's
    own checks (one definition each); nothing is created or read from a cloud."""
    from nimble_oke.catalog import load_catalog
    from nimble_oke.domain.plan import build_plan
    from nimble_oke.domain.profiles import check_deploy_profile

    catalog = load_catalog()
    check_deploy_profile(
        catalog, cfg.nim.model, cfg.gpu_pool.shape, cfg.nim.precision, cfg.nim.model_profile
    )
    build_plan(cfg, catalog)
    for name in cfg.gpu_pool.fallback_shapes:
        catalog.shape(name)
