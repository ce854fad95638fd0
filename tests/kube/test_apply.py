"""Server-side apply with pruning, and redeploying onto a retained model cache."""

from __future__ import annotations

import time
from typing import Any

import pytest
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod

from nimble_oke.kube.deploy import SESSION_LABEL, apply_manifests
from nimble_oke.services import watchdog

from .conftest import NAMESPACE, SESSION, Deployer, deployment

FEATURES_ON = {
    "monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "networkPolicy": {"enabled": True},
}
FEATURES_OFF = {
    "monitoring": {"serviceMonitor": {"enabled": False}, "prometheusRule": {"enabled": False}},
    "networkPolicy": {"enabled": False},
}


def names(d: Deployer, kind: str) -> set[str]:
    return {o["metadata"]["name"] for o in d.kube.objects(kind, NAMESPACE)}


def install_watchdog(d: Deployer) -> None:
    """What `nimble up` puts beside the chart: the watchdog's objects and its lease."""
    apply_manifests(
        d.client,
        watchdog.manifests(NAMESPACE, SESSION),
        session=SESSION,
        namespace=NAMESPACE,
        prune=False,
    )
    lease = watchdog.Lease(SESSION, "ocid1.nodepool.oc1.sim.x", 0.0, 3600.0, 10.0, 1.0)
    watchdog.write_lease(d.client, NAMESPACE, lease)


@pytest.mark.parametrize("keep", [True, False])
def test_switched_off_objects_are_pruned_kept_and_watchdog_survive(
    deployer: Deployer, keep: bool
) -> None:
    first = deployer.deploy({**FEATURES_ON, "cache": {"keep": keep}})
    claim = next(m for m in first if m["kind"] == "PersistentVolumeClaim")["metadata"]["name"]
    install_watchdog(deployer)
    assert names(deployer, "ServiceMonitor") and names(deployer, "PrometheusRule")
    assert names(deployer, "NetworkPolicy")
    assert watchdog.WATCHDOG_NAME in names(deployer, "ServiceAccount")

    # Switch the features off and stop rendering the claim (an existing claim is used).
    values = deployer.values({**FEATURES_OFF, "cache": {"existingClaim": claim, "keep": keep}})
    second = deployer.render(values)
    assert not {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PersistentVolumeClaim"} & {
        m["kind"] for m in second
    }
    result = deployer.apply(second)

    assert not names(deployer, "ServiceMonitor")
    assert not names(deployer, "PrometheusRule")
    assert not names(deployer, "NetworkPolicy")
    assert {k.split("/")[0] for k in result.pruned} >= {
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
    }
    # The watchdog is not rendered by the chart but must not be pruned.
    assert watchdog.WATCHDOG_NAME in names(deployer, "ServiceAccount")
    assert watchdog.LEASE_CONFIGMAP in names(deployer, "ConfigMap")
    assert not [p for p in result.pruned if watchdog.WATCHDOG_NAME in p]
    assert watchdog.lease_from_configmap(deployer.client, NAMESPACE) is not None
    # helm.sh/resource-policy: keep protects the claim; without it, it is pruned.
    pvc = [o for o in deployer.kube.objects("PersistentVolumeClaim", NAMESPACE)]
    if keep:
        assert f"PersistentVolumeClaim/{claim}" not in result.pruned
        assert [o["metadata"]["name"] for o in pvc] == [claim]
        assert not pvc[0]["metadata"].get("deletionTimestamp")
    else:
        assert f"PersistentVolumeClaim/{claim}" in result.pruned


def test_objects_of_another_session_are_not_pruned(deployer: Deployer) -> None:
    deployer.deploy(FEATURES_ON)
    other = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "other", "labels": {SESSION_LABEL: "someone-else"}},
        "data": {"a": "b"},
    }
    mine = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "stale"},
        "data": {"a": "b"},
    }
    apply_manifests(deployer.client, [other], session="someone-else", namespace=NAMESPACE)
    apply_manifests(deployer.client, [mine], session=SESSION, namespace=NAMESPACE, prune=False)
    result = deployer.apply(deployer.render(deployer.values(FEATURES_ON)))
    assert "ConfigMap/stale" in result.pruned
    assert names(deployer, "ConfigMap") >= {"other"}
    assert "stale" not in names(deployer, "ConfigMap")


def _gone(d: Deployer, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while list(d.client.list(Pod, namespace=NAMESPACE)):
        assert time.monotonic() < deadline, "the old pod did not go away"
        time.sleep(0.05)


def _nim_log(d: Deployer, pod: str) -> list[str]:
    return d.kube.logs(NAMESPACE, pod, "nim")


def test_redeploy_on_retained_cache_skips_the_download(deployer: Deployer) -> None:
    manifests = deployer.deploy({"cache": {"keep": True}})
    clock = deployer.kube.clock
    began = clock.now()
    cold = deployer.wait()
    cold_s = clock.now() - began
    assert [p for p, _ in cold.phases][-3:] == ["model download", "model load", "ready"]
    assert cold.downloaded

    name = deployment(manifests)["metadata"]["name"]
    deployer.client.delete(Deployment, name, namespace=NAMESPACE)
    _gone(deployer)
    assert names(deployer, "PersistentVolumeClaim")  # the cache volume stays

    began = clock.now()
    deployer.apply(manifests)
    warm = deployer.wait()
    warm_s = clock.now() - began
    assert "model download" not in [p for p, _ in warm.phases]
    assert not warm.downloaded
    assert warm.pod != cold.pod
    log: list[Any] = _nim_log(deployer, warm.pod)
    assert any("Model files found in cache" in line for line in log)
    assert not any("Downloading model files" in line for line in log)
    # 16 GB at 250 MB/s ≈ 64 s of download saved, at least (calibration.md).
    assert warm_s < cold_s - 60, (cold_s, warm_s)
