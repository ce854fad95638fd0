"""GitOps export: values and Argo CD objects, validated against Argo CD's CRD schema;
Secrets referenced by name, never inlined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml
from typer.testing import CliRunner

from chart.checks import validate_manifest
from nimble_oke.catalog import load_catalog
from nimble_oke.cli.production_cmd import export_app
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.kube.render import ChartError, render_chart
from nimble_oke.ngc_keys import NGC_KEY_PREFIX, throwaway_key
from nimble_oke.services.export import (
    argocd_application,
    export_values,
    secret_names,
    write_argocd,
)
from nimble_oke.services.values import chart_values
from nimble_oke.state.store import StateStore

from .argo import render_list_generator, validate

NGC_KEY = throwaway_key()
OBJECT_STORAGE = {
    "nim": {"model": "meta/llama-3.1-8b-instruct"},
    "cache": {
        "mode": "object-storage",
        "bucket": "nim-models",
        "namespace": "axaxnpcrorw5",
        "version": "1.8.0",
    },
}


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(export_app, name="export")
    return app


@pytest.fixture(autouse=True)
def _ngc_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is in the environment, as for `nimble up`: nothing exported may carry it."""
    monkeypatch.setenv("NGC_API_KEY", NGC_KEY)


def all_text(directory: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in sorted(directory.iterdir()))


def test_values_are_what_nimble_would_apply() -> None:
    cfg = build_config({"nim": {"replicas": 1}})
    values = export_values(cfg, session="s1")
    assert values == chart_values(cfg, build_plan(cfg, load_catalog()), session="s1")
    assert secret_names(values) == ["ngc-api", "ngc-secret"]
    os_cfg = build_config(OBJECT_STORAGE)
    os_values = chart_values(os_cfg, build_plan(os_cfg, load_catalog()), session="s1")
    assert secret_names(os_values) == ["ngc-api", "ngc-secret", "s1-model-par"]
    # an object-storage session renders (the namespace now comes from cache.namespace)
    assert (
        export_values(os_cfg, session="s1")["cache"]["objectStorage"]["namespace"] == "axaxnpcrorw5"
    )


def test_application_validates_and_carries_values_inline(tmp_path: Path) -> None:
    cfg = build_config({"service": {"type": "ClusterIP"}, "monitoring": {"enabled": True}})
    written = write_argocd(cfg, tmp_path, session="prod-8b")
    assert [p.name for p in written] == ["values.yaml", "application.yaml"]
    app = yaml.safe_load((tmp_path / "application.yaml").read_text(encoding="utf-8"))
    validate(app)
    assert app["kind"] == "Application"
    source = app["spec"]["source"]
    assert source["path"] == "charts/nimble-nim" and source["repoURL"].endswith(".git")
    values = source["helm"]["valuesObject"]
    assert values == yaml.safe_load((tmp_path / "values.yaml").read_text(encoding="utf-8"))
    assert app["spec"]["destination"]["namespace"] == cfg.nim.namespace
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    required = app["metadata"]["annotations"]["nimble-oke/required-secrets"].split(",")
    assert required == ["ngc-api", "ngc-secret"]
    assert values["ngc"]["apiKeySecret"] == {"name": "ngc-api", "key": "NGC_API_KEY"}
    # What Argo CD would render from it is a valid deployment.
    manifests = render_chart(values, release="prod-8b", namespace=cfg.nim.namespace)
    for manifest in manifests:
        validate_manifest(manifest)
    assert NGC_KEY not in all_text(tmp_path) and NGC_KEY_PREFIX not in all_text(tmp_path)


def test_applicationset_per_environment_renders_valid_applications(tmp_path: Path) -> None:
    cfg = build_config({})
    write_argocd(cfg, tmp_path, session="llm", environments=["dev", "staging", "prod"])
    appset = yaml.safe_load((tmp_path / "applicationset.yaml").read_text(encoding="utf-8"))
    validate(appset)
    apps = render_list_generator(appset)
    assert [a["metadata"]["name"] for a in apps] == ["llm-dev", "llm-staging", "llm-prod"]
    sessions = set()
    for app in apps:
        validate(app)
        env = app["metadata"]["labels"]["nimble-oke/environment"]
        assert app["spec"]["destination"]["namespace"] == f"{cfg.nim.namespace}-{env}"
        values = yaml.safe_load(app["spec"]["source"]["helm"]["values"])
        assert values["session"] == app["spec"]["source"]["helm"]["releaseName"] == f"llm-{env}"
        sessions.add(values["session"])
        manifests = render_chart(values, release=values["session"], namespace=f"nim-{env}")
        assert {m["metadata"]["labels"]["nimble-oke/session"] for m in manifests} == {f"llm-{env}"}
    assert len(sessions) == 3
    assert NGC_KEY_PREFIX not in all_text(tmp_path)


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("spec", "source", "helm"), {"valueObject": {}}),  # a typo Argo CD would drop
        (("spec",), {"project": 7}),
        (("spec", "syncPolicy"), {"automated": {"prune": "yes"}}),
    ],
)
def test_schema_rejects_broken_applications(path: tuple[str, ...], bad: dict[str, Any]) -> None:
    app = argocd_application(
        export_values(build_config({}), session="x"), name="x", namespace="nim"
    )
    node = app
    for key in path:
        node = node[key]
    node.update(bad)
    with pytest.raises(jsonschema.ValidationError):
        validate(app)
    del app["spec"]["destination"]
    with pytest.raises(jsonschema.ValidationError, match="destination"):
        validate(app)


def test_a_secret_in_the_config_is_refused_not_exported(tmp_path: Path) -> None:
    par = "https://objectstorage.us-chicago-1.oraclecloud.com/p/AbCdEfGhIjKlMnOp1234/n/ns/b/x/o/"
    cfg = build_config({"monitoring": {"otel": True, "otel_endpoint": par}})
    with pytest.raises(ChartError, match="looks like a secret") as err:
        write_argocd(cfg, tmp_path, session="leak")
    assert "AbCdEfGhIjKl" not in str(err.value)
    assert not list(tmp_path.iterdir())


def test_cli_exports_a_recorded_session(tmp_path: Path) -> None:
    recorded = build_config({"cluster": {"name": "rec"}, "nim": {"precision": "int4-awq"}})
    with StateStore() as store:
        store.upsert_session(
            "rec", target="sim", status="ready", config=recorded.model_dump(mode="json")
        )
    runner = CliRunner()
    result = runner.invoke(cli(), ["export", "values", "--name", "rec"])
    assert result.exit_code == 0, result.output
    values = yaml.safe_load(result.output)
    assert values["session"] == "rec"
    assert "int4-awq" in values["probes"]["startup"]["computedBy"]
    out = tmp_path / "argo"
    result = runner.invoke(
        cli(),
        [
            "export", "argocd", "--name", "rec", "--output-dir", str(out),
            "--environments", "dev,prod", "--repo-url", "https://git.example.com/ml/nim.git",
            "--revision", "v0.2.0", "--manual-sync",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    appset = yaml.safe_load((out / "applicationset.yaml").read_text(encoding="utf-8"))
    validate(appset)
    template = appset["spec"]["template"]["spec"]
    assert template["source"]["repoURL"] == "https://git.example.com/ml/nim.git"
    assert template["source"]["targetRevision"] == "v0.2.0"
    assert "automated" not in template["syncPolicy"]
    missing = runner.invoke(cli(), ["export", "values", "--name", "nope"])
    assert missing.exit_code != 0 and "no session named 'nope'" in missing.output
    bad_env = runner.invoke(
        cli(), ["export", "argocd", "--output-dir", str(out), "--environments", "Prod!"]
    )
    assert bad_env.exit_code == 2 and "not a valid name" in bad_env.output
