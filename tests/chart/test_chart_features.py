"""Feature-by-feature checks of the rendered chart (corrections C1–C3, cache modes,
security, service, autoscaling, monitoring, production values)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from nimble_oke.kube.render import (
    ChartError,
    HelmChartRenderer,
    chart_path,
    default_values,
    render_chart,
    startup_probe_values,
    to_yaml,
)

from .checks import (
    NAMESPACE,
    SESSION,
    by_kind,
    env_of,
    nim_container,
    one,
    pod_spec,
    validate_manifest,
    workload,
)
from .conftest import Render

REPO = Path(__file__).resolve().parents[2]
OBJECT_STORAGE: dict[str, Any] = {
    "mode": "object-storage",
    "objectStorage": {
        "namespace": "tenancyns",
        "bucket": "models",
        "prefix": "meta/llama-3.1-8b-instruct/",
        "version": "1.8.0",
        "region": "us-chicago-1",
        "parSecret": {"name": "model-par", "key": "PAR_URL"},
    },
}


def test_the_schema_validation_used_here_does_reject_bad_manifests(render: Render) -> None:
    deployment = copy.deepcopy(workload(render()))
    deployment["spec"]["template"]["spec"]["containers"][0]["startupProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_manifest(deployment)
    monitor = render({"monitoring": {"serviceMonitor": {"enabled": True}}})
    service_monitor = copy.deepcopy(one(monitor, "ServiceMonitor"))
    service_monitor["spec"]["endpoints"][0]["metricsPath"] = "/metrics"
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(service_monitor)


def test_defaults_render_a_single_gpu_pod_with_a_cache_claim(render: Render) -> None:
    manifests = render()
    assert [m["kind"] for m in manifests] == [
        "ServiceAccount",
        "PersistentVolumeClaim",
        "Service",
        "Deployment",
    ]
    deployment = workload(manifests)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    nim = nim_container(manifests)
    assert nim["image"] == "nvcr.io/nim/meta/llama-3.1-8b-instruct:2.0.12"  # NIM 2.x default
    assert nim["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert nim["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert nim["ports"][0]["containerPort"] == 8000
    env = env_of(nim)
    assert env["NGC_API_KEY"] == {"secretKeyRef": {"name": "ngc-api", "key": "NGC_API_KEY"}}
    assert env["NIM_CACHE_PATH"] == "/opt/nim/.cache"
    assert "NIM_MODEL_PROFILE" not in env
    spec = pod_spec(manifests)
    assert spec["imagePullSecrets"] == [{"name": "ngc-secret"}]
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert one(manifests, "ServiceAccount")["automountServiceAccountToken"] is False


def test_nim_settings_reach_the_environment(render: Render) -> None:
    nim = nim_container(
        render(
            {
                "nim": {
                    "modelProfile": "vllm-bf16-tp1",
                    "servedModelName": "llama-8b",
                    "extraEnv": [
                        {"name": "NIM_LOG_LEVEL", "value": "DEBUG"},
                        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    ],
                },
                "ngc": {"apiKeySecret": {"name": "my-ngc", "key": "token"}},
            }
        )
    )
    env = env_of(nim)
    assert env["NIM_MODEL_PROFILE"] == "vllm-bf16-tp1"
    assert env["NIM_SERVED_MODEL_NAME"] == "llama-8b"
    assert env["NIM_LOG_LEVEL"] == "DEBUG"
    assert env["X"] == {"secretKeyRef": {"name": "s", "key": "k"}}
    assert env["NGC_API_KEY"] == {"secretKeyRef": {"name": "my-ngc", "key": "token"}}


# --- C1: one size key ---------------------------------------------------------------


def _keys(value: Any, prefix: str = "") -> list[str]:
    if not isinstance(value, dict):
        return []
    out = []
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else key
        out += [path, *_keys(item, path)]
    return out


def test_c1_cache_size_is_the_only_size_key_and_drives_the_volume(render: Render) -> None:
    size_keys = [k for k in _keys(default_values()) if k.rsplit(".", 1)[-1].lower() == "size"]
    assert size_keys == ["cache.size"]
    claim = one(render({"cache": {"size": "321Gi"}}), "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "321Gi"
    assert claim["spec"]["storageClassName"] == "oci-bv"
    sts = workload(render({"workload": "StatefulSet", "replicas": 2, "cache": {"size": "99Gi"}}))
    template = sts["spec"]["volumeClaimTemplates"][0]
    assert template["spec"]["resources"]["requests"]["storage"] == "99Gi"


def test_cache_keep_adds_the_helm_resource_policy(render: Render) -> None:
    assert "annotations" not in one(render(), "PersistentVolumeClaim")["metadata"]
    kept = one(render({"cache": {"keep": True}}), "PersistentVolumeClaim")
    assert kept["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    sts = workload(render({"workload": "StatefulSet", "cache": {"keep": True}}))
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_existing_claim_is_mounted_and_not_created(render: Render) -> None:
    manifests = render({"cache": {"existingClaim": "warm-cache"}})
    assert not by_kind(manifests, "PersistentVolumeClaim")
    volume = next(v for v in pod_spec(manifests)["volumes"] if v["name"] == "model-cache")
    assert volume["persistentVolumeClaim"]["claimName"] == "warm-cache"


def test_created_storage_class_is_a_tagged_oci_block_volume_class(render: Render) -> None:
    manifests = render(
        {
            "cache": {"storageClass": {"create": True, "vpusPerGB": 20}},
            "tags": {"team": "ml"},
        }
    )
    storage_class = one(manifests, "StorageClass")
    assert storage_class["provisioner"] == "blockvolume.csi.oraclecloud.com"
    assert storage_class["parameters"] == {"vpusPerGB": "20"}
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    tags = json.loads(
        storage_class["metadata"]["annotations"][
            "oci.oraclecloud.com/initial-freeform-tags-override"
        ]
    )
    assert tags == {"nimble-oke-session": SESSION, "team": "ml"}
    claim = one(manifests, "PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == storage_class["metadata"]["name"]
    assert [m["kind"] for m in manifests].index("StorageClass") < [
        m["kind"] for m in manifests
    ].index("PersistentVolumeClaim")


# --- cache modes ---------------------------------------------------------------------


def test_object_storage_mode_hydrates_with_a_par_from_a_secret(render: Render) -> None:
    manifests = render({"cache": OBJECT_STORAGE})
    spec = pod_spec(manifests)
    (init,) = spec["initContainers"]
    assert init["image"] == "ghcr.io/nimble-oke/nimble-tools:0.2.0"
    command = init["command"]
    assert command[:3] == ["nimble", "models", "hydrate"]
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert flags["--source"] == "oci://models@tenancyns/meta/llama-3.1-8b-instruct/"
    assert flags["--version"] == "1.8.0"
    assert flags["--dest"] == "/opt/nim/.cache"
    assert flags["--auth"] == "par"
    assert flags["--parallelism"] == "8"
    assert "--skip-if-manifest-matches" in command
    assert env_of(init) == {
        "NIMBLE_PAR_URL": {"secretKeyRef": {"name": "model-par", "key": "PAR_URL"}}
    }
    mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert mounts == {"model-cache": "/opt/nim/.cache"}


def test_workload_identity_token_is_mounted_only_in_the_hydrate_container(
    render: Render,
) -> None:
    source = copy.deepcopy(OBJECT_STORAGE)
    source["objectStorage"]["auth"] = "workload-identity"
    source["objectStorage"]["parSecret"] = {"name": ""}
    manifests = render({"cache": source})
    spec = pod_spec(manifests)
    (init,) = spec["initContainers"]
    assert env_of(init)["OCI_RESOURCE_PRINCIPAL_REGION"] == "us-chicago-1"
    assert "NIMBLE_PAR_URL" not in env_of(init)
    token_mount = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert token_mount in [m["mountPath"] for m in init["volumeMounts"]]
    assert token_mount not in [m["mountPath"] for m in nim_container(manifests)["volumeMounts"]]
    assert spec["automountServiceAccountToken"] is False
    token = next(v for v in spec["volumes"] if v["name"] == "workload-identity-token")
    assert token["projected"]["sources"][0]["serviceAccountToken"]["path"] == "token"


def test_ngc_mode_predownloads_with_nims_own_tool(render: Render) -> None:
    manifests = render({"cache": {"mode": "ngc"}, "nim": {"modelProfile": "abc123"}})
    (init,) = pod_spec(manifests)["initContainers"]
    assert init["image"] == nim_container(manifests)["image"]
    assert init["command"] == ["download-to-cache", "-p", "abc123"]  # 1.x and 2.x accept -p
    assert env_of(init)["NGC_API_KEY"] == {
        "secretKeyRef": {"name": "ngc-api", "key": "NGC_API_KEY"}
    }


# --- C2: one node rule ----------------------------------------------------------------


def test_c2_one_node_rule_with_the_gpu_toleration(render: Render) -> None:
    spec = pod_spec(render({"scheduling": {"shape": "VM.GPU.A10.2"}}))
    assert spec["nodeSelector"] == {
        "nvidia.com/gpu": "true",
        "node.kubernetes.io/instance-type": "VM.GPU.A10.2",
    }
    assert "affinity" not in spec
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]


def test_topology_spread_and_anti_affinity_for_multi_zone(render: Render) -> None:
    spec = pod_spec(
        render(
            {
                "workload": "StatefulSet",
                "replicas": 3,
                "scheduling": {
                    "topologySpread": {"enabled": True},
                    "podAntiAffinity": {"enabled": True, "type": "required"},
                },
            }
        )
    )
    keys = [c["topologyKey"] for c in spec["topologySpreadConstraints"]]
    assert keys == ["topology.kubernetes.io/zone", "oci.oraclecloud.com/fault-domain"]
    required = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["topologyKey"] == "kubernetes.io/hostname"


# --- C3: probes -------------------------------------------------------------------------


def test_c3_startup_budget_comes_from_values(render: Render) -> None:
    manifests = render(
        {
            "probes": {
                "startup": {
                    "periodSeconds": 15,
                    "failureThreshold": 64,
                    "budgetSeconds": 960,
                    "computedBy": "nimble plan",
                }
            }
        }
    )
    nim = nim_container(manifests)
    assert nim["startupProbe"]["httpGet"]["path"] == "/v1/health/ready"
    assert nim["startupProbe"]["periodSeconds"] == 15
    assert nim["startupProbe"]["failureThreshold"] == 64
    assert nim["readinessProbe"]["httpGet"]["path"] == "/v1/health/ready"
    assert nim["livenessProbe"]["httpGet"]["path"] == "/v1/health/live"
    annotations = workload(manifests)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["nimble-oke/startup-budget-seconds"] == "960"
    assert annotations["nimble-oke/startup-budget-computed-by"] == "nimble plan"


# --- security -------------------------------------------------------------------------


def test_localhost_seccomp_profile_and_its_installer(render: Render) -> None:
    manifests = render(
        {"security": {"seccomp": {"type": "Localhost", "installer": {"enabled": True}}}}
    )
    profile = pod_spec(manifests)["securityContext"]["seccompProfile"]
    assert profile == {"type": "Localhost", "localhostProfile": "profiles/nimble-nim.json"}
    daemonset = one(manifests, "DaemonSet")
    assert daemonset["metadata"]["namespace"] == "kube-system"
    ds_spec = daemonset["spec"]["template"]["spec"]
    assert ds_spec["nodeSelector"] == {"nvidia.com/gpu": "true"}
    host = next(v for v in ds_spec["volumes"] if "hostPath" in v)
    assert host["hostPath"]["path"] == "/var/lib/kubelet/seccomp"
    assert "profiles/nimble-nim.json" in ds_spec["initContainers"][0]["command"][-1]
    config_map = one(manifests, "ConfigMap")
    shipped = (REPO / "deploy" / "seccomp" / "nimble-nim.json").read_text()
    assert json.loads(config_map["data"]["nimble-nim.json"]) == json.loads(shipped)


def test_namespace_is_rendered_first_with_pod_security_labels(render: Render) -> None:
    manifests = render({"namespace": {"create": True}})
    namespace = manifests[0]
    assert namespace["kind"] == "Namespace"
    assert namespace["metadata"]["name"] == NAMESPACE
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_network_policy_default_deny_with_allowances(render: Render) -> None:
    policy = one(
        render(
            {
                "networkPolicy": {
                    "enabled": True,
                    "ingress": {"namespaces": ["ingress-nginx"], "cidrs": ["10.0.2.0/24"]},
                    "egress": {
                        "httpsCidrs": ["0.0.0.0/0"],
                        "workloadIdentityCidrs": ["10.0.0.0/29"],
                    },
                }
            }
        ),
        "NetworkPolicy",
    )["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": 8000, "protocol": "TCP"}]
    peers = ingress["from"]
    assert {"ipBlock": {"cidr": "10.0.2.0/24"}} in peers
    assert peers[1]["namespaceSelector"]["matchExpressions"][0]["values"] == ["ingress-nginx"]
    egress_ports = [[p["port"] for p in rule["ports"]] for rule in policy["egress"]]
    assert egress_ports == [[53, 53], [443], [12250]]


def test_network_policy_without_https_cidrs_allows_only_dns(render: Render) -> None:
    policy = one(render({"networkPolicy": {"enabled": True}}), "NetworkPolicy")["spec"]
    assert [[p["port"] for p in rule["ports"]] for rule in policy["egress"]] == [[53, 53]]


# --- service ---------------------------------------------------------------------------


def test_load_balancer_is_flexible_and_tagged(render: Render) -> None:
    service = one(
        render(
            {
                "service": {
                    "type": "LoadBalancer",
                    "loadBalancer": {
                        "shapeFlexMinMbps": 10,
                        "shapeFlexMaxMbps": 50,
                        "internal": True,
                        "sourceRanges": ["203.0.113.0/24"],
                    },
                },
                "tags": {"owner": "alice"},
            }
        ),
        "Service",
    )
    annotations = service["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-shape"] == "flexible"
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-shape-flex-min"] == "10"
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-shape-flex-max"] == "50"
    assert annotations["service.beta.kubernetes.io/oci-load-balancer-internal"] == "true"
    tags = json.loads(annotations["oci.oraclecloud.com/initial-freeform-tags-override"])
    assert tags == {"nimble-oke-session": SESSION, "owner": "alice"}
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]


def test_cluster_ip_service_has_no_load_balancer_annotations(render: Render) -> None:
    service = one(render(), "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert "annotations" not in service["metadata"]


# --- autoscaling ------------------------------------------------------------------------


def test_hpa_on_nim_metrics(render: Render) -> None:
    manifests = render(
        {"workload": "StatefulSet", "autoscaling": {"enabled": True, "maxReplicas": 4}}
    )
    hpa = one(manifests, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["kind"] == "StatefulSet"
    assert hpa["maxReplicas"] == 4
    names = [m["pods"]["metric"]["name"] for m in hpa["metrics"]]
    assert names == ["num_requests_waiting", "gpu_cache_usage_perc"]
    assert "replicas" not in workload(manifests)["spec"]


def test_hpa_on_cpu(render: Render) -> None:
    hpa = one(
        render(
            {
                "workload": "StatefulSet",
                "autoscaling": {"enabled": True, "hpa": {"metric": "cpu", "cpuUtilization": 70}},
            }
        ),
        "HorizontalPodAutoscaler",
    )["spec"]
    assert hpa["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]


def test_keda_scaled_object_queries_the_queue(render: Render) -> None:
    scaled = one(
        render({"workload": "StatefulSet", "autoscaling": {"enabled": True, "engine": "keda"}}),
        "ScaledObject",
    )["spec"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"].startswith("sum(num_requests_waiting{")
    assert f'namespace="{NAMESPACE}"' in trigger["metadata"]["query"]


# --- observability ---------------------------------------------------------------------


def test_service_monitor_scrapes_v1_metrics(render: Render) -> None:
    manifests = render(
        {"workload": "StatefulSet", "monitoring": {"serviceMonitor": {"enabled": True}}}
    )
    monitor = one(manifests, "ServiceMonitor")["spec"]
    assert [e["path"] for e in monitor["endpoints"]] == ["/v1/metrics"]
    # The selector picks the API Service only, not the StatefulSet's headless one.
    selected = [
        s
        for s in by_kind(manifests, "Service")
        if monitor["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert len(selected) == 1 and selected[0]["spec"].get("clusterIP") != "None"


def test_prometheus_rule_alerts(render: Render) -> None:
    rule = one(render({"monitoring": {"prometheusRule": {"enabled": True}}}), "PrometheusRule")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert set(alerts) == {
        "NimNotReady",
        "NimQueueGrowing",
        "NimKVCacheNearFull",
        "NimHighErrorRate",
    }
    assert "gpu_cache_usage_perc" in alerts["NimKVCacheNearFull"]["expr"]
    # Not-ready alert waits for the startup budget (1800 s) plus 5 minutes.
    assert alerts["NimNotReady"]["for"] == "35m"


def test_otel_environment(render: Render) -> None:
    env = env_of(nim_container(render({"monitoring": {"otel": {"enabled": True}}})))
    assert env["NIM_ENABLE_OTEL"] == "1"
    assert env["OTEL_SERVICE_NAME"] == "demo-nimble-nim"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.monitoring.svc:4317"
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_METRICS_EXPORTER"] == "otlp"


# --- production example, helpers ------------------------------------------------------


def test_production_values_render_an_ha_deployment(render: Render, chart_dir: Path) -> None:
    production = yaml.safe_load((chart_dir / "values-production.yaml").read_text())
    manifests = render(production)
    for manifest in manifests:
        validate_manifest(manifest)
    sts = workload(manifests)
    assert sts["kind"] == "StatefulSet"
    hpa = one(manifests, "HorizontalPodAutoscaler")["spec"]
    assert hpa["minReplicas"] >= 3
    spec = sts["spec"]["template"]["spec"]
    assert len(spec["topologySpreadConstraints"]) == 2
    assert "podAntiAffinity" in spec["affinity"]
    assert one(manifests, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    assert one(manifests, "NetworkPolicy")
    assert one(manifests, "ServiceMonitor")
    assert one(manifests, "PrometheusRule")
    assert spec["initContainers"][0]["name"] == "hydrate-cache"


def test_helm_test_pods_cover_models_completion_and_streaming(render: Render) -> None:
    pods = by_kind(render(include_tests=True), "Pod")
    assert sorted(p["metadata"]["name"] for p in pods) == [
        "demo-nimble-nim-test-completion",
        "demo-nimble-nim-test-models",
        "demo-nimble-nim-test-streaming",
    ]
    scripts = {
        p["metadata"]["name"].rsplit("-", 1)[-1]: p["spec"]["containers"][0]["args"][0]
        for p in pods
    }
    assert "/v1/models" in scripts["models"]
    assert "/v1/chat/completions" in scripts["completion"]
    assert '"stream":true' in scripts["streaming"] and "DONE" in scripts["streaming"]
    for pod in pods:
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["metadata"]["labels"]["nimble-oke/api-client"] == "true"
    assert not by_kind(render(), "Pod")  # hooks are not applied with the release


def test_chart_path_finds_the_repository_chart() -> None:
    assert chart_path() == REPO / "charts" / "nimble-nim"


def test_renderer_port_and_yaml_export(chart_dir: Path) -> None:
    manifests = HelmChartRenderer(chart_dir).render(
        {"session": SESSION}, release="demo", namespace=NAMESPACE
    )
    assert manifests == render_chart(
        {"session": SESSION}, release="demo", namespace=NAMESPACE, chart_dir=chart_dir
    )
    assert list(yaml.safe_load_all(to_yaml(manifests))) == manifests


def test_startup_probe_values_round_the_budget_up(render: Render) -> None:
    values = startup_probe_values(845, computed_by="nimble plan: 15 GB at 96 MB/s + load")
    assert values["probes"]["startup"]["failureThreshold"] == 85
    assert values["probes"]["startup"]["budgetSeconds"] == 850
    probe = nim_container(render(values))["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 845
    with pytest.raises(ChartError):
        startup_probe_values(0, computed_by="x")


@pytest.mark.parametrize("budget_s", [60, 845, 1800, 5400])
def test_progress_deadline_outlasts_the_startup_budget_and_the_image_pull(
    render: Render, budget_s: int
) -> None:
    """The Deployment controller marks a rollout ProgressDeadlineExceeded (and helm's
    --wait fails) after progressDeadlineSeconds: it must outlast the startup probe's window
    plus the image pull, and never fall below Kubernetes' default of 600 s."""
    values = startup_probe_values(budget_s, computed_by="test")
    spec = workload(render(values))["spec"]
    probe = nim_container(render(values))["startupProbe"]
    window = (
        probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]
    )
    assert spec["progressDeadlineSeconds"] == max(600, window + 900)
    sts = workload(render({**values, "workload": "StatefulSet", "replicas": 1}))["spec"]
    assert "progressDeadlineSeconds" not in sts  # not a StatefulSet field


def test_statefulset_claim_templates_survive_an_image_upgrade(render: Render) -> None:
    """volumeClaimTemplates are immutable: a new NIM tag must not change them."""
    base = {"workload": "StatefulSet", "replicas": 2}
    before = workload(render(base))["spec"]["volumeClaimTemplates"]
    after = workload(render({**base, "image": {"tag": "1.9.0"}}))["spec"]["volumeClaimTemplates"]
    assert before == after
    assert before[0]["metadata"]["labels"]["nimble-oke/session"] == SESSION
