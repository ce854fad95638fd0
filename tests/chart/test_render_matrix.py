"""Render every combination of the chart's main switches and check each manifest against
the Kubernetes 1.35 schemas (strict) plus the invariants every configuration must keep."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from nimble_oke.kube.render import apply_rank
from nimble_oke.ngc_keys import NGC_KEY_PREFIX

from .checks import (
    NAMESPACE,
    SESSION,
    assert_restricted_pod,
    nim_container,
    pod_spec,
    validate_manifest,
)
from .conftest import Render

CACHE: dict[str, dict[str, Any]] = {
    "pvc": {"cache": {"mode": "pvc"}},
    "object-storage": {
        "cache": {
            "mode": "object-storage",
            "objectStorage": {
                "namespace": "tenancyns",
                "bucket": "models",
                "prefix": "llama/",
                "parSecret": {"name": "model-par"},
            },
        }
    },
    "ngc": {"cache": {"mode": "ngc"}},
}
SECCOMP: dict[str, dict[str, Any]] = {
    "RuntimeDefault": {"security": {"seccomp": {"type": "RuntimeDefault"}}},
    "Localhost": {"security": {"seccomp": {"type": "Localhost", "installer": {"enabled": True}}}},
}
AUTOSCALING: dict[str, dict[str, Any]] = {
    "off": {},
    "hpa": {"workload": "StatefulSet", "autoscaling": {"enabled": True, "engine": "hpa"}},
    "keda": {"workload": "StatefulSet", "autoscaling": {"enabled": True, "engine": "keda"}},
}
MONITORING: dict[str, dict[str, Any]] = {
    "off": {},
    "on": {
        "monitoring": {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "otel": {"enabled": True},
        }
    },
}
SERVICE: dict[str, dict[str, Any]] = {
    "ClusterIP": {"service": {"type": "ClusterIP"}},
    "LoadBalancer": {"service": {"type": "LoadBalancer"}},
}
NETWORK_POLICY: dict[str, dict[str, Any]] = {
    "np-off": {},
    "np-on": {
        "networkPolicy": {
            "enabled": True,
            "ingress": {"namespaces": ["monitoring"], "cidrs": ["10.0.2.0/24"]},
            "egress": {"httpsCidrs": ["0.0.0.0/0"]},
        }
    },
}
AXES: tuple[dict[str, dict[str, Any]], ...] = (
    CACHE,
    SECCOMP,
    AUTOSCALING,
    MONITORING,
    SERVICE,
    NETWORK_POLICY,
)
COMBINATIONS = list(itertools.product(*(list(axis) for axis in AXES)))


def merge(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


@pytest.mark.parametrize("combo", COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def test_every_configuration_renders_valid_restricted_manifests(
    render: Render, combo: tuple[str, ...]
) -> None:
    cache, seccomp, autoscaling, monitoring, service, network_policy = combo
    values = merge(*(axis[name] for axis, name in zip(AXES, combo, strict=True)))
    manifests = render(values, include_tests=True)

    for manifest in manifests:
        validate_manifest(manifest)
        labels = manifest["metadata"]["labels"]
        assert labels["nimble-oke/session"] == SESSION, manifest["kind"]
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if manifest["kind"] not in ("StorageClass", "Namespace") and not manifest["metadata"][
            "name"
        ].endswith("-seccomp"):
            assert manifest["metadata"]["namespace"] == NAMESPACE

    text = json.dumps(manifests)
    assert NGC_KEY_PREFIX not in text
    assert "nvidia.com/gpu.present" not in text

    kinds = [m["kind"] for m in manifests]
    ranks = [apply_rank(m) for m in manifests]
    assert ranks == sorted(ranks)
    assert ("HorizontalPodAutoscaler" in kinds) == (autoscaling == "hpa")
    assert ("ScaledObject" in kinds) == (autoscaling == "keda")
    assert ("ServiceMonitor" in kinds) == (monitoring == "on")
    assert ("PrometheusRule" in kinds) == (monitoring == "on")
    assert ("NetworkPolicy" in kinds) == (network_policy == "np-on")
    assert ("DaemonSet" in kinds) == (seccomp == "Localhost")
    assert kinds.count("Pod") == 3  # the three Helm tests

    spec = pod_spec(manifests)
    assert_restricted_pod(spec)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"]["type"] == seccomp
    assert spec["nodeSelector"] == {"nvidia.com/gpu": "true"}
    init_names = [c["name"] for c in spec.get("initContainers", [])]
    assert (
        init_names
        == {"pvc": [], "object-storage": ["hydrate-cache"], "ngc": ["download-to-cache"]}[cache]
    )
    env = {e["name"] for e in nim_container(manifests)["env"]}
    assert ("NIM_ENABLE_OTEL" in env) == (monitoring == "on")
    for test_pod in (m for m in manifests if m["kind"] == "Pod"):
        assert_restricted_pod(test_pod["spec"])
    service_types = {m["spec"].get("type") for m in manifests if m["kind"] == "Service"}
    assert service in service_types


EDGE_CASES: dict[str, dict[str, Any]] = {
    "statefulset-without-shm": {"workload": "StatefulSet", "shm": {"enabled": False}},
    "cpu-only": {"resources": {"gpu": 0}},
    "preemptible-toleration": {
        "scheduling": {
            "extraTolerations": [
                {
                    "key": "oci.oraclecloud.com/oke-is-preemptible",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
            "priorityClassName": "inference",
        }
    },
    "no-service-account-no-tests": {
        "serviceAccount": {"create": False, "name": "shared"},
        "fullnameOverride": "llm",
        "tests": {"enabled": False},
        "podAnnotations": {"team": "ml"},
        "podLabels": {"tier": "gpu"},
    },
    "pdb-percent": {"podDisruptionBudget": {"enabled": True, "minAvailable": "50%"}},
    "workload-identity-with-policy": {
        "cache": {
            "mode": "object-storage",
            "objectStorage": {"namespace": "n", "bucket": "b", "auth": "workload-identity"},
        },
        "networkPolicy": {"enabled": True, "egress": {"workloadIdentityCidrs": ["10.0.0.0/29"]}},
    },
    "everything-with-namespace": {
        "namespace": {"create": True},
        "cache": {"storageClass": {"create": True}, "keep": True},
        "workload": "StatefulSet",
        "autoscaling": {"enabled": True},
        "podDisruptionBudget": {"enabled": True},
    },
}


@pytest.mark.parametrize("values", list(EDGE_CASES.values()), ids=list(EDGE_CASES))
def test_edge_configurations_render_valid_manifests(render: Render, values: dict[str, Any]) -> None:
    manifests = render(values, include_tests=True)
    for manifest in manifests:
        validate_manifest(manifest)
        assert manifest["metadata"]["labels"]["nimble-oke/session"] == SESSION
    spec = pod_spec(manifests)
    assert_restricted_pod(spec)
    assert all(value is not None for value in spec.values()), spec
