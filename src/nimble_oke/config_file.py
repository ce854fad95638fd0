"""Reading ``nimble.yaml`` (the I/O half of configuration; validation is in domain.config).

Where the file comes from: ``-c/--config``, else ``NIMBLE_CONFIG``, else ``./nimble.yaml``
when it exists, else defaults only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.errors import ConfigError

DEFAULT_FILE = "nimble.yaml"


def config_path(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("NIMBLE_CONFIG"):
        return Path(env["NIMBLE_CONFIG"])
    local = Path(DEFAULT_FILE)
    return local if local.exists() else None


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist (create one: nimble config init)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None


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
