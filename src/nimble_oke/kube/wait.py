"""Wait for NIM to become ready, showing live phases instead of a silent wait.

Phases, in order: scheduling → volume attach → image pull → model hydrate (object-storage
init container) → model download (% from NIM's log) → model load → ready. The kubelet
attaches and mounts a pod's volumes before it pulls its images, so a scheduled pod whose
containers have not started is in "volume attach" until a Pulling event names it (a node
that already holds the image never pulls). Each phase's real duration is reported through ``on_phase`` so the caller can record the
cold-start ledger. A failure that will not heal by waiting (unschedulable, image pull auth,
crash loop, OOM) stops the wait at once with the cause.

Polling can step over a short phase (a small model downloads between two polls). Once the
container runs, NIM's own log is the record: when a poll finds the pod past a download or
load it never saw, the phases are rebuilt from the log lines' timestamps
(:func:`backfill`), so the ledger and ``downloaded`` do not depend on the poll interval.
"""

from __future__ import annotations

import calendar
import itertools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nimble_oke.errors import KubeError
from nimble_oke.kube.podstate import UNSCHEDULABLE_EVENT, containers, is_ready, is_scheduled
from nimble_oke.nim_logformat import (
    DOWNLOAD_COMPLETE,
    DOWNLOAD_PROGRESS_RE,
    DOWNLOAD_START_RE,
    download_percent,
)

PROGRESS_RE = DOWNLOAD_PROGRESS_RE  # the old name (nimble_oke.nim_logformat)
LOADING_RE = re.compile(r"Loading safetensors checkpoint shards|Loading model weights|loading")
PHASES = (
    "scheduling",
    "volume attach",
    "image pull",
    "model hydrate",  # the object-storage init container (nimble models hydrate)
    "model download",
    "model load",
    "ready",
)
HYDRATE_CONTAINER = "hydrate-cache"  # the chart's object-storage init container
# NIM's log line prefix: "INFO 2026-11-27 13:00:05.123 ngc_download.py:88] ..." (UTC)
STAMP_RE = re.compile(r"^[A-Z]+ (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))? ")
# where each container phase begins, by the first log line that says so
_LOG_MARKS = (
    ("model download", DOWNLOAD_START_RE),
    (
        "model load",
        re.compile(rf"Loading model weights|Loading safetensors|{DOWNLOAD_COMPLETE}"),
    ),
    ("ready", re.compile(r"Application startup complete")),
)
_FULL_LOG_LINES = 5000


@dataclass
class PodView:
    name: str
    phase: str  # one of PHASES
    detail: str = ""
    fatal: str | None = None
    restarts: int = 0


@dataclass
class WaitResult:
    pod: str
    # (name, seconds on wait_ready's clock: the store's, simulated on the sim target)
    phases: list[tuple[str, float]] = field(default_factory=list)
    downloaded: bool = False


def _events_for(client: Any, namespace: str, pod: str) -> list[Any]:
    from lightkube.resources.core_v1 import Event

    try:
        return list(client.list(Event, namespace=namespace, fields={"involvedObject.name": pod}))
    except Exception:  # noqa: BLE001 - events are advisory; a failure to read them is not fatal
        return []


def classify(client: Any, namespace: str, pod: Any) -> PodView:
    """Map a pod's status, events and log to a phase (and a fatal cause, if any)."""
    name = pod.metadata.name
    view = pod.to_dict()
    running = containers(view, init=False)
    restarts = sum(c.restarts for c in running)
    if is_ready(view):
        return PodView(name, "ready", restarts=restarts)
    if not is_scheduled(view):
        reason = ""
        for event in _events_for(client, namespace, name):
            if event.reason == UNSCHEDULABLE_EVENT:
                reason = event.message or ""
        return PodView(name, "scheduling", reason)
    for cs in containers(view):
        if cs.image_pull_failed:
            return PodView(name, "image pull", fatal=f"{cs.waiting_reason}: {cs.waiting_message}")
        if cs.crash_looping:
            fatal = f"CrashLoopBackOff{cs.last_exit}"
            return PodView(name, "model load", fatal=fatal, restarts=restarts)
        if cs.last_exit_reason == "OOMKilled":
            return PodView(
                name,
                "model load",
                fatal="OOMKilled: the memory limit is below what the model needs",
                restarts=restarts,
            )
    status = pod.status
    statuses = list((status.containerStatuses or []) if status else [])
    init_statuses = list((status.initContainerStatuses or []) if status else [])
    started = any(cs.state and cs.state.running for cs in statuses)
    for cs in init_statuses:
        if not started and cs.state and cs.state.running:
            # an init container fills the cache before NIM starts (ngc mode: NIM's own
            # download-to-cache; object-storage mode: nimble's hydrate)
            phase = "model hydrate" if cs.name == HYDRATE_CONTAINER else "model download"
            return PodView(name, phase, f"init container {cs.name}", restarts=restarts)
    if not started:
        pulling = any(e.reason == "Pulling" for e in _events_for(client, namespace, name))
        if pulling:
            return PodView(name, "image pull", "pulling image", restarts=restarts)
        return PodView(name, "volume attach", "attaching volumes", restarts=restarts)
    phase, detail = container_phase(_log_tail(client, namespace, name))
    return PodView(name, phase, detail, restarts=restarts)


def container_phase(lines: Sequence[str]) -> tuple[str, str]:
    """(phase, detail) of a running NIM container by the tail of its log."""
    percent = None
    loading = False
    started_download = False
    for line in lines:
        found = download_percent(line)
        if found is not None:
            percent = found
        if DOWNLOAD_START_RE.search(line):
            started_download = True
        if "Loading" in line or DOWNLOAD_COMPLETE in line:
            loading = True
    # the download begins at its first line, before the first progress line
    downloading = (percent is not None and percent < 100) or (started_download and percent is None)
    if downloading and not loading:
        return "model download", f"{percent or 0}%"
    return "model load", "loading weights" if loading else "starting"


def log_time(line: str) -> float | None:
    """The Unix time a NIM log line was written, or None for a line without the prefix."""
    match = STAMP_RE.match(line)
    if not match:
        return None
    whole = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
    fraction = match.group(2) or "0"
    return float(whole) + int(fraction) / 10.0 ** len(fraction)


def log_marks(lines: Sequence[str]) -> tuple[dict[str, float], float | None]:
    """When each container phase began by the log, and the time of the last stamped line."""
    marks: dict[str, float] = {}
    last = None
    for line in lines:
        stamp = log_time(line)
        if stamp is None:
            continue
        last = stamp
        for phase, pattern in _LOG_MARKS:
            if phase not in marks and pattern.search(line):
                marks[phase] = stamp
    return marks, last


def backfill(
    previous: str, new: str, elapsed: float, lines: Sequence[str]
) -> tuple[float, list[tuple[str, float]], float]:
    """Split ``elapsed`` seconds between two polls that saw ``previous`` then ``new``.

    Returns (seconds of ``previous``, the container phases the polls stepped over with
    their seconds by the log, seconds already spent in ``new``). Only phases the log
    marks are inserted: a warm cache never logs a download, so none is invented."""
    marks, last = log_marks(lines)
    found = [p for p in stepped_over(previous, new) if p in marks]
    if not found or last is None:
        return elapsed, [], 0.0
    bounds = [*found, new]
    if new != "ready" and new not in marks:
        # the log does not show the stepped-over phase over (the poll and the log
        # disagree): book nothing rather than a phase that may still be running
        return elapsed, [], 0.0
    spans: list[tuple[str, float]] = []
    for phase, following in itertools.pairwise(bounds):
        end = marks.get(following, last)
        spans.append((phase, max(0.0, end - marks[phase])))
    already = max(0.0, last - marks[new]) if new in marks else 0.0
    logged = sum(s for _p, s in spans) + already
    if logged > elapsed > 0:  # the log's clock and ours differ: keep the log's proportions
        spans = [(p, s * elapsed / logged) for p, s in spans]
        already *= elapsed / logged
        logged = elapsed
    return max(0.0, elapsed - logged), spans, already


def stepped_over(previous: str, new: str) -> list[str]:
    """The container phases (download, load) between two phases the polls saw."""
    between = PHASES[PHASES.index(previous) + 1 : PHASES.index(new)]
    return [p for p in between if p in ("model download", "model load")]


def _log_tail(client: Any, namespace: str, pod: str, lines: int = 40) -> list[str]:
    try:
        return [
            line.rstrip("\n") for line in client.log(pod, namespace=namespace, tail_lines=lines)
        ]
    except Exception:  # noqa: BLE001 - the log may not exist yet while the container starts
        return []


def _backfill_first_poll(client: Any, namespace: str, view: PodView, result: WaitResult) -> None:
    """The first poll may already find the pod past its download or load (a loaded machine,
    a fast simulated start): book those phases from NIM's log as if the poll before had seen
    the pod scheduling, so the ledger does not lose them (with the log's own durations)."""
    if not stepped_over("scheduling", view.phase):
        return
    lines = _log_tail(client, namespace, view.name, _FULL_LOG_LINES)
    _spent, rebuilt, _already = backfill("scheduling", view.phase, 0.0, lines)
    result.phases.extend(rebuilt)
    if any(p == "model download" for p, _s in rebuilt):
        result.downloaded = True


def wait_ready(
    client: Any,
    namespace: str,
    selector: dict[str, str],
    *,
    timeout_s: float,
    poll_s: float = 0.2,
    on_phase: Callable[[str, str], None] = lambda _p, _d: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitResult:
    """Poll until one pod matching ``selector`` is Ready. Raises KubeError with the cause.

    Phase durations are measured on ``clock`` (pass the cloud's clock — simulated time on
    the sim target — so the cold-start ledger is in the time that is billed). ``sleep``
    waits between polls: pass the target's (``Target.sleep``: on the simulator a wait on
    its event clock, which then stops exactly at the next poll instead of pausing to let
    a real-time poll see the stack)."""
    from lightkube.resources.core_v1 import Pod

    deadline = time.monotonic() + timeout_s
    current: str | None = None
    started = clock()
    result = WaitResult(pod="")
    last_detail = ""
    while True:
        # skip pods being deleted (a previous rollout's terminating pod is not the answer)
        pods = [
            p
            for p in client.list(Pod, namespace=namespace, labels=selector)
            if not (p.metadata and p.metadata.deletionTimestamp)
        ]
        view = (
            classify(client, namespace, pods[0])
            if pods
            else PodView("", "scheduling", "no pod yet")
        )
        if view.phase != current:
            now = clock()
            if current is None:
                _backfill_first_poll(client, namespace, view, result)
            else:
                lines = (
                    _log_tail(client, namespace, view.name, _FULL_LOG_LINES)
                    if stepped_over(current, view.phase)
                    else []
                )
                spent, rebuilt, already = backfill(current, view.phase, now - started, lines)
                result.phases.append((current, spent))
                result.phases.extend(rebuilt)
                if any(p == "model download" for p, _s in rebuilt):
                    result.downloaded = True
                now -= already
            current, started = view.phase, now
            if view.phase == "model download":
                result.downloaded = True
            on_phase(view.phase, view.detail)
            last_detail = view.detail
        elif view.detail != last_detail:
            on_phase(view.phase, view.detail)
            last_detail = view.detail
        result.pod = view.name
        if view.fatal:
            raise KubeError(f"pod {view.name} cannot start: {view.fatal}")
        if view.phase == "ready":
            result.phases.append(("ready", 0.0))
            return result
        if time.monotonic() > deadline:
            hint = f" ({view.detail})" if view.detail else ""
            raise KubeError(f"NIM not ready after {timeout_s:.0f}s: stuck in {view.phase}{hint}")
        sleep(poll_s)
