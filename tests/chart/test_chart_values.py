"""values.schema.json and the template checks: bad input is refused with the key named;
secrets are refused as values; the schema itself is closed and documented."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from nimble_oke.errors import NimbleError
from nimble_oke.kube.render import ChartError, lint_chart, render_chart, validate_values
from nimble_oke.ngc_keys import throwaway_key

from .checks import NAMESPACE, RELEASE

# secrets made at test time (never literals in the repository)
NGC_KEY = throwaway_key()
PAR_TOKEN = secrets.token_urlsafe(18)
BEARER_TOKEN = secrets.token_urlsafe(18)


def rejected(values: dict[str, Any], chart_dir: Path) -> ChartError:
    with pytest.raises(ChartError) as info:
        render_chart(values, release=RELEASE, namespace=NAMESPACE, chart_dir=chart_dir)
    return info.value


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"replica": 2}, "replica"),
        ({"cache": {"sise": "50Gi"}}, "cache.sise"),
        ({"persistence": {"size": "50Gi"}}, "persistence"),
        ({"nodeSelector": {"nvidia.com/gpu.present": "true"}}, "nodeSelector"),
        ({"probes": {"startup": {"periodSecond": 5}}}, "probes.startup.periodSecond"),
        (
            {"monitoring": {"serviceMonitor": {"path": "/metrics"}}},
            "monitoring.serviceMonitor.path",
        ),
        (
            {"security": {"seccomp": {"installer": {"image": {"digest": "x"}}}}},
            "security.seccomp.installer.image.digest",
        ),
    ],
)
def test_unknown_keys_are_rejected_by_name(
    chart_dir: Path, values: dict[str, Any], key: str
) -> None:
    error = rejected(values, chart_dir)
    assert error.key == key
    assert key in str(error)
    assert "unknown key" in str(error)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"replicas": "3"}, "replicas"),
        ({"cache": {"size": 200}}, "cache.size"),
        ({"cache": {"size": "200 GB"}}, "cache.size"),
        ({"cache": {"mode": "s3"}}, "cache.mode"),
        ({"cache": {"keep": "yes"}}, "cache.keep"),
        ({"image": {"tag": "latest"}}, "image.tag"),
        ({"resources": {"gpu": "1"}}, "resources.gpu"),
        ({"resources": {"requests": {"memory": "lots"}}}, "resources.requests.memory"),
        ({"service": {"type": "NodePort"}}, "service.type"),
        ({"networkPolicy": {"ingress": {"cidrs": ["everyone"]}}}, "networkPolicy.ingress.cidrs.0"),
        ({"session": "Has Spaces"}, "session"),
        ({"security": {"seccomp": {"type": "Unconfined"}}}, "security.seccomp.type"),
        ({"tags": {"team": 7}}, "tags.team"),
    ],
)
def test_wrong_types_and_values_are_rejected_by_name(
    chart_dir: Path, values: dict[str, Any], key: str
) -> None:
    error = rejected(values, chart_dir)
    assert error.key == key, str(error)
    assert isinstance(error, NimbleError) and error.exit_code == 2


def test_every_bad_key_is_reported_at_once(chart_dir: Path) -> None:
    error = rejected({"replicas": "x", "cache": {"size": 1, "zzz": True}}, chart_dir)
    assert set(error.keys) == {"replicas", "cache.size", "cache.zzz"}


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"replicas": 2}, "workload"),
        ({"workload": "Deployment", "autoscaling": {"enabled": True}}, "workload"),
        ({"workload": "StatefulSet", "cache": {"existingClaim": "warm"}}, "cache.existingClaim"),
        ({"cache": {"mode": "object-storage"}}, "cache.objectStorage.bucket"),
        (
            {
                "cache": {
                    "mode": "object-storage",
                    "objectStorage": {"namespace": "n", "bucket": "b"},
                }
            },
            "cache.objectStorage.parSecret.name",
        ),
        (
            {"service": {"loadBalancer": {"shapeFlexMinMbps": 100, "shapeFlexMaxMbps": 10}}},
            "service.loadBalancer.shapeFlexMinMbps",
        ),
        (
            {"workload": "StatefulSet", "autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
            "autoscaling.minReplicas",
        ),
    ],
)
def test_impossible_combinations_fail_with_the_key(
    chart_dir: Path, values: dict[str, Any], key: str
) -> None:
    assert rejected(values, chart_dir).key == key


def test_several_replicas_on_shared_rwx_storage_are_allowed(chart_dir: Path) -> None:
    manifests = render_chart(
        {"replicas": 2, "cache": {"accessMode": "ReadWriteMany"}},
        release=RELEASE,
        namespace=NAMESPACE,
        chart_dir=chart_dir,
    )
    assert next(m for m in manifests if m["kind"] == "Deployment")["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("values", "key"),
    [
        (
            {"nim": {"extraEnv": [{"name": "NGC_API_KEY", "value": NGC_KEY}]}},
            "nim.extraEnv[0].value",
        ),
        (
            {
                "cache": {
                    "objectStorage": {
                        "prefix": f"https://objectstorage.us-chicago-1.oraclecloud.com/p/{PAR_TOKEN}/n/ns/b/m/o/"
                    }
                }
            },
            "cache.objectStorage.prefix",
        ),
        ({"podAnnotations": {"auth": f"Bearer {BEARER_TOKEN}"}}, "podAnnotations.auth"),
    ],
)
def test_secrets_are_refused_as_values_and_not_echoed(
    chart_dir: Path, values: dict[str, Any], key: str
) -> None:
    error = rejected(values, chart_dir)
    assert error.key == key
    text = str(error)
    assert NGC_KEY not in text and PAR_TOKEN not in text and BEARER_TOKEN not in text


def test_validate_values_without_rendering(chart_dir: Path) -> None:
    validate_values({"cache": {"size": "500Gi"}}, chart_dir=chart_dir)
    with pytest.raises(ChartError) as info:
        validate_values({"cache": {"size": 500}}, chart_dir=chart_dir)
    assert info.value.key == "cache.size"


def test_defaults_and_production_values_pass_the_schema(chart_dir: Path) -> None:
    validate_values({}, chart_dir=chart_dir)
    production = yaml.safe_load((chart_dir / "values-production.yaml").read_text())
    validate_values(production, chart_dir=chart_dir)


def _objects(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if schema.get("type") == "object" and "properties" in schema:
        found.append((path or "(root)", schema))
        for name, sub in schema["properties"].items():
            found += _objects(sub, f"{path}.{name}" if path else name)
    if schema.get("type") == "array":
        found += _objects(schema["items"], f"{path}[]")
    return found


def test_schema_is_closed_and_described_at_every_level(chart_dir: Path) -> None:
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    objects = _objects(schema)
    assert len(objects) > 40
    for path, node in objects:
        assert node.get("additionalProperties") is False, path
        for name, sub in node["properties"].items():
            if path == "(root)" and name == "global":
                continue
            assert sub.get("description"), f"{path}.{name} has no description"


def test_every_default_value_is_in_the_schema(chart_dir: Path) -> None:
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text())
    schema = json.loads((chart_dir / "values.schema.json").read_text())

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        if isinstance(value, dict) and "properties" in node:
            assert set(value) <= set(node["properties"]), path
            assert set(node["properties"]) - {"global"} <= set(value), (
                f"{path}: schema keys without default"
            )
            for key, item in value.items():
                walk(item, node["properties"][key], f"{path}.{key}")

    walk(defaults, schema, "")


def test_lint_strict_passes_for_defaults_and_production(chart_dir: Path) -> None:
    report = lint_chart(chart_dir=chart_dir, strict=True)
    assert report.ok, report.messages
    production = yaml.safe_load((chart_dir / "values-production.yaml").read_text())
    assert lint_chart(production, chart_dir=chart_dir, strict=True).ok


def test_lint_reports_bad_values_as_errors(chart_dir: Path) -> None:
    report = lint_chart({"cache": {"sise": "1Gi"}}, chart_dir=chart_dir, strict=True)
    assert not report.ok
    assert any("sise" in m.text for m in report.errors)


def test_invalid_release_name_is_a_chart_error(chart_dir: Path) -> None:
    with pytest.raises(ChartError, match="invalid release name"):
        render_chart({}, release="Bad_Name", namespace=NAMESPACE, chart_dir=chart_dir)
