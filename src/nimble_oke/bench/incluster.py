"""In-cluster benchmark: the load generator runs as Kubernetes Jobs next to the service.

A client outside the cluster measures through a port-forward or the load balancer and adds
that path's latency (~2 ms for a port-forward) to every TTFT. Here each of N worker pods
runs ``nimble bench worker``, its share of the load (:func:`~nimble_oke.bench.shard.shard`),
against the Service's cluster DNS name, and prints its raw result (``save_raw``'s ``.npz``,
base64) to its log between two marker lines. The lead reads the logs through the
Kubernetes API, ``load_raw``s each shard and :func:`~nimble_oke.bench.shard.merge`s them:
the merged result is analysed exactly like a single-process run.

Why one Job per shard rather than one Indexed Job: the shard index is then a literal
argument, so the worker needs no ``JOB_COMPLETION_INDEX`` (the local Kubernetes
simulator does not implement Indexed completion) and a failed shard names its Job.

Why the pod log: it needs no RBAC for the worker (no ConfigMap writes, no service account
token) and it survives the pod's completion until the Job is deleted. It is size-bounded:
the kubelet rotates a container log at ``containerLogMaxSize`` (default 10 MiB, kubelet
configuration reference), so a shard's raw result is capped at :data:`MAX_RAW_BYTES`
(8 MiB once base64-encoded) and a worker whose result is larger fails with a clear message
instead of losing data to rotation.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nimble_oke.bench.config import BenchConfig
from nimble_oke.bench.raw import load_raw, save_raw
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.shard import merge, shard
from nimble_oke.errors import ConfigError, EndpointError, KubeError
from nimble_oke.polling import poll_until

TOOLS_IMAGE = "ghcr.io/nimble-oke/nimble-tools:0.2.0"  # the same tag the watchdog CronJob runs
RUN_LABEL = "nimble-oke/bench-run"
RAW_BEGIN = "NIMBLE-BENCH-RAW-BEGIN"
RAW_END = "NIMBLE-BENCH-RAW-END"
LINE_CHARS = 4000  # base64 characters per log line (far below containerd's 16 KiB split)
MAX_RAW_BYTES = 6 * 1024 * 1024  # ×4/3 base64 = 8 MiB of log < the kubelet's 10 MiB rotation
WORKER_EXIT_TOO_LARGE = 3
API_KEY_ENV = "NIMBLE_BENCH_API_KEY"
DEFAULT_TIMEOUT_S = 900.0

Say = Callable[[str], None]
Resolve = Callable[[str, int], tuple[str, int]]


# --- the wire format: a raw result in log lines ---------------------------------------------
def encode_raw(result: BenchResult, shard_index: int) -> list[str]:
    """Log lines carrying ``result``: a header (shard, size, sha256), base64 lines, a footer.

    Raises :class:`ValueError` when the raw data exceeds :data:`MAX_RAW_BYTES`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_raw(result, Path(tmp) / "raw.npz")
        data = path.read_bytes()
    if len(data) > MAX_RAW_BYTES:
        raise ValueError(
            f"shard {shard_index}: raw result is {len(data):,} bytes, above the "
            f"{MAX_RAW_BYTES:,}-byte log budget; use more workers or fewer requests per worker"
        )
    text = base64.b64encode(data).decode("ascii")
    digest = hashlib.sha256(data).hexdigest()
    lines = [f"{RAW_BEGIN} shard={shard_index} bytes={len(data)} sha256={digest}"]
    lines += [text[i : i + LINE_CHARS] for i in range(0, len(text), LINE_CHARS)]
    lines.append(RAW_END)
    return lines


def decode_raw(lines: Iterable[str], api_key: str | None = None) -> BenchResult:
    """The result a worker printed with :func:`encode_raw` (other log lines are ignored);
    :class:`ValueError` when the block is missing, truncated or corrupted."""
    header: dict[str, str] | None = None
    body: list[str] = []
    for raw_line in lines:
        line = raw_line.rstrip("\r\n")
        if header is None:
            if line.startswith(RAW_BEGIN):
                header = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            continue
        if line == RAW_END:
            break
        body.append(line.strip())
    else:
        raise ValueError("no complete raw result in the worker's log")
    assert header is not None  # the loop only breaks after a header
    data = base64.b64decode("".join(body), validate=True)
    if len(data) != int(header.get("bytes", -1)):
        raise ValueError(f"raw result is {len(data)} bytes, the header says {header.get('bytes')}")
    if hashlib.sha256(data).hexdigest() != header.get("sha256"):
        raise ValueError("raw result checksum mismatch")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.npz"
        path.write_bytes(data)
        return load_raw(path, api_key=api_key)


# --- the worker (``nimble bench worker``) ------------------------------------------------------
@dataclass(frozen=True)
class WorkerArgs:
    endpoint: str
    shard_index: int
    workers: int
    config: dict[str, Any]


def worker_argv(endpoint: str, shard_index: int, workers: int, config: BenchConfig) -> list[str]:
    """The container command of one worker (the config without its API key)."""
    public = config.public_dict()
    public.pop("endpoint", None)
    return [
        "nimble",
        "bench",
        "worker",
        "--endpoint",
        endpoint,
        "--shard-index",
        str(shard_index),
        "--workers",
        str(workers),
        "--config",
        json.dumps(public, sort_keys=True, separators=(",", ":")),
    ]


def parse_worker_argv(argv: list[str]) -> WorkerArgs:
    """Parse ``nimble bench worker --endpoint URL --shard-index I --workers N --config JSON``."""
    if argv[:3] != ["nimble", "bench", "worker"]:
        raise ConfigError(f"not a bench worker command: {' '.join(argv[:3])}")
    flags = dict(zip(argv[3::2], argv[4::2], strict=False))
    missing = [f for f in ("--endpoint", "--shard-index", "--workers") if f not in flags]
    if missing:
        raise ConfigError(f"nimble bench worker: missing {', '.join(missing)}")
    try:
        config = json.loads(flags.get("--config", "{}"))
        return WorkerArgs(
            flags["--endpoint"], int(flags["--shard-index"]), int(flags["--workers"]), config
        )
    except ValueError as exc:
        raise ConfigError(f"nimble bench worker: bad argument ({exc})") from None


def _resolved(endpoint: str, resolve: Resolve | None) -> str:
    if resolve is None:
        return endpoint
    parts = urlsplit(endpoint)
    host, port = resolve(parts.hostname or "", parts.port or 80)
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", ""))


def run_worker(
    args: WorkerArgs,
    emit: Say,
    *,
    resolve: Resolve | None = None,
    api_key: str | None = None,
) -> int:
    """Run one shard and print its raw result (exit code 0, or
    :data:`WORKER_EXIT_TOO_LARGE` when it does not fit the log budget).

    ``resolve`` maps the in-cluster host:port to a reachable one (the simulator's service
    DNS); on a real cluster it is ``None`` and the cluster DNS resolves the name."""
    from nimble_oke.bench.runs import run

    data = {k: v for k, v in args.config.items() if k in _FIELDS}
    config = BenchConfig(**{**data, "endpoint": args.endpoint, "api_key": api_key})
    part = shard(config, args.workers)[args.shard_index]
    emit(
        f"nimble bench worker {args.shard_index + 1}/{args.workers}: {part.mode} "
        f"{part.concurrency if part.rate is None else part.rate}, requests {part.requests}"
    )
    result = run(part.replace(endpoint=_resolved(args.endpoint, resolve)))
    result.config = result.config.replace(endpoint=args.endpoint)
    try:
        lines = encode_raw(result, args.shard_index)
    except ValueError as exc:
        emit(f"error: {exc}")
        return WORKER_EXIT_TOO_LARGE
    for line in lines:
        emit(line)
    return 0


_FIELDS = {f.name for f in dataclasses.fields(BenchConfig)} - {"api_key", "endpoint"}


def worker_main(argv: list[str], emit: Say, *, resolve: Resolve | None = None) -> int:
    """``nimble bench worker ...`` (the API key, if any, from ``NIMBLE_BENCH_API_KEY``)."""
    return run_worker(
        parse_worker_argv(argv), emit, resolve=resolve, api_key=os.environ.get(API_KEY_ENV)
    )


# --- the lead: Jobs, waiting, collection ------------------------------------------------------
def service_url(client: Any, namespace: str, service: str) -> str:
    """``http://<service>.<namespace>.svc:<port>`` for the Service's first port."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Service

    try:
        svc = client.get(Service, service, namespace=namespace)
    except ApiError as exc:
        raise KubeError(f"service {namespace}/{service}: {exc.status.message}") from None
    port = svc.spec.ports[0].port
    return f"http://{service}.{namespace}.svc:{port}"


def job_manifests(
    run_id: str,
    namespace: str,
    endpoint: str,
    config: BenchConfig,
    workers: int,
    *,
    image: str = TOOLS_IMAGE,
) -> list[dict[str, Any]]:
    """One Job per shard: a single pod, never restarted (a rerun would double the load)."""
    jobs = []
    for index in range(workers):
        labels = {
            RUN_LABEL: run_id,
            "app.kubernetes.io/managed-by": "nimble-oke",
            "app.kubernetes.io/component": "bench-worker",
        }
        jobs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": f"nimble-bench-{run_id}-{index}",
                    "namespace": namespace,
                    "labels": labels,
                },
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": False,
                            # A session's cluster may have only GPU nodes: run there too.
                            "tolerations": [
                                {"key": "nvidia.com/gpu", "operator": "Exists"},
                                {
                                    "key": "oci.oraclecloud.com/oke-is-preemptible",
                                    "operator": "Exists",
                                },
                            ],
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [
                                {
                                    "name": "worker",
                                    "image": image,
                                    "command": worker_argv(endpoint, index, workers, config),
                                    # one asyncio process = one core (the validity gate's CPU
                                    # measure assumes it has that core)
                                    "resources": {
                                        "requests": {"cpu": "1", "memory": "256Mi"},
                                        "limits": {"memory": "1Gi"},
                                    },
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                }
                            ],
                        },
                    },
                },
            }
        )
    return jobs


@dataclass
class ShardInfo:
    index: int
    job: str
    pod: str | None = None
    requests: int = 0
    start_offset_s: float | None = None  # this shard's first send − the earliest shard's


@dataclass
class InClusterRun:
    result: BenchResult  # the merged result
    endpoint: str  # the in-cluster URL the workers measured
    run_id: str
    shards: list[ShardInfo] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "run_id": self.run_id,
            "workers": len(self.shards),
            "shards": [dataclasses.asdict(s) for s in self.shards],
            "max_start_skew_s": max((s.start_offset_s or 0.0 for s in self.shards), default=0.0),
        }


def _finished(job: Any) -> str | None:
    for c in (job.status.conditions if job.status else None) or []:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return str(c.type)
    return None


def _job_pod(client: Any, namespace: str, job: str) -> Any | None:
    from lightkube.resources.core_v1 import Pod

    pods = list(client.list(Pod, namespace=namespace, labels={"job-name": job}))
    pods.sort(key=lambda p: p.status.phase == "Succeeded" if p.status else False)
    return pods[-1] if pods else None


def _log_lines(client: Any, namespace: str, pod: str) -> list[str]:
    return [str(line) for line in client.log(pod, namespace=namespace, container="worker")]


def run_in_cluster(
    client: Any,
    namespace: str,
    service: str,
    config: BenchConfig,
    workers: int,
    *,
    image: str = TOOLS_IMAGE,
    timeout_s: float | None = None,
    poll_s: float = 0.2,
    keep_jobs: bool = False,
    say: Say = lambda _m: None,
    sleep: Callable[[float], None] = time.sleep,
) -> InClusterRun:
    """Run ``config`` as ``workers`` Jobs in ``namespace`` against ``service`` and merge.

    ``client`` is a lightkube Client for the cluster. ``timeout_s`` (real seconds) bounds
    the whole run from Job creation to the last shard's completion (default: 900 s for
    scheduling, image pull and a requests-bounded run, plus ``duration_s``); the Jobs are
    deleted afterwards (also on failure or Ctrl-C) unless ``keep_jobs``. ``sleep`` waits
    between polls (``Target.sleep`` on the sim: the simulated clock knows the wait)."""
    from lightkube import codecs
    from lightkube.resources.batch_v1 import Job
    from lightkube.types import CascadeType

    if workers < 1:
        raise ConfigError(f"--workers {workers}: allowed an integer >= 1")
    try:
        shard(config, workers)
    except ValueError as exc:
        raise ConfigError(f"--workers {workers}: {exc}") from None
    if timeout_s is None:
        timeout_s = DEFAULT_TIMEOUT_S + (config.duration_s or 0.0)
    endpoint = service_url(client, namespace, service)
    run_id = time.strftime("%H%M%S") + secrets.token_hex(2)
    manifests = job_manifests(run_id, namespace, endpoint, config, workers, image=image)
    shards = [ShardInfo(i, m["metadata"]["name"]) for i, m in enumerate(manifests)]
    created: list[str] = []
    try:
        for m in manifests:
            client.create(codecs.from_dict(m), namespace=namespace)
            created.append(m["metadata"]["name"])
        say(f"bench       {workers} worker Jobs in {namespace} → {endpoint}")
        results = _collect(client, namespace, shards, config, timeout_s, poll_s, sleep)
    finally:
        if not keep_jobs:
            for name in created:
                try:
                    client.delete(Job, name, namespace=namespace, cascade=CascadeType.BACKGROUND)
                except Exception:  # noqa: BLE001, S112 - best effort; the namespace owns them
                    continue
    starts = [r.wall_offset_ns + r.start_ns for r in results]
    first = min(starts)
    for info, r, start in zip(shards, results, starts, strict=True):
        info.requests = r.store.count
        info.start_offset_s = (start - first) / 1e9
    merged = merge(results)
    merged.config = merged.config.replace(endpoint=endpoint, api_key=config.api_key)
    return InClusterRun(merged, endpoint, run_id, shards)


def _collect(
    client: Any,
    namespace: str,
    shards: list[ShardInfo],
    config: BenchConfig,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[BenchResult]:
    """Every shard's result, read from its Job's pod log as the Job finishes (a failed
    worker stops the run at once)."""
    pending = {s.job: s for s in shards}
    results: dict[int, BenchResult] = {}

    def all_finished() -> bool | None:
        for name, info in list(pending.items()):
            result = _shard_result(client, namespace, name, info, config)
            if result is not None:
                results[info.index] = result
                del pending[name]
        return True if not pending else None

    def too_late() -> EndpointError:
        return EndpointError(
            f"bench workers {sorted(s.index for s in pending.values())} did not finish "
            f"within {timeout_s:.0f}s (kubectl describe job -n {namespace} "
            f"{next(iter(pending))})"
        )

    poll_until(
        all_finished, timeout_s=timeout_s, interval_s=poll_s, on_timeout=too_late, sleep=sleep
    )
    return [results[i] for i in range(len(shards))]


def _shard_result(
    client: Any, namespace: str, job: str, info: ShardInfo, config: BenchConfig
) -> BenchResult | None:
    """The shard's result once its Job has finished (None while it runs); raises when the
    worker failed or its log holds no result."""
    from lightkube.resources.batch_v1 import Job

    state = _finished(client.get(Job, job, namespace=namespace))
    if state is None:
        return None
    pod = _job_pod(client, namespace, job)
    info.pod = pod.metadata.name if pod is not None else None
    lines = _log_lines(client, namespace, info.pod) if info.pod else []
    if state == "Failed":
        tail = " | ".join(line.rstrip() for line in lines[-5:]) or "no log"
        raise EndpointError(f"bench worker {info.index} (job {job}) failed: {tail}")
    try:
        return decode_raw(lines, api_key=config.api_key)
    except ValueError as exc:
        raise EndpointError(f"bench worker {info.index} (pod {info.pod}): {exc}") from None
