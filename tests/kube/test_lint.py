"""`nimble lint`: the values linter flags what users of other NIM charts get wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimble_oke.domain.config import build_config
from nimble_oke.services.chart_ops import LintIssue, lint_values, read_values_file

CLEAN_VALUES = """\
# A hand-written values file for the nimble-nim chart.
image:
  repository: nvcr.io/nim/meta/llama-3.1-8b-instruct
  tag: "1.8.0"
resources:
  gpu: 1
monitoring:
  serviceMonitor:
    enabled: true
  prometheusRule:
    enabled: true
probes:
  startup:
    periodSeconds: 10
    failureThreshold: 120
"""


def keys(issues: list[LintIssue]) -> list[str]:
    return [i.key for i in issues]


def test_clean_values_file_has_no_issue(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(CLEAN_VALUES, encoding="utf-8")
    assert lint_values(build_config({}), read_values_file(path)) == []


def test_unknown_key_is_named() -> None:
    issues = lint_values(build_config({}), {"resources": {"gpus": 1}, "bogus": True})
    assert {"resources.gpus", "bogus"} <= set(keys(issues))
    assert all(i.severity == "error" and "unknown key" in i.message for i in issues)


def test_startup_budget_shorter_than_computed() -> None:
    cfg = build_config({})
    short = {"probes": {"startup": {"periodSeconds": 10, "failureThreshold": 3}}}
    (issue,) = lint_values(cfg, short)
    assert issue.key == "probes.startup.failureThreshold"
    assert "startup budget 30s" in issue.message
    # The advice is enough: following it gives a clean lint.
    need = int(issue.message.rsplit("≥ ", 1)[1])
    fixed = {"probes": {"startup": {"periodSeconds": 10, "failureThreshold": need}}}
    assert lint_values(cfg, fixed) == []


def test_disabled_startup_probe_is_a_warning() -> None:
    issues = lint_values(build_config({}), {"probes": {"startup": {"enabled": False}}})
    assert [(i.severity, i.key) for i in issues] == [("warning", "probes.startup.enabled")]


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"resources": {"gpu": 1}}, "1× 48 GB"),  # 70B bf16 on one L40S
        ({"resources": {"gpu": 4}, "scheduling": {"shape": "VM.GPU.A10.1"}}, "only 1 GPU"),
    ],
)
def test_model_that_cannot_fit(values: dict[str, object], needle: str) -> None:
    cfg = build_config(
        {"nim": {"model": "meta/llama-3.3-70b-instruct"}, "gpu_pool": {"shape": "BM.GPU.L40S.4"}}
    )
    budget = {"probes": {"startup": {"periodSeconds": 10, "failureThreshold": 2000}}}
    issues = lint_values(cfg, {**values, **budget})
    assert "resources.gpu" in keys(issues)
    assert any(needle in i.message for i in issues if i.key == "resources.gpu")
    four = {"resources": {"gpu": 4}, **budget}
    assert lint_values(cfg, four) == []


def test_metrics_path_cannot_be_moved_off_v1_metrics() -> None:
    # The chart hard-codes /v1/metrics; a values file that tries to scrape /metrics (what
    # other charts use) is refused by name instead of being silently ignored.
    values = {"monitoring": {"serviceMonitor": {"enabled": True, "path": "/metrics"}}}
    assert keys(lint_values(build_config({}), values)) == ["monitoring.serviceMonitor.path"]


def test_unpinned_image_tag() -> None:
    issues = lint_values(build_config({}), {"image": {"tag": "latest"}})
    assert keys(issues) == ["image.tag"]
