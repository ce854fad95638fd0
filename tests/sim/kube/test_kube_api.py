# mypy: disable-error-code="union-attr,index,operator,arg-type,misc,type-var"
# (lightkube models type every field Optional; the tests read fields the server always sets)
"""API semantics through lightkube (and raw HTTP for the wire shapes)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from kubesim_helpers import apply_yaml, wait_for
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod
from lightkube.types import PatchType

from nimble_oke.sim.kube import KubeSimulator

ServiceMonitor = create_namespaced_resource(
    "monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"
)


def _raw(kube: KubeSimulator, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {kube.token}", **kw.pop("headers", {})}
    with httpx.Client(base_url=kube.url, headers=headers) as http:
        return http.request(method, path, **kw)


def test_discovery_lists_every_registered_group(kube: KubeSimulator) -> None:
    version = _raw(kube, "GET", "/version").json()
    assert version["gitVersion"].startswith("v1.")
    core = {r["name"] for r in _raw(kube, "GET", "/api/v1").json()["resources"]}
    assert {
        "pods",
        "pods/log",
        "pods/status",
        "services",
        "persistentvolumeclaims",
        "events",
        "secrets",
        "nodes",
    } <= core
    groups = {g["name"] for g in _raw(kube, "GET", "/apis").json()["groups"]}
    assert {
        "apps",
        "batch",
        "autoscaling",
        "networking.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "monitoring.coreos.com",
        "keda.sh",
        "argoproj.io",
    } <= groups
    keda = _raw(kube, "GET", "/apis/keda.sh/v1alpha1").json()
    assert keda["resources"][0]["kind"] == "ScaledObject"
    assert _raw(kube, "GET", "/apis/nope.example.com/v1").status_code == 404


def test_object_metadata_and_generation(client: Client) -> None:
    cm = client.create(ConfigMap(metadata=ObjectMeta(name="a"), data={"k": "v"}))
    assert cm.metadata.namespace == "default"  # defaulted from the client's namespace
    assert cm.metadata.uid and cm.metadata.creationTimestamp
    first_rv = int(cm.metadata.resourceVersion)
    dep = apply_yaml(client, _deployment("gen", replicas=0))[0]
    assert dep.metadata.generation == 1
    same = apply_yaml(client, _deployment("gen", replicas=0))[0]
    assert same.metadata.generation == 1
    changed = apply_yaml(client, _deployment("gen", replicas=0, image="nimble-sim/http-echo:2"))[0]
    assert changed.metadata.generation == 2
    assert int(changed.metadata.resourceVersion) > first_rv


def test_error_statuses_have_real_shapes(kube: KubeSimulator, client: Client) -> None:
    with pytest.raises(ApiError) as missing:
        client.get(ConfigMap, "nope")
    assert missing.value.status.code == 404
    assert missing.value.status.reason == "NotFound"
    assert missing.value.status.message == 'configmaps "nope" not found'

    client.create(ConfigMap(metadata=ObjectMeta(name="dup")))
    with pytest.raises(ApiError) as dup:
        client.create(ConfigMap(metadata=ObjectMeta(name="dup")))
    assert (dup.value.status.code, dup.value.status.reason) == (409, "AlreadyExists")

    stale = client.get(ConfigMap, "dup")
    client.patch(ConfigMap, "dup", {"data": {"x": "1"}}, patch_type=PatchType.MERGE)
    with pytest.raises(ApiError) as conflict:
        client.replace(stale)
    assert (conflict.value.status.code, conflict.value.status.reason) == (409, "Conflict")
    assert "the object has been modified" in conflict.value.status.message

    bad = Pod(metadata=ObjectMeta(name="bad"), spec=PodSpec(containers=[Container(name="c")]))
    with pytest.raises(ApiError) as invalid:
        client.create(bad)
    status = invalid.value.status
    assert (status.code, status.reason) == (422, "Invalid")
    assert status.message == 'Pod "bad" is invalid: spec.containers[0].image: Required value'
    assert status.details.causes[0].field == "spec.containers[0].image"

    body = _raw(kube, "GET", "/api/v1/namespaces/default/pods/none").json()
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "none" not found',
        "reason": "NotFound",
        "details": {"name": "none", "group": "", "kind": "pods"},
        "code": 404,
    }


def test_creating_in_a_missing_namespace_is_404(client: Client) -> None:
    with pytest.raises(ApiError) as err:
        client.create(ConfigMap(metadata=ObjectMeta(name="x", namespace="ghost")))
    assert err.value.status.message == 'namespaces "ghost" not found'


def test_label_and_field_selectors(client: Client) -> None:
    for name, labels in (
        ("a", {"app": "x", "tier": "web"}),
        ("b", {"app": "x", "tier": "db"}),
        ("c", {"app": "y"}),
        ("d", {}),
    ):
        client.create(ConfigMap(metadata=ObjectMeta(name=name, labels=labels)))

    def names(**kw: Any) -> list[str]:
        return sorted(o.metadata.name for o in client.list(ConfigMap, **kw))

    assert names(labels={"app": "x"}) == ["a", "b"]
    assert names(labels={"app": "x", "tier": "web"}) == ["a"]
    from lightkube import operators as op

    assert names(labels={"tier": op.not_equal("web"), "app": op.exists()}) == ["b", "c"]
    assert names(labels={"app": op.in_(["x", "y"])}) == ["a", "b", "c"]
    assert names(labels={"app": op.not_in(["x"])}) == ["c", "d"]
    assert names(labels={"tier": op.not_exists()}) == ["c", "d"]
    assert names(fields={"metadata.name": "c"}) == ["c"]
    assert names(fields={"metadata.name": op.not_equal("c")}) == ["a", "b", "d"]


def test_server_side_apply_prunes_fields_a_manager_stops_applying(client: Client) -> None:
    first = """
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa, namespace: default, labels: {keep: "1", drop: "1"}}
data: {a: "1", b: "2"}
"""
    apply_yaml(client, first)
    client.patch(
        ConfigMap,
        "ssa",
        {"data": {"other": "x"}},
        patch_type=PatchType.MERGE,
        field_manager="someone-else",
    )
    second = """
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa, namespace: default, labels: {keep: "1"}}
data: {a: "1"}
"""
    cm = apply_yaml(client, second)[0]
    assert cm.data == {"a": "1", "other": "x"}  # b pruned, the other manager's field stays
    assert cm.metadata.labels == {"keep": "1"}
    managers = {m.manager: m.operation for m in cm.metadata.managedFields}
    assert managers == {"nimble-test": "Apply", "someone-else": "Update"}


def test_server_side_apply_prunes_list_items_by_merge_key(client: Client) -> None:
    env_two = '{name: A, value: "1"}, {name: B, value: "2"}'
    apply_yaml(client, _deployment("ssa-env", replicas=0, env=env_two))
    dep = apply_yaml(client, _deployment("ssa-env", replicas=0, env='{name: A, value: "1"}'))[0]
    env = dep.spec.template.spec.containers[0].env
    assert [(e.name, e.value) for e in env] == [("A", "1")]


def test_server_side_apply_conflicts_and_force(client: Client) -> None:
    apply_yaml(client, _deployment("conf", replicas=1))
    client.patch(
        Deployment,
        "conf",
        {"spec": {"replicas": 3}},
        patch_type=PatchType.MERGE,
        field_manager="kubectl-edit",
    )
    with pytest.raises(ApiError) as err:
        apply_yaml(client, _deployment("conf", replicas=2))
    assert err.value.status.code == 409
    assert 'conflict with "kubectl-edit"' in err.value.status.message
    assert ".spec.replicas" in err.value.status.message
    dep = apply_yaml(client, _deployment("conf", replicas=2), force=True)[0]
    assert dep.spec.replicas == 2


def test_strategic_merge_patch_merges_containers_and_env_by_name(client: Client) -> None:
    env = '{name: A, value: "1"}, {name: B, value: "2"}'
    apply_yaml(client, _deployment("smp", replicas=0, env=env))
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "B", "value": "changed"}, {"name": "C", "value": "3"}],
                        }
                    ]
                }
            }
        }
    }
    dep = client.patch(Deployment, "smp", patch, patch_type=PatchType.STRATEGIC)
    container = dep.spec.template.spec.containers[0]
    assert container.image == "nimble-sim/http-echo:1"
    assert [(e.name, e.value) for e in container.env] == [("A", "1"), ("B", "changed"), ("C", "3")]
    delete = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]
                }
            }
        }
    }
    dep = client.patch(Deployment, "smp", delete, patch_type=PatchType.STRATEGIC)
    assert [e.name for e in dep.spec.template.spec.containers[0].env] == ["B", "C"]
    json_patch = [{"op": "replace", "path": "/spec/replicas", "value": 0}]
    assert client.patch(Deployment, "smp", json_patch, patch_type=PatchType.JSON).spec.replicas == 0


def test_watch_streams_added_modified_deleted_from_a_resource_version(client: Client) -> None:
    start = client.create(ConfigMap(metadata=ObjectMeta(name="w0")))
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        for kind, obj in client.watch(ConfigMap, resource_version=start.metadata.resourceVersion):
            seen.append((kind, obj.metadata.name))
            if kind == "DELETED":
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    client.create(ConfigMap(metadata=ObjectMeta(name="w1")))
    client.patch(ConfigMap, "w1", {"data": {"a": "b"}}, patch_type=PatchType.MERGE)
    client.delete(ConfigMap, "w1")
    thread.join(10)
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_without_resource_version_starts_with_current_objects(
    kube: KubeSimulator, client: Client
) -> None:
    client.create(ConfigMap(metadata=ObjectMeta(name="there")))
    response = _raw(
        kube,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        params={"watch": "1", "timeoutSeconds": "1"},
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "there")]


def test_custom_resources_and_deletecollection(kube: KubeSimulator, client: Client) -> None:
    for name, labels in (("m1", {"x": "1"}), ("m2", {"x": "1"}), ("m3", {})):
        client.create(
            ServiceMonitor(
                metadata=ObjectMeta(name=name, labels=labels),
                spec={"endpoints": [{"path": "/v1/metrics"}]},
            )
        )
    assert {o.metadata.name for o in client.list(ServiceMonitor)} == {"m1", "m2", "m3"}
    path = "/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors"
    assert _raw(kube, "DELETE", path, params={"labelSelector": "x=1"}).status_code == 200
    assert [o.metadata.name for o in client.list(ServiceMonitor)] == ["m3"]
    client.deletecollection(ServiceMonitor)
    assert list(client.list(ServiceMonitor)) == []


def test_bearer_token_check(tmp_path: Any) -> None:
    from nimble_oke.sim.clock import SimClock

    with KubeSimulator(tmp_path, SimClock(60), require_token=lambda t: t == "good") as kube:
        ok = httpx.get(f"{kube.url}/api/v1/namespaces", headers={"Authorization": "Bearer good"})
        bad = httpx.get(f"{kube.url}/api/v1/namespaces", headers={"Authorization": "Bearer no"})
        assert ok.status_code == 200
        assert bad.status_code == 401 and bad.json()["reason"] == "Unauthorized"


def test_namespace_deletion_cascades(client: Client) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="team")))
    client.create(ConfigMap(metadata=ObjectMeta(name="c", namespace="team")))
    apply_yaml(
        client, _deployment("d", replicas=0).replace("namespace: default", "namespace: team")
    )
    client.delete(Namespace, "team")
    wait_for(
        lambda: "team" not in {n.metadata.name for n in client.list(Namespace)},
        what="namespace removal",
    )
    with pytest.raises(ApiError):
        client.get(ConfigMap, "c", namespace="team")
    assert list(client.list(Deployment, namespace="team")) == []


def _deployment(
    name: str, replicas: int, image: str = "nimble-sim/http-echo:1", env: str = ""
) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: app
        image: {image}
        env: [{env}]
"""


def test_filtered_watch_reports_objects_entering_and_leaving_the_selector(
    kube: KubeSimulator, client: Client
) -> None:
    client.create(ConfigMap(metadata=ObjectMeta(name="mover", labels={"app": "y"})))
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        for kind, obj in client.watch(ConfigMap, labels={"app": "x"}):
            seen.append((kind, obj.metadata.labels["app"]))
            if kind == "DELETED":
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert kube.cluster is not None
    store = kube.cluster.store
    wait_for(lambda: kube.call(store.watcher_count), what="watch connected")
    for app in ("x", "z"):
        client.patch(ConfigMap, "mover", {"metadata": {"labels": {"app": app}}})
    thread.join(10)
    assert seen == [("ADDED", "x"), ("DELETED", "z")]
