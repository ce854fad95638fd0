"""The monitoring bundle's files: dashboards are valid Grafana dashboards, every PromQL
metric is one NIM or the DCGM exporter really exposes (or a rule of the bundle records),
the cost rule uses the catalog's prices, and the NIM names are what a NIM serves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import jsonschema
import pytest
import yaml

from nimble_oke.catalog import load_catalog
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.nim.prometheus import parse_prometheus
from nimble_oke.services.monitoring import MonitoringBundle, load_bundle
from nimble_oke.sim.nim import NimEmulator, NimSettings
from nimble_oke.sim.nim.catalog import TINY_MODEL

from .promql import metric_names

# NIM /v1/metrics names (reference/nim.md, from NVIDIA's NIM LLM observability docs).
NIM_GAUGES_COUNTERS = {
    "num_requests_running", "num_requests_waiting", "num_request_max", "gpu_cache_usage_perc",
    "prompt_tokens_total", "generation_tokens_total", "request_finish_total",
}  # fmt: skip
NIM_HISTOGRAMS = {
    "time_to_first_token_seconds", "time_per_output_token_seconds",
    "e2e_request_latency_seconds", "request_prompt_tokens", "request_generation_tokens",
}  # fmt: skip
NIM_METRICS = NIM_GAUGES_COUNTERS | {
    f"{h}{suffix}" for h in NIM_HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")
}
# NVIDIA dcgm-exporter etc/default-counters.csv (the fields it exports by default).
DCGM_METRICS = {
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL", "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
}  # fmt: skip
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}

# The subset of Grafana's dashboard JSON model the bundle uses (grafana/grafana
# docs/sources/dashboards/build-dashboards/view-dashboard-json-model), strict on panels.
GRID = {
    "type": "object",
    "required": ["x", "y", "w", "h"],
    "properties": {
        "x": {"type": "integer", "minimum": 0, "maximum": 23},
        "y": {"type": "integer", "minimum": 0},
        "w": {"type": "integer", "minimum": 1, "maximum": 24},
        "h": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}
DATASOURCE = {
    "type": "object",
    "required": ["type", "uid"],
    "properties": {"type": {"const": "prometheus"}, "uid": {"type": "string"}},
}
TARGET = {
    "type": "object",
    "required": ["refId", "expr"],
    "properties": {
        "refId": {"type": "string", "pattern": "^[A-Z]$"},
        "expr": {"type": "string", "minLength": 1},
        "legendFormat": {"type": "string"},
        "datasource": DATASOURCE,
    },
    "additionalProperties": False,
}
PANEL = {
    "type": "object",
    "required": ["id", "type", "title", "gridPos"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "type": {"enum": ["row", "timeseries", "stat", "gauge", "table", "bargauge"]},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "datasource": DATASOURCE,
        "gridPos": GRID,
        "targets": {"type": "array", "items": TARGET, "minItems": 1},
        "fieldConfig": {
            "type": "object",
            "required": ["defaults", "overrides"],
            "properties": {"defaults": {"type": "object"}, "overrides": {"type": "array"}},
        },
        "options": {"type": "object"},
        "collapsed": {"type": "boolean"},
        "panels": {"type": "array"},
    },
    "additionalProperties": False,
    "if": {"properties": {"type": {"not": {"const": "row"}}}},
    "then": {"required": ["targets", "datasource"]},
}
DASHBOARD = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string"},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "panels": {"type": "array", "items": PANEL, "minItems": 1},
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {
                "list": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type"],
                        "properties": {
                            "type": {"enum": ["datasource", "query", "custom", "textbox"]}
                        },
                    },
                }
            },
        },
        "time": {"type": "object", "required": ["from", "to"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


@pytest.fixture(scope="module")
def bundle() -> MonitoringBundle:
    return load_bundle()


def dashboard_exprs(bundle: MonitoringBundle) -> Iterator[tuple[str, str]]:
    for name, dash in bundle.dashboards.items():
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                yield f"{name}/{panel['title']}", target["expr"]
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                # Grafana's label_values(SELECTOR, LABEL): the selector is the PromQL part.
                match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"])
                assert match, var
                yield f"{name}/${var['name']}", match.group(1)


def rules(bundle: MonitoringBundle) -> list[dict[str, Any]]:
    return [r for g in bundle.prometheus_rule["spec"]["groups"] for r in g["rules"]]


def all_exprs(bundle: MonitoringBundle) -> list[tuple[str, str]]:
    out = list(dashboard_exprs(bundle))
    out += [(r.get("alert") or r["record"], r["expr"]) for r in rules(bundle)]
    out += [(f"adapter {a['name']['as']}", a["seriesQuery"]) for a in bundle.adapter_rules["rules"]]
    return out


def test_dashboards_are_valid_grafana_dashboards(bundle: MonitoringBundle) -> None:
    assert set(bundle.dashboards) == {"nim-serving", "gpu-cost"}
    uids = set()
    for dash in bundle.dashboards.values():
        jsonschema.Draft7Validator(DASHBOARD).validate(dash)
        uids.add(dash["uid"])
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), "panel ids must be unique"
        variables = {v["name"] for v in dash["templating"]["list"]}
        cells: set[tuple[int, int]] = set()
        for panel in dash["panels"]:
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24, panel["title"]
            area = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not area & cells, f"{panel['title']} overlaps another panel"
            cells |= area
            used = set(re.findall(r"\$\{?(\w+)", str(panel)))
            assert used <= variables | GRAFANA_BUILTINS, (panel["title"], used - variables)
    assert len(uids) == len(bundle.dashboards)


def test_every_metric_is_one_nim_or_dcgm_exposes(bundle: MonitoringBundle) -> None:
    recorded = {r["record"] for r in rules(bundle) if "record" in r}
    assert recorded and all(name.startswith("nimble_oke:") for name in recorded)
    allowed = NIM_METRICS | DCGM_METRICS | recorded
    for where, expr in all_exprs(bundle):
        names = metric_names(expr)
        assert names, (where, expr)
        assert names <= allowed, f"{where}: unknown metric(s) {sorted(names - allowed)}"


def test_dashboards_cover_latency_throughput_queue_kv_gpu_and_cost(
    bundle: MonitoringBundle,
) -> None:
    used = set()
    for _, expr in dashboard_exprs(bundle):
        used |= metric_names(expr)
    assert {
        "time_to_first_token_seconds_bucket", "time_per_output_token_seconds_bucket",
        "e2e_request_latency_seconds_bucket", "generation_tokens_total",
        "num_requests_running", "num_requests_waiting", "gpu_cache_usage_perc",
        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "nimble_oke:gpu_cost_usd_per_hour",
    } <= used  # fmt: skip


def test_rules_are_well_formed(bundle: MonitoringBundle) -> None:
    rule = bundle.prometheus_rule
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert len(names) == len(set(names))
    for r in rules(bundle):
        assert ("alert" in r) != ("record" in r), r
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", r.get("record", "x"))
        if "alert" in r:
            assert re.fullmatch(r"[A-Za-z]+", r["alert"])
            assert r["labels"]["severity"] in {"info", "warning", "critical"}
            assert re.fullmatch(r"\d+[smh]", r["for"]) and r["annotations"]["summary"]
        assert r["expr"].count("(") == r["expr"].count(")"), r
    adapter_hpa = {a["name"]["as"] for a in bundle.adapter_rules["rules"]}
    # The chart's HPA (hpa.metric: nim) reads these two Pods metrics by name.
    assert {"num_requests_waiting", "gpu_cache_usage_perc"} <= adapter_hpa
    for a in bundle.adapter_rules["rules"]:
        assert set(a["resources"]["overrides"]) == {"namespace", "pod"}
        assert "<<.Series>>" in a["metricsQuery"] and "<<.LabelMatchers>>" in a["metricsQuery"]


def test_cost_rule_uses_the_catalog_prices(bundle: MonitoringBundle) -> None:
    catalog = load_catalog()
    cost = next(r for r in rules(bundle) if r.get("record") == "nimble_oke:gpu_cost_usd_per_hour")
    terms = re.findall(r'modelName=~"([^"]+)"\}\) \* ([0-9.]+)', cost["expr"])
    priced = {pattern: float(usd) for pattern, usd in terms}
    # DCGM's modelName for each catalog GPU (as nvidia-smi names them on OCI shapes).
    dcgm_names = {
        "A10": "NVIDIA A10", "A100-40GB": "NVIDIA A100-SXM4-40GB",
        "A100-80GB": "NVIDIA A100-SXM4-80GB", "H100": "NVIDIA H100 80GB HBM3",
        "L40S": "NVIDIA L40S", "V100": "Tesla V100-SXM2-16GB", "P100": "Tesla P100-SXM2-16GB",
    }  # fmt: skip
    for shape in catalog.shapes.values():
        matches = [p for p in priced if re.fullmatch(p, dcgm_names[shape.gpu_model])]
        assert len(matches) == 1, (shape.gpu_model, matches)
        assert priced[matches[0]] == pytest.approx(catalog.hourly(shape.price_key)), shape.name


@pytest.mark.anyio
async def test_nim_metric_names_are_served_by_a_nim(
    bundle: MonitoringBundle, tmp_path: Any
) -> None:
    used = set()
    for _, expr in all_exprs(bundle):
        used |= metric_names(expr) & NIM_METRICS
    settings = NimSettings.from_env(
        {"NIM_CACHE_PATH": str(tmp_path), "NGC_API_KEY": throwaway_key()},
        model=TINY_MODEL,
        time_scale=5000,
    )
    emu = NimEmulator(settings)
    port = await emu.start()
    try:
        assert await emu.wait_ready(10) == "ready"
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            body = {"model": TINY_MODEL, "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 8}  # fmt: skip
            async with http.post("/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
            async with http.get("/v1/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
    finally:
        await emu.stop()
    served = {sample.name for sample in parse_prometheus(text)}
    assert used <= served, sorted(used - served)


def test_otel_collector_pipelines_reference_defined_components() -> None:
    from nimble_oke.services.monitoring import bundle_dir

    config = yaml.safe_load((bundle_dir() / "otel-collector.yaml").read_text(encoding="utf-8"))
    service = config["service"]
    assert set(service["pipelines"]) == {"traces", "metrics"}
    for pipeline in service["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline[section]:
                assert component in config[section], (section, component)
    assert set(service["extensions"]) <= set(config["extensions"])
    # The chart's default OTLP endpoint is this collector's gRPC receiver.
    chart = yaml.safe_load((bundle_dir().parents[1] / "charts/nimble-nim/values.yaml").read_text())
    port = chart["monitoring"]["otel"]["endpoint"].rsplit(":", 1)[1]
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(f":{port}")
