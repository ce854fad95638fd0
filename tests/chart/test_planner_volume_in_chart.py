"""The planner's cache volume choice reaches the rendered StorageClass and claim."""

from __future__ import annotations

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.kube.render import render_chart
from nimble_oke.services.values import chart_values


def _render(cache: dict[str, object]) -> tuple[dict, dict, object]:  # type: ignore[type-arg]
    cfg = build_config({"cluster": {"name": "vol"}, "budget": {"max_hours": 4}, "cache": cache})
    plan = build_plan(cfg, load_catalog())
    manifests = render_chart(chart_values(cfg, plan, session="vol"), release="vol", namespace="nim")
    sc = next(m for m in manifests if m["kind"] == "StorageClass")
    pvc = next(m for m in manifests if m["kind"] == "PersistentVolumeClaim")
    return sc, pvc, plan


def test_storage_class_and_claim_carry_the_planners_choice() -> None:
    sc, pvc, plan = _render({})
    chosen = plan.volume_chosen  # type: ignore[attr-defined]
    assert chosen is not None
    assert sc["parameters"]["vpusPerGB"] == str(chosen.vpus_per_gb)
    assert pvc["spec"]["resources"]["requests"]["storage"] == f"{chosen.size_gb}Gi"


def test_the_users_volume_settings_win() -> None:
    sc, pvc, plan = _render({"size_gb": 300, "vpus_per_gb": 30})
    assert plan.volume_chosen is None  # type: ignore[attr-defined]
    assert sc["parameters"]["vpusPerGB"] == "30"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "300Gi"
