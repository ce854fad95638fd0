"""``OciSimulator``: the simulated OCI on 127.0.0.1, served from a background thread.

One aiohttp site per region (the region is implied by the port called) shares one
:class:`World`, so Object Storage replication can cross regions. Synchronous OCI SDK
clients in tests or other code talk to it like to OCI::

    with OciSimulator(state_dir=tmp, time_scale=600, seed=1) as sim:
        ce = oci.container_engine.ContainerEngineClient(
            sim.oci_config(), service_endpoint=sim.endpoint
        )
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.oci.api import SimApi
from nimble_oke.sim.oci.auth import ApiKey, verify_cluster_token
from nimble_oke.sim.oci.billing import billing_rows, inventory_rows
from nimble_oke.sim.oci.faults import FaultPlan
from nimble_oke.sim.oci.hooks import NodeHooks
from nimble_oke.sim.oci.ids import IdFactory
from nimble_oke.sim.oci.server import make_app
from nimble_oke.sim.oci.services import build_router
from nimble_oke.sim.oci.services.identity import seed_compartment
from nimble_oke.sim.oci.services.nodes import hook_payload
from nimble_oke.sim.oci.services.power import kubelet_up
from nimble_oke.sim.oci.world import World

log = logging.getLogger(__name__)

STATE_FILE = "oci-state.json"
IDENTITY_FILE = "oci/identity.json"
KEY_FILE = "oci/oci_api_key.pem"
CONFIG_FILE = "oci/config"
DEFAULT_REGIONS = ("us-ashburn-1", "us-phoenix-1")
TICK_S = 0.02  # real seconds between event-queue checks
SAVE_EVERY_S = 0.5  # real seconds between state saves while something changed


def _bound_port(site: web.TCPSite) -> int:
    server = site._server
    sockets = getattr(server, "sockets", None)
    if not sockets:
        raise RuntimeError("the OCI simulator's site did not bind a socket")
    return int(sockets[0].getsockname()[1])


class OciSimulator:
    def __init__(
        self,
        state_dir: str | Path | None = None,
        time_scale: float = 600.0,
        faults: FaultPlan | None = None,
        seed: int | None = None,
        regions: tuple[str, ...] | list[str] = DEFAULT_REGIONS,
        clock: SimClock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timings: dict[str, float] | None = None,
    ) -> None:
        self._tmp: str | None = None
        if state_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="nimble-oci-sim-")
            state_dir = self._tmp
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock or SimClock(time_scale)
        self.host, self.port = host, port
        tenancy, _user, key = self._identity(seed)
        self.world = World(self.clock, faults or FaultPlan(), seed, list(regions), tenancy, key)
        self.world.timings.override(timings or {})  # e.g. {"cluster_create_s": 300}
        self.router = build_router(self.world)
        state_path = self.state_dir / STATE_FILE
        if state_path.exists():
            self.world.restore(json.loads(state_path.read_text()))
        with self.world.lock:
            self.compartment_id = seed_compartment(self.world, "nimble-sim")
        self.api = SimApi(self.world, self.compartment_id)
        self.endpoints: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._ticker: asyncio.Task[None] | None = None
        self._hook_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # --- identity --------------------------------------------------------------------------
    def _identity(self, seed: int | None) -> tuple[str, str, ApiKey]:
        """Tenancy/user OCIDs and the API key live in state_dir/oci/ so a cloud outlives
        one process (the private key file is mode 0600)."""
        ident_path, key_path = self.state_dir / IDENTITY_FILE, self.state_dir / KEY_FILE
        if ident_path.exists() and key_path.exists():
            ident = json.loads(ident_path.read_text())
            key = ApiKey.from_pem(ident["tenancy"], ident["user"], key_path.read_bytes())
            return ident["tenancy"], ident["user"], key
        ids = IdFactory(None if seed is None else seed + 7919)
        tenancy, user = ids.ocid("tenancy"), ids.ocid("user")
        key = ApiKey.generate(tenancy, user)
        key.write_private_key(key_path)
        ident_path.write_text(json.dumps({"tenancy": tenancy, "user": user}))
        return tenancy, user, key

    @property
    def tenancy_id(self) -> str:
        return self.world.tenancy

    @property
    def region(self) -> str:
        return self.world.home_region

    @property
    def endpoint(self) -> str:
        """Base URL of the home region (pass as ``service_endpoint`` to any SDK client)."""
        return self.endpoints[self.world.home_region]

    @property
    def key_file(self) -> Path:
        return self.state_dir / KEY_FILE

    def oci_config(self, region: str | None = None) -> dict[str, Any]:
        key = self.world.api_key
        return {
            "user": key.user,
            "fingerprint": key.fingerprint,
            "tenancy": key.tenancy,
            "region": region or self.world.home_region,
            "key_file": str(self.key_file),
        }

    def write_config_file(self, path: Path | None = None) -> Path:
        """An OCI CLI/SDK config file with profile DEFAULT pointing at the key file."""
        path = path or self.state_dir / CONFIG_FILE
        cfg = self.oci_config()
        lines = ["[DEFAULT]"] + [f"{k}={v}" for k, v in cfg.items()]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)  # as oci setup writes it (oci-cli warns about a readable one)
        return path

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> OciSimulator:
        if self._thread is not None:
            return self
        self._hook_pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="oci-sim-hooks"
        )
        self._thread = threading.Thread(target=self._run, name="oci-sim", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._startup_error is not None:
            self.stop()
            raise RuntimeError("OCI simulator failed to start") from self._startup_error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except Exception as exc:  # noqa: BLE001 - reported to start()
            self._startup_error = exc
            self._ready.set()
            loop.run_until_complete(self._shutdown())
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._shutdown())
        loop.close()

    async def _startup(self) -> None:
        for index, region in enumerate(self.world.regions):
            app = make_app(self.world, self.router, region)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, self.host, self.port if index == 0 else 0)
            await site.start()
            port = _bound_port(site)
            self.endpoints[region] = f"http://{self.host}:{port}"
        self.world.endpoints = dict(self.endpoints)
        loop = asyncio.get_running_loop()
        self.clock.watch_loop(loop)
        self.world.on_due = lambda: self._wake(loop)
        self._ticker = loop.create_task(self._tick())

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        """An event fell due on the simulated clock: run it now (not at the next tick)."""
        with contextlib.suppress(RuntimeError):  # stopping
            loop.call_soon_threadsafe(self.step)

    async def _shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def _tick(self) -> None:
        last_save = time.monotonic()
        while True:
            self.step()
            if self.world.dirty and time.monotonic() - last_save > SAVE_EVERY_S:
                self.save()
                last_save = time.monotonic()
            await asyncio.sleep(TICK_S)

    def step(self) -> None:
        """Apply due lifecycle events now and hand hook calls to the hook thread (work the
        clock waits for: it does not jump while a hook runs)."""
        before = self.world.events_run
        try:
            hooks = self.world.run_due()
        except Exception:
            log.exception("OCI simulator event failed")
            return
        if self.world.events_run != before:
            self.clock.notify("oci")  # participants sleeping on the cloud's changes
        target = self.world.hooks
        if target is None or self._hook_pool is None:
            return
        for call in hooks:
            self.clock.enter_busy()
            try:
                self._hook_pool.submit(
                    self._call_hook, target, call.name, call.cluster_id, call.payload
                )
            except RuntimeError:  # the pool is shutting down
                self.clock.exit_busy()

    def _call_hook(self, target: NodeHooks, name: str, cluster_id: str, payload: Any) -> None:
        try:
            handler = getattr(target, name, None)
            if handler is None:  # optional hooks (e.g. cluster_deleted)
                return
            handler(cluster_id, payload) if payload is not None else handler(cluster_id)
        except Exception:
            log.exception("node hook %s failed", name)
        finally:
            self.clock.exit_busy()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._thread, self._loop = None, None
        if self._hook_pool is not None:
            self._hook_pool.shutdown(wait=True)
            self._hook_pool = None
        self.save()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def save(self) -> None:
        if self._tmp is None:
            self.world.save(self.state_dir / STATE_FILE)

    def __enter__(self) -> OciSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- views and seams ---------------------------------------------------------------------
    def inventory(self) -> list[dict[str, Any]]:
        """Live resources (not TERMINATED/DELETED), excluding work requests."""
        return inventory_rows(self.world)

    def billing(self) -> list[dict[str, Any]]:
        return billing_rows(self.world)

    def verify_cluster_token(self, token: str) -> str:
        """For the Kubernetes simulator: check an OKE bearer token (as made by
        ``oci ce cluster generate-token`` or the SDK signer) and return its cluster OCID.
        Raises ``PermissionError`` for a bad/expired signature or an unknown cluster."""
        cluster_id, _region = verify_cluster_token(self.world.keys, token)
        with self.world.lock:
            res = self.world.resources.get(cluster_id)
            if res is None or res.kind != "cluster" or not res.live:
                raise PermissionError(f"unknown cluster {cluster_id}")
        return cluster_id

    def attach_kube(self, url: str | None, hooks: NodeHooks, ca_data: str | None = None) -> None:
        """Deliver cluster and node events to ``hooks`` (the Kubernetes side). With ``url``,
        every cluster's kubeconfig points at that one API; without, the hooks' optional
        ``cluster_created`` starts one API per cluster and reports it through
        :meth:`register_cluster_api`. Live clusters are announced again and nodes already
        ACTIVE are replayed to ``hooks.node_ready``."""
        with self.world.lock:
            self.world.kube_url = url.rstrip("/") if url else None
            self.world.kube_ca_data = ca_data
            self.world.hooks = hooks
            for res in self.world.resources.values():
                if res.kind == "cluster" and res.live:
                    self.world.emit(
                        "cluster_created", res.id, {"name": res.wire["name"], "region": res.region}
                    )
                    if url and res.wire.get("lifecycleState") == "ACTIVE":
                        self._publish_endpoint(res.id, url)
            for res in self.world.resources.values():
                if res.kind == "node" and res.live and res.wire["lifecycleState"] == "ACTIVE":
                    self.world.emit(
                        "node_ready", res.extra["cluster"], hook_payload(self.world, res)
                    )
                    if not kubelet_up(res):  # a stopped instance: NotReady, not Ready
                        self.world.emit("node_stopped", res.extra["cluster"], res.wire["name"])
        if self._thread is None:
            return
        self.step()

    def register_cluster_api(self, cluster_id: str, url: str, ca_data: str | None = None) -> None:
        """The cluster's own Kubernetes API server listens at ``url`` (CA ``ca_data``):
        its endpoints and kubeconfig name it from now on."""
        with self.world.lock:
            self.world.cluster_apis[cluster_id] = (url.rstrip("/"), ca_data)
            res = self.world.resources.get(cluster_id)
            if res is not None and res.wire.get("lifecycleState") in ("ACTIVE", "UPDATING"):
                self._publish_endpoint(cluster_id, url)

    def forget_cluster_api(self, cluster_id: str) -> None:
        with self.world.lock:
            self.world.cluster_apis.pop(cluster_id, None)

    def _publish_endpoint(self, cluster_id: str, url: str) -> None:
        res = self.world.resources[cluster_id]
        endpoint = url.split("://", 1)[-1].rstrip("/")
        res.wire["endpoints"] = {
            **(res.wire.get("endpoints") or {}),
            "kubernetes": endpoint,
            "publicEndpoint": endpoint,
        }
        self.world.touch(res)
