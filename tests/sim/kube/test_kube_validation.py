"""OpenAPI, validation and dry run, judged by the real kubectl: ``apply`` with its default
(server-side, strict) validation, ``explain``, the real refusals of invalid writes, dry run
on every verb, and a bad object that cannot stall the controllers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from kubesim_helpers import wait_for
from real_clients import kubectl, needs_binaries

from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.kube.resources import by_name

pytestmark = needs_binaries

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: busybox, command: [sh, -c, "sleep 100000"]}]
"""


@pytest.fixture
def kc(kube: KubeSimulator, tmp_path: Path) -> Path:
    kube.add_node("10.0.1.5", allocatable={"cpu": "4", "memory": "16Gi"})
    return kube.write_kubeconfig(tmp_path / "kc")


def _deployment(kube: KubeSimulator, name: str) -> dict | None:
    found = [d for d in kube.objects("Deployment", "default") if d["metadata"]["name"] == name]
    return found[0] if found else None


def test_explain_reads_the_served_openapi(kc: Path) -> None:
    out = kubectl(kc, "explain", "deployment.spec.replicas")
    assert "FIELD: replicas <integer>" in out
    assert "Number of desired pods" in out
    assert "GROUP:      apps" in out


def test_apply_with_default_validation_creates_updates_and_refuses_unknown_fields(
    kc: Path,
) -> None:
    assert "deployment.apps/web created" in kubectl(kc, "apply", "-f", "-", stdin=DEPLOYMENT)
    assert "unchanged" in kubectl(kc, "apply", "-f", "-", stdin=DEPLOYMENT)
    scaled = DEPLOYMENT.replace("replicas: 1", "replicas: 2")
    assert "configured" in kubectl(kc, "apply", "-f", "-", stdin=scaled)
    typo = DEPLOYMENT.replace("replicas: 1", "replica: 1")
    err = kubectl(kc, "apply", "-f", "-", stdin=typo, ok=False)
    assert 'strict decoding error: unknown field "spec.replica"' in err
    fresh = typo.replace("name: web", "name: other")
    err = kubectl(kc, "apply", "-f", "-", stdin=fresh, ok=False)
    assert (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replica"'
    ) in err


def test_invalid_replicas_patch_is_refused_and_nothing_stalls(
    kube: KubeSimulator, kc: Path
) -> None:
    kubectl(kc, "apply", "-f", "-", stdin=DEPLOYMENT)
    err = kubectl(kc, "patch", "deployment", "web", "-p", '{"spec":{"replicas":"abc"}}', ok=False)
    assert (
        'The request is invalid: patch: Invalid value: "map[spec:map[replicas:abc]]": '
        "unrecognized type: int32"
    ) in err
    with httpx.Client(base_url=kube.url, headers={"Authorization": f"Bearer {kube.token}"}) as h:
        answer = h.patch(
            "/apis/apps/v1/namespaces/default/deployments/web",
            content=b'{"spec":{"replicas":"abc"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert answer.status_code == 422
    status = answer.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "patch"
    assert (
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        in status["message"]
    )
    assert _deployment(kube, "web")["spec"]["replicas"] == 1
    kubectl(kc, "scale", "deployment/web", "--replicas=2")
    assert wait_for(
        lambda: (_deployment(kube, "web") or {}).get("status", {}).get("readyReplicas") == 2
    )


def test_a_bad_stored_object_does_not_stall_the_others(kube: KubeSimulator, kc: Path) -> None:
    """Even an object that got past validation (written straight to storage here) only
    fails its own sync."""
    bad = json.loads(json.dumps(_yaml(DEPLOYMENT)))
    bad["metadata"] = {"name": "broken", "namespace": "default"}
    bad["spec"]["replicas"] = "abc"
    kube.call(lambda: kube.cluster.store.create(by_name("Deployment"), bad))  # type: ignore[union-attr]
    kubectl(kc, "apply", "-f", "-", stdin=DEPLOYMENT)
    assert wait_for(
        lambda: (_deployment(kube, "web") or {}).get("status", {}).get("readyReplicas") == 1
    )


def _yaml(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 99999}]}",
            "spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive",
        ),
        (
            DEPLOYMENT.replace("name: web", "name: Bad_Name"),
            'The Deployment "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a '
            "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters",
        ),
        (
            DEPLOYMENT.replace(
                '"sleep 100000"]', '"sleep 100000"], resources: {requests: {cpu: lots}}'
            ),
            "quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            DEPLOYMENT.replace("image: busybox, ", ""),
            "spec.template.spec.containers[0].image: Required value",
        ),
    ],
    ids=["port-range", "dns-1123-name", "quantity", "required-image"],
)
def test_invalid_objects_are_refused_before_anything_is_stored(
    kube: KubeSimulator, kc: Path, manifest: str, expected: str
) -> None:
    err = kubectl(kc, "create", "-f", "-", stdin=manifest, ok=False)
    assert expected in err
    assert not [o for o in kube.objects("Service", "default") if o["metadata"]["name"] == "bad"]
    assert _deployment(kube, "web") is None


def test_dry_run_on_every_verb_persists_nothing(kube: KubeSimulator, kc: Path) -> None:
    out = kubectl(kc, "apply", "--dry-run=server", "-f", "-", stdin=DEPLOYMENT)
    assert "(server dry run)" in out and _deployment(kube, "web") is None
    kubectl(kc, "create", "--dry-run=server", "-f", "-", stdin=DEPLOYMENT)
    kubectl(kc, "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=DEPLOYMENT)
    assert _deployment(kube, "web") is None
    kubectl(kc, "apply", "-f", "-", stdin=DEPLOYMENT)
    before = _deployment(kube, "web")
    assert before is not None
    kubectl(kc, "scale", "deployment/web", "--replicas=3", "--dry-run=server")
    kubectl(kc, "patch", "deployment/web", "--dry-run=server", "-p", '{"spec":{"replicas":5}}')
    kubectl(
        kc,
        "replace",
        "--dry-run=server",
        "-f",
        "-",
        stdin=DEPLOYMENT.replace("replicas: 1", "replicas: 4"),
    )
    kubectl(kc, "label", "deployment/web", "tier=api", "--dry-run=server")
    assert _deployment(kube, "web")["spec"]["replicas"] == 1  # type: ignore[index]
    assert "deleted (server dry run)" in kubectl(
        kc, "delete", "deployment", "web", "--dry-run=server"
    )
    kubectl(kc, "delete", "namespace", "default", "--dry-run=server")
    after = _deployment(kube, "web")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    assert not after["metadata"].get("labels", {}).get("tier")
    namespaces = {n["metadata"]["name"]: n for n in kube.objects("Namespace")}
    assert "deletionTimestamp" not in namespaces["default"]["metadata"]
