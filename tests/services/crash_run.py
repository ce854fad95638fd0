"""Run ``up`` (or only its provisioning) in a child process and SIGKILL it at a chosen
point.

Usage: ``python crash_run.py '<json>'``.

- provisioning only: keys ``oci_config``, ``compartment_id``, ``endpoint``, ``home``,
  ``session``, ``config``, ``crash_after`` and ``at`` (see
  :class:`provisioning_helpers.CrashingProvider`);
- the whole ``up`` on a running SimStack: ``mode: "up"``, ``endpoints`` (the stack's),
  ``home``, ``config`` and ``kill``: ``{"after_create": kind}`` (dies right after the
  first create of that kind was sent, for ``node_pool`` the first GPU pool) or
  ``{"step": name}`` (dies as the saga journals the start of that step).

The process kills itself with SIGKILL — no ``finally``, no atexit, no SQLite close —
exactly like ``kill -9`` or an OOM kill.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import oci

sys.path.insert(0, str(Path(__file__).parent))

from provisioning_helpers import POLL_S, TIMEOUTS, CrashingProvider

from nimble_oke.catalog import load_catalog
from nimble_oke.cloud.oci.provider import fast_retry_strategy
from nimble_oke.domain.config import build_config
from nimble_oke.services.preflight import preflight
from nimble_oke.services.provision import Provisioner
from nimble_oke.state.store import StateStore


def sigkill(where: str) -> NoReturn:
    print(f"SIGKILL {where}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def main(args: dict[str, Any]) -> int:
    # as in conftest._fast_key_loading: load the PEM key once, not once per SDK client
    oci.signer.load_private_key = functools.lru_cache(maxsize=2)(oci.signer.load_private_key)
    provider = CrashingProvider(
        args["oci_config"],
        compartment_id=str(args["compartment_id"]),
        service_endpoint=str(args["endpoint"]),
        retry_strategy=fast_retry_strategy(),
        poll_s=POLL_S,
        crash_after=int(args["crash_after"]),
        at=str(args["at"]),
        crash=sigkill,
    )
    catalog = load_catalog()
    cfg = build_config(args["config"])
    store = StateStore(Path(str(args["home"])))
    session = str(args["session"])
    report = preflight(cfg, provider, catalog)
    Provisioner(session, cfg, provider, store, catalog, timeouts=TIMEOUTS).provision(report)
    print("provisioned without crashing", flush=True)
    return 3


def run_up(args: dict[str, Any]) -> int:
    """The whole ``up`` against a running SimStack, dying where ``kill`` says."""
    from nimble_oke.cloud.oci.provider import OciProvider
    from nimble_oke.domain.plan import build_plan
    from nimble_oke.services.lifecycle import up
    from nimble_oke.services.targets import sim_target

    kill = args["kill"]
    real_create = OciProvider.create
    real_step = StateStore.step_started

    def create(self: OciProvider, kind: str, spec: Any, *, retry_token: str) -> Any:
        created = real_create(self, kind, spec, retry_token=retry_token)
        gpu = kind != "node_pool" or "GPU" in str(spec.get("shape", ""))
        if kill.get("after_create") == kind and gpu:
            sigkill(f"after the {kind} create was sent")
        return created

    def step_started(self: StateStore, run_id: str, step: str) -> int:
        step_id = real_step(self, run_id, step)
        if kill.get("step") == step:
            sigkill(f"as step {step} starts")
        return step_id

    OciProvider.create = create  # type: ignore[method-assign]
    StateStore.step_started = step_started  # type: ignore[method-assign]
    cfg = build_config(args["config"])
    target = sim_target(cfg, args["endpoints"], {})
    store = StateStore(Path(str(args["home"])), now=target.now)
    up(cfg, build_plan(cfg, load_catalog()), target, store, say=print, bench=False)
    print("up ended without being killed", flush=True)
    return 3


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    sys.exit(run_up(arguments) if arguments.get("mode") == "up" else main(arguments))
