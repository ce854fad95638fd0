"""`nimble monitoring install` against the Kubernetes simulator through lightkube."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from nimble_oke.cli.production_cmd import monitoring_app
from nimble_oke.services.monitoring import (
    ADAPTER_CONFIGMAP,
    install_from_kubeconfig,
    load_bundle,
)
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeSimulator, Path]]:
    with KubeSimulator(tmp_path / "kube", SimClock(600)) as kube:
        yield kube, kube.write_kubeconfig(tmp_path / "kubeconfig")


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(monitoring_app, name="monitoring")
    return app


def test_install_applies_dashboards_rule_and_adapter_rules(
    cluster: tuple[KubeSimulator, Path],
) -> None:
    kube, kubeconfig = cluster
    bundle = load_bundle()
    result = install_from_kubeconfig(kubeconfig, rule_labels={"release": "kps"})
    assert result.namespace == "monitoring"
    assert result.applied[0] == "Namespace/monitoring"
    assert "PrometheusRule/nimble-oke-nim" in result.applied

    maps = {cm["metadata"]["name"]: cm for cm in kube.objects("ConfigMap", "monitoring")}
    dashboards = {n: cm for n, cm in maps.items() if n.startswith("nimble-dashboard-")}
    assert len(dashboards) == len(bundle.dashboards)
    for stem, dashboard in bundle.dashboards.items():
        cm = dashboards[f"nimble-dashboard-{stem}"]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][f"{stem}.json"]) == dashboard
    adapter = yaml.safe_load(maps[ADAPTER_CONFIGMAP]["data"]["config.yaml"])
    assert adapter == bundle.adapter_rules

    (rule,) = kube.objects("PrometheusRule", "monitoring")
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == bundle.prometheus_rule["spec"]
    assert rule["metadata"]["managedFields"][0]["manager"] == "nimble-oke"


def test_install_converges_and_cli_reports_json(cluster: tuple[KubeSimulator, Path]) -> None:
    kube, kubeconfig = cluster
    runner = CliRunner()
    args = ["monitoring", "install", "--kubeconfig", str(kubeconfig), "-o", "json"]
    first = runner.invoke(cli(), args)
    assert first.exit_code == 0, first.output
    before = {cm["metadata"]["name"]: cm["data"] for cm in kube.objects("ConfigMap", "monitoring")}
    second = runner.invoke(cli(), [*args, "--release-label", "prometheus"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["applied"] == json.loads(first.output)["applied"]
    # Same content re-applied: the same objects with the same data, none duplicated.
    after = {cm["metadata"]["name"]: cm["data"] for cm in kube.objects("ConfigMap", "monitoring")}
    assert after == before and len(after) == 3
    assert len(kube.objects("PrometheusRule", "monitoring")) == 1


def test_install_errors_are_one_line(tmp_path: Path) -> None:
    missing = CliRunner().invoke(
        cli(), ["monitoring", "install", "--kubeconfig", str(tmp_path / "nope")]
    )
    assert missing.exit_code != 0 and "unusable" in missing.output
    no_session = CliRunner().invoke(cli(), ["monitoring", "install", "--name", "ghost"])
    assert no_session.exit_code != 0 and "no session named 'ghost'" in no_session.output


def test_show_prints_what_install_applies() -> None:
    result = CliRunner().invoke(cli(), ["monitoring", "show", "--namespace", "obs"])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    assert docs[0]["kind"] == "Namespace"
    assert {d["metadata"].get("namespace") for d in docs[1:]} == {"obs"}
