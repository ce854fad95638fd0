"""Parity with the real `helm` binary: `helm lint --strict` passes and `helm template`
produces exactly what the in-process engine renders. Skipped when no binary is present
(see docs/chart.md for how to fetch helm into .tools/)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nimble_oke.kube.render import render_chart

from .checks import NAMESPACE, RELEASE, SESSION

REPO = Path(__file__).resolve().parents[2]


def _helm() -> str | None:
    candidates = [os.environ.get("NIMBLE_TEST_HELM"), str(REPO / ".tools" / "helm" / "helm")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("helm")


HELM = _helm()
pytestmark = pytest.mark.skipif(HELM is None, reason="no helm binary (.tools/helm/helm)")


def helm(*args: str, env_home: Path) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(env_home),
        "HELM_CACHE_HOME": str(env_home / "cache"),
        "HELM_CONFIG_HOME": str(env_home / "config"),
        "HELM_DATA_HOME": str(env_home / "data"),
    }
    return subprocess.run(
        [HELM, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def _key(manifest: dict[str, Any]) -> tuple[str, str]:
    return manifest["kind"], manifest["metadata"]["name"]


@pytest.mark.parametrize("values_file", [None, "values-production.yaml"])
def test_helm_lint_strict_passes(chart_dir: Path, tmp_path: Path, values_file: str | None) -> None:
    args = ["lint", "--strict", str(chart_dir)]
    if values_file:
        args += ["-f", str(chart_dir / values_file)]
    result = helm(*args, env_home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "workload": "StatefulSet",
            "cache": {
                "mode": "object-storage",
                "keep": True,
                "objectStorage": {"namespace": "n", "bucket": "y", "parSecret": {"name": "p"}},
                "storageClass": {"create": True},
            },
            "security": {"seccomp": {"type": "Localhost", "installer": {"enabled": True}}},
            "autoscaling": {"enabled": True, "engine": "keda"},
            "monitoring": {
                "serviceMonitor": {"enabled": True},
                "prometheusRule": {"enabled": True},
            },
            "service": {"type": "LoadBalancer"},
            "networkPolicy": {"enabled": True},
            "namespace": {"create": True},
        },
    ],
    ids=["defaults", "everything-on"],
)
def test_helm_template_equals_the_in_process_render(
    chart_dir: Path, tmp_path: Path, overrides: dict[str, Any]
) -> None:
    values = {"session": SESSION, **overrides}
    values_path = tmp_path / "values.json"  # JSON: YAML 1.1 would read a bare `n` as false
    values_path.write_text(json.dumps(values))
    result = helm(
        "template", RELEASE, str(chart_dir), "-n", NAMESPACE, "-f", str(values_path),
        env_home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from_binary = [d for d in yaml.safe_load_all(result.stdout) if d]
    in_process = render_chart(
        values, release=RELEASE, namespace=NAMESPACE, chart_dir=chart_dir, include_tests=True
    )
    assert sorted(from_binary, key=_key) == sorted(in_process, key=_key)


def test_helm_template_names_the_bad_key(chart_dir: Path, tmp_path: Path) -> None:
    result = helm(
        "template", RELEASE, str(chart_dir), "--set", "cache.sise=50Gi", env_home=tmp_path
    )
    assert result.returncode != 0
    assert "sise" in result.stderr
