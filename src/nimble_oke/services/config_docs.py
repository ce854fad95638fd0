"""A commented ``nimble.yaml`` generated from the config models (descriptions as comments),
so the file ``nimble config init`` writes can never drift from what is validated."""

from __future__ import annotations

from typing import Any

import yaml

from nimble_oke.domain.config import NimbleConfig, Section


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def default_config_yaml() -> str:
    cfg = NimbleConfig()
    lines = [
        "# nimble.yaml — every key with its default. Precedence: CLI flag > environment",
        "# NIMBLE_<SECTION>_<FIELD> > this file > defaults. Secrets never go here: the NGC",
        "# key is read from the environment variable named in nim.ngc_api_key_env.",
        "",
    ]
    target_help = NimbleConfig.model_fields["target"].description
    lines += [f"# {target_help}", f"target: {cfg.target}", ""]
    for name in NimbleConfig.model_fields:
        value = getattr(cfg, name)
        if not isinstance(value, Section):
            continue
        lines.append(f"{name}:")
        for key, sub in type(value).model_fields.items():
            if sub.description:
                lines.append(f"  # {sub.description}")
            lines.append(f"  {key}: {_scalar(getattr(value, key))}")
        lines.append("")
    return "\n".join(lines)
