"""One reading of a pod's container states: image pull failure, container config error,
crash loop, OOM kill, unschedulable — the kubelet's and scheduler's reasons named once.

Works on the API's JSON shape (``pod.to_dict()`` for a lightkube object), so the live
wait (:mod:`nimble_oke.kube.wait`), the cache warm-up's stuck-pod check
(:mod:`nimble_oke.services.warmup`) and ``nimble troubleshoot``
(:mod:`nimble_oke.kube.diagnose`) read pods the same way. Pure: no API calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The kubelet's waiting reasons when the image cannot be pulled (kubelet images/types.go):
# waiting longer does not help until the registry, the key or the name is fixed.
IMAGE_PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
# The container cannot be created from its spec (e.g. a Secret or ConfigMap it names is
# missing): as stuck as a pull failure.
CONFIG_FAILURES = frozenset({"CreateContainerConfigError"})
CRASH_LOOP = "CrashLoopBackOff"
OOM_KILLED = "OOMKilled"
# The scheduler's event when no node fits the pod (its message says why).
UNSCHEDULABLE_EVENT = "FailedScheduling"


@dataclass(frozen=True)
class ContainerView:
    """One container's state, as the kubelet reports it."""

    name: str
    waiting_reason: str = ""
    waiting_message: str = ""
    restarts: int = 0
    terminated_reason: str = ""  # the current state, if terminated
    last_exit_reason: str = ""  # lastState.terminated: why the previous run ended
    last_exit_code: int | None = None

    @property
    def image_pull_failed(self) -> bool:
        return self.waiting_reason in IMAGE_PULL_FAILURES

    @property
    def config_failed(self) -> bool:
        return self.waiting_reason in CONFIG_FAILURES

    @property
    def crash_looping(self) -> bool:
        return self.waiting_reason == CRASH_LOOP

    @property
    def oom_killed(self) -> bool:
        """The current or the previous run ended OOMKilled (host memory limit)."""
        return OOM_KILLED in (self.terminated_reason, self.last_exit_reason)

    @property
    def stuck(self) -> str | None:
        """Why waiting will not help (a pull failure or a config error), as
        ``"Reason: message"``; None otherwise."""
        if not (self.image_pull_failed or self.config_failed):
            return None
        return f"{self.waiting_reason}: {self.waiting_message}".strip(": ")

    @property
    def last_exit(self) -> str:
        """`` (last exit: Reason, code N)`` when a previous run ended, else ``""``."""
        if not self.last_exit_reason and self.last_exit_code is None:
            return ""
        return f" (last exit: {self.last_exit_reason or None}, code {self.last_exit_code})"


def container_view(status: Mapping[str, Any]) -> ContainerView:
    """A ``containerStatuses[]`` entry as a :class:`ContainerView`."""
    waiting = (status.get("state") or {}).get("waiting") or {}
    terminated = (status.get("state") or {}).get("terminated") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    return ContainerView(
        name=str(status.get("name", "")),
        waiting_reason=str(waiting.get("reason") or ""),
        waiting_message=str(waiting.get("message") or ""),
        restarts=int(status.get("restartCount") or 0),
        terminated_reason=str(terminated.get("reason") or ""),
        last_exit_reason=str(last.get("reason") or ""),
        last_exit_code=last.get("exitCode") if last else None,
    )


def containers(pod: Mapping[str, Any], *, init: bool = True) -> list[ContainerView]:
    """The pod's containers (init containers first, as they run), by their status."""
    status = pod.get("status") or {}
    entries = [*(status.get("initContainerStatuses") or [])] if init else []
    entries += status.get("containerStatuses") or []
    return [container_view(s) for s in entries]


def _condition(pod: Mapping[str, Any], kind: str) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    return _condition(pod, "Ready") == "True"


def is_scheduled(pod: Mapping[str, Any]) -> bool:
    """False while the pod waits for a node (no PodScheduled=True condition yet)."""
    return _condition(pod, "PodScheduled") == "True"


def stuck_reason(pod: Mapping[str, Any], *, init: bool = True) -> str | None:
    """The first container that waiting will not help (see :attr:`ContainerView.stuck`)."""
    return next((c.stuck for c in containers(pod, init=init) if c.stuck), None)
