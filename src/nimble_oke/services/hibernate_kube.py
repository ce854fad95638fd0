"""The Kubernetes side of hibernate: the NIM workload scaled to zero and back, its load
balancer Service deleted and recreated, the GPU nodes cordoned, and a node's Ready wait.

Small functions over a lightkube client (imported lazily: heavy imports stay out of CLI
start-up). The chart renders the NIM workload as a Deployment or a StatefulSet labelled
``app.kubernetes.io/instance=<release>``; its LoadBalancer Service carries the same label.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nimble_oke.errors import KubeError
from nimble_oke.polling import poll_until
from nimble_oke.services.deployment import release_name
from nimble_oke.state.store import StateStore


@dataclass(frozen=True)
class Workload:
    kind: str  # Deployment | StatefulSet
    name: str
    replicas: int


def _kinds() -> dict[str, Any]:
    from lightkube.resources.apps_v1 import Deployment, StatefulSet

    return {"Deployment": Deployment, "StatefulSet": StatefulSet}


def _labels(session: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": release_name(session)}


def nim_workloads(client: Any, namespace: str, session: str) -> list[Workload]:
    """The session's NIM workloads with their current replicas."""
    found = []
    for kind, res in _kinds().items():
        for obj in client.list(res, namespace=namespace, labels=_labels(session)):
            replicas = obj.spec.replicas if obj.spec.replicas is not None else 1
            found.append(Workload(kind, obj.metadata.name, int(replicas)))
    return found


def scale_workload(client: Any, namespace: str, workload: Workload, replicas: int) -> None:
    from lightkube.types import PatchType

    client.patch(
        _kinds()[workload.kind],
        workload.name,
        {"spec": {"replicas": replicas}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


def wait_pods_gone(client: Any, namespace: str, session: str, *, timeout_s: float) -> None:
    """Until no NIM pod is left (a graceful stop: NIM flushes and exits)."""
    from lightkube.resources.core_v1 import Pod

    def gone() -> bool | None:
        left = list(client.list(Pod, namespace=namespace, labels=_labels(session)))
        return True if not left else None

    poll_until(
        gone,
        timeout_s=timeout_s,
        interval_s=0.1,
        on_timeout=lambda: KubeError(f"NIM pods still running after {timeout_s:.0f} s"),
    )


def load_balancer_services(client: Any, namespace: str, session: str) -> list[str]:
    from lightkube.resources.core_v1 import Service

    return [
        s.metadata.name
        for s in client.list(Service, namespace=namespace, labels=_labels(session))
        if s.spec is not None and s.spec.type == "LoadBalancer"
    ]


def delete_services(client: Any, namespace: str, names: list[str]) -> None:
    """Delete the Services (the cloud controller deletes their load balancers)."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Service

    for name in names:
        try:
            client.delete(Service, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise KubeError(f"deleting Service {name}: {exc.status.message}") from None


def apply_last_revision(
    client: Any, store: StateStore, session: str, namespace: str, *, only: str | None = None
) -> None:
    """Apply the session's last deployed chart values again (NIM at its replicas, the LB
    Service back). ``only``: just the manifests of that kind (e.g. "Service")."""
    from nimble_oke.kube.deploy import apply_manifests
    from nimble_oke.kube.render import render_chart

    revisions = store.revisions(session)
    if not revisions:
        raise KubeError(f"session {session} has no deployed revision to wake")
    values = json.loads(revisions[-1]["values_json"])
    manifests = render_chart(values, release=release_name(session), namespace=namespace)
    if only is not None:
        manifests = [m for m in manifests if m.get("kind") == only]
    apply_manifests(client, manifests, session=session, namespace=namespace, prune=only is None)


def cordon(client: Any, node: str, *, on: bool = True) -> None:
    """Mark the node (un)schedulable, as ``kubectl cordon`` / ``uncordon``."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Node
    from lightkube.types import PatchType

    try:
        client.patch(
            Node, node, {"spec": {"unschedulable": on or None}}, patch_type=PatchType.MERGE
        )
    except ApiError as exc:
        if exc.status.code != 404:
            raise KubeError(f"{'cordoning' if on else 'uncordoning'} node {node}: {exc}") from None


def node_ready(client: Any, node: str) -> bool:
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Node

    try:
        obj = client.get(Node, node)
    except ApiError:
        return False
    conditions = (obj.status.conditions or []) if obj.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def wait_node_ready(
    client: Any, node: str, *, timeout_s: float, sleep: Callable[[float], None]
) -> None:
    poll_until(
        lambda: True if node_ready(client, node) else None,
        timeout_s=timeout_s,
        interval_s=0.1,
        sleep=sleep,
        on_timeout=lambda: KubeError(f"node {node} not Ready {timeout_s:.0f} s after it started"),
    )
