"""Run ``up``'s provisioning in a child process and SIGKILL it at a chosen point.

Usage: ``python crash_run.py '<json>'`` with keys ``oci_config``, ``compartment_id``,
``endpoint``, ``home``, ``session``, ``config``, ``crash_after`` and ``at`` (see
:class:`provisioning_helpers.CrashingProvider`). The process kills itself with SIGKILL —
no ``finally``, no atexit, no SQLite close — exactly like ``kill -9`` or an OOM kill.
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


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
