"""Session flags shared by ``nimble plan`` (app.py) and ``nimble up`` (session_cmds.py).

Kept apart from both so that each imports it and neither imports the other (app.py
registers session_cmds' commands, so session_cmds must not import app.py). Light on
purpose: nothing here is imported until a command runs.
"""

from __future__ import annotations

# The flag each session option is typed as, by the config key it sets (errors name both).
SESSION_FLAGS = {
    "target": "--target",
    "cluster.name": "--name",
    "gpu_pool.shape": "--shape",
    "gpu_pool.nodes": "--nodes",
    "gpu_pool.preemptible": "--preemptible/--on-demand",
    "nim.model": "--model",
    "nim.precision": "--precision",
    "budget.max_hours": "--hours",
    "budget.max_usd": "--budget",
    "cache.size_gb": "--cache-size",
    "cache.mode": "--cache-mode",
}


def session_flags(
    target: str | None = None,
    name: str | None = None,
    shape: str | None = None,
    nodes: int | None = None,
    preemptible: bool | None = None,
    model: str | None = None,
    precision: str | None = None,
    hours: float | None = None,
    budget: float | None = None,
    cache_size: int | None = None,
    cache_mode: str | None = None,
) -> dict[str, object]:
    """CLI flags as dotted config paths (None = not given, so lower layers apply); errors
    about these values name the flag (``--hours``) and the config key it sets."""
    from nimble_oke.domain.config import FlagOverrides

    values = {
        "target": target,
        "cluster.name": name,
        "gpu_pool.shape": shape,
        "gpu_pool.nodes": nodes,
        "gpu_pool.preemptible": preemptible,
        "nim.model": model,
        "nim.precision": precision,
        "budget.max_hours": hours,
        "budget.max_usd": budget,
        "cache.size_gb": cache_size,
        "cache.mode": cache_mode,
    }
    return FlagOverrides(values, SESSION_FLAGS)
