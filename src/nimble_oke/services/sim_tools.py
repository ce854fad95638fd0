"""The project's own tool image (``ghcr.io/nimble-oke/nimble-tools``) inside the Kubernetes
simulator, registered from the product's side (the simulator imports no product service:
it runs images it does not own through :class:`~nimble_oke.sim.stack.ClusterImage`, and
:func:`product_stack` is the stack with this one). Its containers run nimble's own code
in-process —

- ``nimble watchdog run`` (the CronJob that enforces a session's lease). On a real cluster
  the same command runs in the published image with workload identity; here it reaches the
  OCI simulator with the simulator's API key, the sim's stand-in for a workload identity.
- ``nimble bench worker ...`` (the in-cluster benchmark's shards,
  :mod:`nimble_oke.bench.incluster`): the load generator runs against the Service's cluster
  DNS name, which the container resolves through :attr:`ContainerContext.resolve` (the
  simulator's service forwarder) as a pod's resolver would through cluster DNS; its output
  goes to the container log, as a real pod's stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nimble_oke.sim.kube.images import ContainerContext
from nimble_oke.sim.stack import ClusterApi, ClusterImage, SimStack

TOOLS_PREFIX = "ghcr.io/nimble-oke/nimble-tools"
BENCH_WORKER = ["nimble", "bench", "worker"]
MODELS_HYDRATE = ["nimble", "models", "hydrate"]

Runner = Callable[[list[str], Callable[[str], None]], int]
# Object Storage to a node over the service gateway: not published; modeled like NGC's
# ≈250 MB/s (calibration.md, the planner's OBJECT_STORAGE_BYTES_PER_S typical figure).
OBJECT_STORAGE_BYTES_PER_S = 250e6


def emulated_cache_bytes(root: Path) -> int:
    """Simulated bytes of the NIM emulator caches under ``root`` (their manifests record
    them), or 0 when there is none."""
    from nimble_oke.sim.nim.coldstart import MANIFEST

    total = 0
    for manifest in root.rglob(MANIFEST):
        try:
            files = json.loads(manifest.read_text()).get("files", [])
            total += sum(int(f["sim_bytes"]) for f in files)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return total


class ToolsContainer:
    """Runs one nimble tool command to completion (exit code 0 on success)."""

    def __init__(self, ctx: ContainerContext, run: Runner) -> None:
        self.ctx = ctx
        self._run = run
        self._task: asyncio.Task[int] | None = None

    async def start(self) -> int | None:
        argv = [*self.ctx.command, *self.ctx.args]
        run: Runner
        if argv[:3] == BENCH_WORKER:
            run = self._bench_worker
        elif argv[:3] == MODELS_HYDRATE:
            run = self._models_hydrate
        else:
            run = self._run
        self._task = asyncio.create_task(asyncio.to_thread(self._busy, run, argv))
        return None

    def _busy(self, run: Runner, argv: list[str]) -> int:
        """The tool runs as work the simulated clock waits for (a watchdog run happens at
        its scheduled moment, not spread over a jump); its own waits on the simulated
        clock (the hydrate's transfer time) are not."""
        clock = self.ctx.clock
        clock.enter_busy()
        try:
            return run(argv, self.ctx.log)
        finally:
            clock.exit_busy()

    def _models_hydrate(self, argv: list[str], log: Callable[[str], None]) -> int:
        """``nimble models hydrate`` (the chart's object-storage init container) with a PAR
        from the container's environment, writing into the volume mounted at ``--dest``."""
        from nimble_oke.services.models import ParReader, Source, hydrate

        def opt(name: str, default: str | None = None) -> str | None:
            return argv[argv.index(name) + 1] if name in argv else default

        if opt("--auth") != "par":
            log("nimble-tools (sim): only --auth par is simulated")
            return 2
        url = self.ctx.env.get("NIMBLE_PAR_URL", "")
        dest = self.ctx.host_path(str(opt("--dest")))
        if not url or dest is None:
            log("hydrate: NIMBLE_PAR_URL or the --dest volume is missing")
            return 2
        started = self.ctx.clock.now()
        result = hydrate(
            ParReader(url),
            Source.parse(str(opt("--source"))),
            dest,
            opt("--version"),
            parallelism=int(opt("--parallelism", "4") or 4),
            part_size=int(opt("--part-size-mib", "8") or 8) * 1024 * 1024,
            skip_if_manifest_matches="--skip-if-manifest-matches" in argv,
        )
        if not result.skipped:
            self._take_transfer_time(started, dest, str(opt("--dest")), log)
        log(f"hydrate: {result}")
        return 0

    def _take_transfer_time(
        self, started: float, dest: Path, container_dest: str, log: Callable[[str], None]
    ) -> None:
        """The simulator's Object Storage answers at loopback speed and a NIM emulator's
        cache holds scaled-down files; a hydrate of such a cache takes, on the simulated
        clock, the time its simulated bytes need at Object Storage's rate, bounded by the
        cache volume's throughput (as the emulator's NGC download is)."""
        emulated = emulated_cache_bytes(dest)
        if not emulated:
            return  # real files (not an emulator's cache): their real time is the time
        volume = self.ctx.mount_bytes_per_s(container_dest)
        rate = min(OBJECT_STORAGE_BYTES_PER_S, volume or OBJECT_STORAGE_BYTES_PER_S)
        clock = self.ctx.clock
        clock.exit_busy()  # waiting for simulated time: not work the clock waits for
        try:
            clock.sleep_until(started + emulated / rate)
        finally:
            clock.enter_busy()
        log(
            f"hydrate: {emulated / 1e9:.2f} GB at {rate / 1e6:.0f} MB/s "
            f"({emulated / rate:.0f} simulated s)"
        )

    def _bench_worker(self, argv: list[str], log: Callable[[str], None]) -> int:
        """``nimble bench worker``: needs only the container's resolver and environment."""
        from nimble_oke.bench.incluster import API_KEY_ENV, parse_worker_argv, run_worker

        return run_worker(
            parse_worker_argv(argv),
            log,
            resolve=self.ctx.resolve,
            api_key=self.ctx.env.get(API_KEY_ENV) or None,
        )

    async def wait(self) -> int:
        assert self._task is not None
        try:
            return await self._task
        except Exception as exc:  # noqa: BLE001 - a crashing tool is a failed container, as in a real pod
            self.ctx.log(f"error: {type(exc).__name__}: {exc}")
            return 1

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def watchdog_runner(stack: SimStack, cluster: ClusterApi) -> Runner:
    """``nimble watchdog run --namespace NS`` against this stack's OCI simulator and the
    API server of ``cluster`` (the :class:`~nimble_oke.sim.stack.ClusterApi` it runs in)."""

    def run(argv: list[str], log: Callable[[str], None]) -> int:
        from nimble_oke.cloud.oci.provider import OciProvider, fast_retry_strategy
        from nimble_oke.kube.deploy import kube_client
        from nimble_oke.services.watchdog import run_once

        if argv[:3] != ["nimble", "watchdog", "run"] or "--namespace" not in argv:
            log(f"nimble-tools (sim): unsupported command {' '.join(argv)}")
            return 2
        namespace = argv[argv.index("--namespace") + 1]
        provider = OciProvider(
            stack.oci.oci_config(),
            compartment_id=stack.oci.compartment_id,
            service_endpoint=stack.oci.endpoint,
            retry_strategy=fast_retry_strategy(),
            poll_s=0.02,
        )
        client = kube_client(cluster.kubeconfig_path, namespace)
        try:
            run_once(provider, client, namespace, stack.clock.wall(), say=log)
        finally:
            client.close()
            provider.close()
        return 0

    return run


def _tools_container(stack: SimStack, cluster: ClusterApi) -> Callable[[ContainerContext], Any]:
    runner = watchdog_runner(stack, cluster)
    return lambda ctx: ToolsContainer(ctx, runner)


TOOLS = ClusterImage(TOOLS_PREFIX, _tools_container, size_bytes=150_000_000)


def product_stack(state_dir: Path | str, **kwargs: Any) -> SimStack:
    """The simulated stack as nimble uses it: every cluster also runs nimble's tool image
    (the watchdog CronJob, the object-storage hydrate, the in-cluster benchmark workers)."""
    return SimStack(state_dir, images=(TOOLS,), **kwargs)
