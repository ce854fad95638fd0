"""The session's deployment in its cluster: release name, model PAR Secret, endpoint,
deletion, and the cloud resources Kubernetes creates for it.

Shared by ``up``/``down`` (services/lifecycle.py) and the cache warm-up
(services/warmup.py), which both import from here: neither imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.errors import KubeError
from nimble_oke.polling import poll_until, wait_quietly
from nimble_oke.state.store import StateStore

if TYPE_CHECKING:
    from nimble_oke.services.targets import Target

Say = Callable[[str], None]
LOCAL_PORTS_ANNOTATION = "sim.nimble-oke.io/local-ports"  # set by the Kubernetes simulator
MODEL_PAR_TTL_S = 6 * 3600


def release_name(session: str) -> str:
    """The Helm release of a session's chart (its objects are named after it)."""
    return session


def ensure_model_par(
    client: Any, cfg: NimbleConfig, target: Target, session: str, values: dict[str, Any]
) -> None:
    """A short-lived read PAR for the model's prefix, created per deployment and handed to
    the hydrate init container through a Secret (never logged, rendered or stored)."""
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Secret

    from nimble_oke.kube.deploy import FIELD_MANAGER, SESSION_LABEL
    from nimble_oke.services.models import create_par
    from nimble_oke.services.targets import target_storage

    source = values["cache"]["objectStorage"]
    with target_storage(target) as storage:
        url = create_par(
            storage, str(source["bucket"]), str(source["prefix"]), MODEL_PAR_TTL_S, now=target.now
        )
    secret = source["parSecret"]
    client.apply(
        Secret(
            metadata=ObjectMeta(
                name=secret["name"], namespace=cfg.nim.namespace, labels={SESSION_LABEL: session}
            ),
            type="Opaque",
            stringData={secret["key"]: url},
        ),
        field_manager=FIELD_MANAGER,
        force=True,
    )


def record_kube_created(
    target: Target, store: StateStore, cfg: NimbleConfig, session: str, *, run: str | None = None
) -> None:
    """Record the load balancer and block volumes Kubernetes created for the session (found
    by the session tag the chart puts on them), so their cost accrues like the rest."""
    from nimble_oke.domain.cost import load_balancer_meters, volume_meters
    from nimble_oke.services.provision import TAG_SESSION

    catalog = load_catalog()
    for found in target.provider.find_tagged({TAG_SESSION: session}):
        if found.kind == "volume":
            meters = volume_meters(
                catalog,
                cfg.cache.size_gb,
                cfg.cache.vpus_per_gb,
                item=f"Model cache volume ({cfg.cache.size_gb} GB)",
            )
        elif found.kind == "load_balancer":
            meters = load_balancer_meters(cfg.service.lb_min_mbps)
        else:
            continue
        store.record_created(
            session,
            found.kind,
            found.resource_id,
            name=found.name,
            meters=meters,
            tags=dict(found.tags),
            created_at=found.created_at,  # billed since the cloud made it
            run=run,
        )


def _service_address(svc: Any, cfg: NimbleConfig) -> str | None:
    """The address a client reaches the NIM Service at, or None while it has none."""
    annotations = svc.metadata.annotations or {}
    port = svc.spec.ports[0].port
    if LOCAL_PORTS_ANNOTATION in annotations:
        local = json.loads(annotations[LOCAL_PORTS_ANNOTATION]).get(str(port))
        return f"http://127.0.0.1:{local}" if local else None
    if cfg.service.type != "LoadBalancer":
        return f"http://{svc.spec.clusterIP}:{port}"
    lb = svc.status.loadBalancer if svc.status else None
    ingress = (lb.ingress or []) if lb else []
    return f"http://{ingress[0].ip}:{port}" if ingress and ingress[0].ip else None


def discover_endpoint(client: Any, cfg: NimbleConfig, session: str, *, timeout_s: float) -> str:
    """The NIM endpoint: the LB's address (on the sim, the local port it forwards from)."""
    from lightkube.resources.core_v1 import Service

    name = f"{release_name(session)}-nimble-nim"
    return poll_until(
        lambda: _service_address(client.get(Service, name, namespace=cfg.nim.namespace), cfg),
        timeout_s=timeout_s,
        interval_s=0.1,
        on_timeout=lambda: KubeError(
            f"service {name} has no external address after {timeout_s:.0f}s (LB pending)"
        ),
    )


def delete_deployment(client: Any, cfg: NimbleConfig, say: Say, target: Target) -> bool:
    """Delete the namespace and wait until it is gone (its load balancer and volumes are
    released with it). Returns whether there was a namespace to delete."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Namespace

    from nimble_oke.kube.deploy import delete_namespace

    if not delete_namespace(client, cfg.nim.namespace):
        return False
    say(f"deleted namespace {cfg.nim.namespace} (deployment, service, cache claim)")

    def gone() -> bool | None:
        try:
            client.get(Namespace, cfg.nim.namespace)
        except ApiError:
            return True
        return None

    wait_quietly(gone, timeout_s=target.real_seconds(600) + 30, interval_s=0.1)
    return True
