"""Chart values from the config and the plan (no secrets: only Secret *names*).

The mapping is the one place where nimble's config meets the chart's values, so
corrections C1–C3 are enforced here: one cache size (``cache.size``), one node selection
rule (the chart's GPU label + optional shape pin) and the computed startup budget.
"""

from __future__ import annotations

import math
from typing import Any

from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.plan import Plan

NGC_API_SECRET = "ngc-api"  # noqa: S105 - Secret names, not values
NGC_PULL_SECRET = "ngc-secret"  # noqa: S105
CREATOR_TAG = {"nimble-oke-created-by": "nimble-oke"}
PREEMPTIBLE_TOLERATION = {
    "key": "oci.oraclecloud.com/oke-is-preemptible",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def container_resources(plan: Plan) -> dict[str, Any]:
    """Host memory: NIM stages weights through host memory, so request 1.5× the weights
    plus 8 GiB of runtime, limited to 90% of the node; CPU: 4 requested, up to 16."""
    weights_gb = plan.fit.weights_gb
    node_mem_gi = int(plan.shape.memory_gb * 0.9)
    request_gi = min(node_mem_gi, max(16, math.ceil(weights_gb * 1.5) + 8))
    limit_gi = min(node_mem_gi, request_gi * 2)
    cpu_limit = max(4, min(16, plan.shape.ocpus * 2 - 2))
    return {
        "gpu": plan.shape.gpu_count,
        "requests": {"cpu": "4", "memory": f"{request_gi}Gi"},
        "limits": {"cpu": str(cpu_limit), "memory": f"{limit_gi}Gi"},
    }


def chart_values(cfg: NimbleConfig, plan: Plan, *, session: str) -> dict[str, Any]:
    """The chart's values for one session, section by section (key order is the chart's
    values.yaml order: rendered files and exports stay byte-identical)."""
    cfg = plan.config or cfg  # the planner's cache volume size and VPUs (the StorageClass's)
    return {
        "session": session,
        "replicas": cfg.nim.replicas,
        "image": _image(cfg, plan),
        "imagePullSecrets": [NGC_PULL_SECRET],
        "ngc": {"apiKeySecret": {"name": NGC_API_SECRET, "key": "NGC_API_KEY"}},
        "nim": {
            "modelProfile": cfg.nim.model_profile or "",
            "servedModelName": cfg.nim.served_model_name or "",
        },
        "resources": container_resources(plan),
        "cache": _cache(cfg, session),
        "scheduling": _scheduling(cfg, plan),
        "probes": _probes(cfg, plan),
        "security": {"seccomp": {"type": cfg.security.seccomp}},
        "networkPolicy": _network_policy(cfg),
        "service": _service(cfg),
        "tags": dict(CREATOR_TAG),
        "autoscaling": _autoscaling(cfg),
        "monitoring": _monitoring(cfg),
        "podDisruptionBudget": {"enabled": cfg.nim.replicas > 1},
        "tests": {"enabled": False},
    }


def _image(cfg: NimbleConfig, plan: Plan) -> dict[str, Any]:
    return {
        "repository": cfg.nim.image_repository or plan.model.image,
        "tag": cfg.nim.image_tag or plan.model.tag,
    }


def _cache(cfg: NimbleConfig, session: str) -> dict[str, Any]:
    cache: dict[str, Any] = {
        "mode": cfg.cache.mode,
        "size": f"{cfg.cache.size_gb}Gi",
        "keep": cfg.cache.keep,
        "storageClass": {
            "name": f"{session}-cache",
            "create": True,
            "vpusPerGB": cfg.cache.vpus_per_gb,
            "reclaimPolicy": "Retain" if cfg.cache.keep else "Delete",
        },
    }
    if cfg.cache.mode == "object-storage":
        cache["objectStorage"] = _object_storage(cfg, session)
    return cache


def _object_storage(cfg: NimbleConfig, session: str) -> dict[str, Any]:
    """Where the hydrate job reads the model, through a PAR held in a per-session Secret."""
    return {
        "namespace": cfg.cache.namespace or "",
        "bucket": cfg.cache.bucket or "",
        # `nimble models push --model <repo name>` lays versions out under
        # <prefix>/<repo name>/<version>/ (repo name: org--model, one path segment)
        "prefix": f"{cfg.cache.prefix}/{cfg.nim.model.replace('/', '--')}",
        "version": cfg.cache.version or "",
        "auth": "par",
        "parSecret": {"name": f"{session}-model-par", "key": "PAR_URL"},
    }


def _scheduling(cfg: NimbleConfig, plan: Plan) -> dict[str, Any]:
    return {
        "shape": plan.shape.name if cfg.gpu_pool.pin_shape else "",
        # OKE taints preemptible nodes; a preemptible session must tolerate it.
        "extraTolerations": [PREEMPTIBLE_TOLERATION] if cfg.gpu_pool.preemptible else [],
    }


def _probes(cfg: NimbleConfig, plan: Plan) -> dict[str, Any]:
    startup = plan.startup
    return {
        "startup": {
            "periodSeconds": startup.period_s,
            "failureThreshold": startup.failure_threshold,
            "budgetSeconds": int(startup.budget_s),
            "computedBy": _startup_budget_origin(cfg, plan),
        },
        "readiness": {"periodSeconds": cfg.probes.readiness_period_s},
        "liveness": {"periodSeconds": cfg.probes.liveness_period_s},
    }


def _startup_budget_origin(cfg: NimbleConfig, plan: Plan) -> str:
    """What the startup budget was computed from, rendered as a comment for the reader."""
    if not plan.startup.computed:
        return "explicit (probes.mode: explicit)"
    return (
        f"nimble plan: {plan.model.name} {cfg.nim.precision}, cache {cfg.cache.mode} "
        f"{cfg.cache.size_gb} GB @ {cfg.cache.vpus_per_gb} VPU/GB"
    )


def _network_policy(cfg: NimbleConfig) -> dict[str, Any]:
    return {
        "enabled": cfg.security.network_policy,
        "ingress": {
            "namespaces": list(cfg.security.allowed_ingress_namespaces),
            "cidrs": list(cfg.security.allowed_ingress_cidrs),
        },
    }


def _service(cfg: NimbleConfig) -> dict[str, Any]:
    return {
        "type": cfg.service.type,
        "loadBalancer": {
            "shapeFlexMinMbps": cfg.service.lb_min_mbps,
            "shapeFlexMaxMbps": cfg.service.lb_max_mbps,
        },
    }


def _autoscaling(cfg: NimbleConfig) -> dict[str, Any]:
    return {
        "enabled": cfg.autoscaling.enabled,
        "engine": cfg.autoscaling.engine,
        "minReplicas": max(1, cfg.autoscaling.min_replicas),
        "maxReplicas": cfg.autoscaling.max_replicas,
        "hpa": {"metric": "cpu" if cfg.autoscaling.metric == "cpu" else "nim"},
    }


def _monitoring(cfg: NimbleConfig) -> dict[str, Any]:
    otel: dict[str, Any] = {"enabled": cfg.monitoring.otel}
    if cfg.monitoring.otel and cfg.monitoring.otel_endpoint:
        otel["endpoint"] = cfg.monitoring.otel_endpoint
    return {
        "serviceMonitor": {"enabled": cfg.monitoring.enabled},
        "prometheusRule": {"enabled": cfg.monitoring.enabled},
        "otel": otel,
    }
