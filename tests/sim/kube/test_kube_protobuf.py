"""Kubernetes protobuf on the wire, judged by the real clients: every ``kubectl create``
subcommand sends its object as ``application/vnd.kubernetes.protobuf`` (captured at -v=9);
the server must decode it to exactly what kubectl would have sent as JSON, store it, and
answer in the media type asked for. Plus the real 406/415/400 answers."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from real_clients import HELM, KUBECTL, kubectl, needs_binaries, request_bodies, run

from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.kube.wire import protobuf

pytestmark = needs_binaries


def normalized(value: Any) -> Any:
    """Without nulls and empty maps/lists (the Go JSON encoder and the protobuf decoder
    disagree only on those: ``creationTimestamp: null``, ``status: {}``)."""
    if isinstance(value, dict):
        out = {k: normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def _tls_files(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nim.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


CREATES: dict[str, list[str]] = {
    "namespace": ["namespace", "team-a"],
    "secret-generic": ["secret", "generic", "ngc-api", "--from-literal=NGC_API_KEY=nvapi-test"],
    "secret-docker-registry": [
        "secret", "docker-registry", "ngc-secret", "--docker-server=nvcr.io",
        "--docker-username=$oauthtoken", "--docker-password=nvapi-test",
    ],
    "secret-tls": ["secret", "tls", "tls1", "--cert={cert}", "--key={key}"],
    "configmap": ["configmap", "settings", "--from-literal=a=1", "--from-literal=b=two"],
    "deployment-zero-replicas": [
        "deployment", "web", "--image=busybox", "--replicas=0", "--port=8080", "--", "sleep", "10",
    ],
    "job": ["job", "once", "--image=busybox", "--", "echo", "hi"],
    "cronjob": ["cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"],
    "service-clusterip": ["service", "clusterip", "api", "--tcp=8000:8000"],
    "service-nodeport": ["service", "nodeport", "np", "--tcp=80:8080"],
    "serviceaccount": ["serviceaccount", "runner"],
    "role": ["role", "reader", "--verb=get,list", "--resource=pods"],
    "rolebinding": ["rolebinding", "reader-binding", "--role=reader", "--user=alice"],
    "clusterrole": ["clusterrole", "viewer", "--verb=get", "--resource=nodes"],
    "clusterrolebinding": ["clusterrolebinding", "viewer-binding", "--clusterrole=viewer", "--group=ops"],
    "pdb": ["poddisruptionbudget", "web-pdb", "--selector=app=web", "--min-available=1"],
}  # fmt: skip


def _flags(args: list[str], *flags: str) -> list[str]:
    """``flags`` before a ``--`` (what follows it is the container's command)."""
    cut = args.index("--") if "--" in args else len(args)
    return [*args[:cut], *flags, *args[cut:]]


@pytest.fixture
def kc(kube: KubeSimulator, tmp_path: Path) -> Path:
    kube.add_node("10.0.1.5", allocatable={"cpu": "4", "memory": "16Gi"})
    return kube.write_kubeconfig(tmp_path / "kc")


@pytest.mark.parametrize("what", list(CREATES))
def test_kubectl_create_sends_protobuf_that_the_server_decodes_and_stores(
    kc: Path, tmp_path: Path, what: str
) -> None:
    cert, key = _tls_files(tmp_path)
    args = [a.format(cert=cert, key=key) for a in CREATES[what]]
    expected = json.loads(kubectl(kc, "create", *_flags(args, "--dry-run=client", "-o", "json")))
    out = run(KUBECTL, kc, "create", *_flags(args, "-v=9"))
    assert out.returncode == 0, out.stderr
    assert "Content-Type: application/vnd.kubernetes.protobuf" in out.stderr
    (body,) = request_bodies(out.stderr)
    assert body.startswith(b"k8s\x00")
    _, kind, decoded = protobuf.decode(body)
    assert kind == expected["kind"]
    assert normalized(decoded) == normalized(expected)
    name = expected["metadata"]["name"]
    stored = json.loads(kubectl(kc, "get", kind.lower(), name, "-o", "json"))
    for field in ("data", "rules", "subjects", "roleRef"):
        if field in expected:
            assert stored[field] == expected[field]
    if what == "deployment-zero-replicas":  # a pointer's zero survives the wire
        assert stored["spec"]["replicas"] == 0


def _server(kube: KubeSimulator) -> tuple[str, dict[str, str]]:
    return kube.url, {"Authorization": f"Bearer {kube.token}"}


def test_answers_in_protobuf_when_asked(kube: KubeSimulator, kc: Path) -> None:
    kubectl(kc, "create", "deployment", "web", "--image=busybox", "--", "sleep", "100")
    url, auth = _server(kube)
    path = "/apis/apps/v1/namespaces/default/deployments"
    with httpx.Client(base_url=url, headers=auth) as http:
        as_json = http.get(f"{path}/web").json()
        answer = http.get(
            f"{path}/web",
            headers={"Accept": "application/vnd.kubernetes.protobuf,application/json"},
        )
        assert answer.headers["content-type"] == "application/vnd.kubernetes.protobuf"
        _, kind, obj = protobuf.decode(answer.content)
        assert kind == "Deployment"
        assert normalized(obj) == normalized(as_json)
        listed = http.get(path, headers={"Accept": "application/vnd.kubernetes.protobuf"})
        _, kind, body = protobuf.decode(listed.content)
        assert kind == "DeploymentList" and [i["metadata"]["name"] for i in body["items"]] == [
            "web"
        ]
        missing = http.get(
            f"{path}/nope", headers={"Accept": "application/vnd.kubernetes.protobuf"}
        )
        assert missing.status_code == 404
        _, kind, status = protobuf.decode(missing.content)
        assert (kind, status["reason"], status["code"]) == ("Status", "NotFound", 404)
        assert http.get(f"{path}/web", headers={"Accept": "application/yaml"}).text.startswith(
            "apiVersion: apps/v1"
        )


def test_watch_streams_protobuf_frames(kube: KubeSimulator, kc: Path) -> None:
    kubectl(kc, "create", "configmap", "watched", "--from-literal=a=b")
    url, auth = _server(kube)
    accept = {"Accept": "application/vnd.kubernetes.protobuf"}
    query = "watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dwatched"
    with httpx.Client(base_url=url, headers={**auth, **accept}, timeout=10) as http:
        data = http.get(f"/api/v1/namespaces/default/configmaps?{query}").content
    length = int.from_bytes(data[:4], "big")
    _, kind, event = protobuf.decode(data[4 : 4 + length])
    assert kind == "WatchEvent" and event["type"] == "ADDED"
    assert event["object"]["data"] == {"a": "b"}


def test_media_types_the_server_does_not_speak(kube: KubeSimulator, kc: Path) -> None:
    url, auth = _server(kube)
    with httpx.Client(base_url=url, headers=auth) as http:
        cbor = http.post(
            "/api/v1/namespaces/default/configmaps",
            content=b"\xa0",
            headers={"Content-Type": "application/cbor"},
        )
        assert cbor.status_code == 415
        assert cbor.json()["message"] == (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml, application/vnd.kubernetes.protobuf"
        )
        custom = http.post(
            "/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors",
            content=b"k8s\x00",
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        )
        assert custom.status_code == 415
        assert custom.json()["message"].endswith("include: application/json, application/yaml")
        plain = http.get("/api/v1/namespaces/default/configmaps", headers={"Accept": "text/plain"})
        assert plain.status_code == 406
        assert plain.json()["reason"] == "NotAcceptable"
        garbage = http.post(
            "/api/v1/namespaces/default/configmaps",
            content=b"k8s\x00\x0a\xff",
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        )
        assert garbage.status_code == 400
        assert garbage.json()["message"].startswith(
            "the object provided is unrecognized (must be of type ConfigMap): "
        )


@pytest.mark.parametrize("driver", ["secret", "configmap"])
def test_helm_release_storage_round_trips_through_protobuf(
    kc: Path, tmp_path: Path, driver: str
) -> None:
    """helm keeps each release revision in a Secret (or ConfigMap) it writes and lists
    through client-go's typed clients, i.e. in protobuf both ways."""
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tiny}\ndata: {rev: '{{ .Release.Revision }}'}\n"
    )
    home = tmp_path / "helm-home"
    env = {"HELM_DRIVER": driver}

    def helm(*args: str) -> str:
        out = run(HELM, kc, *args, home=home, extra_env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout

    helm("install", "tiny", str(chart))
    helm("upgrade", "tiny", str(chart))
    assert "tiny" in helm("list")
    kind = "secrets" if driver == "secret" else "configmaps"
    stored = kubectl(kc, "get", kind, "-l", "owner=helm,name=tiny", "-o", "name").split()
    assert len(stored) == 2  # one per revision
    assert json.loads(kubectl(kc, "get", "configmap", "tiny", "-o", "json"))["data"] == {"rev": "2"}
    helm("rollback", "tiny", "1")
    helm("uninstall", "tiny")
    assert kubectl(kc, "get", kind, "-l", "owner=helm", "-o", "name") == ""
