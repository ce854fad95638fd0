# mypy: disable-error-code="union-attr,index,operator,arg-type"
# (lightkube models type every field Optional; the tests read fields the server always sets)
"""Dynamic provisioning, one outcome each, through lightkube: the PersistentVolume the OCI
block volume CSI provisioner writes, a legacy (non-CSI) class, a ReadWriteMany claim the
CSI driver refuses, a provisioner that fails, and a claim deleted while its volume is being
created (the volume is deleted, no PV is left)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubesim_helpers import apply_yaml, events, wait_for
from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.kube.provisioners import VolumeRequest

CSI = "blockvolume.csi.oraclecloud.com"
IMMEDIATE_BV = f"""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: bv-now}}
provisioner: {CSI}
reclaimPolicy: Retain
volumeBindingMode: Immediate
"""


def _claim(size: str = "20Gi", sc: str = "bv-now", mode: str = "ReadWriteOnce") -> str:
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: cache, namespace: default}}
spec:
  storageClassName: {sc}
  accessModes: [{mode}]
  resources: {{requests: {{storage: {size}}}}}
"""


def _bound(client: Client) -> PersistentVolumeClaim:
    def probe() -> PersistentVolumeClaim | None:
        pvc = client.get(PersistentVolumeClaim, "cache")
        return pvc if pvc.status and pvc.status.phase == "Bound" else None

    return wait_for(probe, what="bound PVC")


def _pv_events(client: Client, reason: str) -> list[tuple[str, str, str]]:
    return [
        (e.type, e.message, e.source.component)
        for e in events(client, reason=reason)
        if e.involvedObject.kind == "PersistentVolumeClaim"
    ]


def test_the_csi_provisioner_writes_the_block_volume_pv(
    kube: KubeSimulator, client: Client
) -> None:
    apply_yaml(client, IMMEDIATE_BV)
    apply_yaml(client, _claim())
    pvc = _bound(client)
    pv = client.get(PersistentVolume, pvc.spec.volumeName).to_dict()
    assert re.fullmatch(r"csi-[0-9a-f-]{36}", pv["metadata"]["name"])
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == CSI
    handle = pv["spec"]["csi"]["volumeHandle"]
    assert handle.startswith("ocid1.volume.")
    spec = {k: v for k, v in pv["spec"].items() if k != "claimRef"}
    assert spec == {
        "capacity": {"storage": "50Gi"},  # OCI's 50 GB minimum
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "bv-now",
        "volumeMode": "Filesystem",
        "csi": {
            "driver": CSI,
            "volumeHandle": handle,
            "fsType": "ext4",
            "volumeAttributes": {"vpusPerGB": "10"},
        },
    }  # no node affinity: an Immediate class provisions before any node is known
    assert pv["spec"]["claimRef"]["name"] == "cache"
    assert pvc.status.capacity == {"storage": "50Gi"}
    component = f"{CSI}_csi-oci-controller"
    assert _pv_events(client, "Provisioning") == [
        (
            "Normal",
            'External provisioner is provisioning volume for claim "default/cache"',
            component,
        )
    ]
    assert _pv_events(client, "ProvisioningSucceeded") == [
        ("Normal", f"Successfully provisioned volume {pv['metadata']['name']}", component)
    ]


def test_a_legacy_class_gets_a_local_volume_of_the_requested_size(
    kube: KubeSimulator, client: Client
) -> None:
    apply_yaml(client, _claim(size="1Gi", sc="oci"))
    pvc = _bound(client)
    pv = client.get(PersistentVolume, pvc.spec.volumeName).to_dict()
    csi = pv["spec"]["csi"]
    assert re.fullmatch(r"local-[0-9a-f]{32}", csi["volumeHandle"])
    assert (csi["driver"], csi["volumeAttributes"]) == ("oracle.com/oci", {"vpusPerGB": "10"})
    assert pv["spec"]["capacity"] == {"storage": "1Gi"}  # no rounding up
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert "nodeAffinity" not in pv["spec"]
    assert [c for _, _, c in _pv_events(client, "ProvisioningSucceeded")] == [
        "oracle.com/oci_csi-oci-controller"
    ]


def test_read_write_many_is_refused_by_the_csi_driver(kube: KubeSimulator, client: Client) -> None:
    apply_yaml(client, IMMEDIATE_BV)
    apply_yaml(client, _claim(mode="ReadWriteMany"))
    refused = wait_for(lambda: _pv_events(client, "ProvisioningFailed"), what="refusal")
    assert refused == [
        (
            "Warning",
            'failed to provision volume with StorageClass "bv-now": rpc error: code = '
            "InvalidArgument desc = invalid volume capabilities requested. Only "
            "SINGLE_NODE_WRITER is supported ('accessModes.ReadWriteOnce' on Kubernetes)",
            f"{CSI}_csi-oci-controller",
        )
    ]
    assert client.get(PersistentVolumeClaim, "cache").status.phase == "Pending"
    assert list(client.list(PersistentVolume)) == []


class _Gated:
    """A CSI back end that creates a volume once the test opens the gate, and records
    the volumes it deletes; it fails every create if ``error`` is set."""

    def __init__(self, error: str | None = None) -> None:
        self.gate = threading.Event()
        self.error = error
        self.requests: list[VolumeRequest] = []
        self.deleted: list[str] = []

    async def create_volume(self, request: VolumeRequest) -> str:
        self.requests.append(request)
        if self.error:
            raise RuntimeError(self.error)
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        return f"ocid1.volume.oc1.iad.{len(self.requests)}"

    async def delete_volume(self, volume_id: str) -> None:
        self.deleted.append(volume_id)


@pytest.fixture
def gated(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[_Gated, Client]]:
    backend = _Gated(error=getattr(request, "param", None))
    with KubeSimulator(tmp_path / "k", SimClock(600), volume_provisioner=backend) as kube:
        config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kc"))
        with Client(config, field_manager="t") as client:
            yield backend, client
        backend.gate.set()


@pytest.mark.parametrize("gated", ["quota exceeded"], indirect=True)
def test_a_failing_provisioner_is_reported_on_the_claim(gated: tuple[_Gated, Client]) -> None:
    backend, client = gated
    apply_yaml(client, IMMEDIATE_BV)
    apply_yaml(client, _claim())
    failed = wait_for(lambda: _pv_events(client, "ProvisioningFailed"), what="failure")
    assert failed[0] == (
        "Warning",
        "failed to provision volume: quota exceeded",
        f"{CSI}_csi-oci-controller",
    )
    assert backend.requests[0].size_bytes == 50 * 2**30
    assert client.get(PersistentVolumeClaim, "cache").status.phase == "Pending"
    assert list(client.list(PersistentVolume)) == []


def test_a_claim_deleted_while_provisioning_takes_its_volume_along(
    gated: tuple[_Gated, Client],
) -> None:
    backend, client = gated
    apply_yaml(client, IMMEDIATE_BV)
    apply_yaml(client, _claim())
    wait_for(lambda: backend.requests, what="create_volume called")
    client.delete(PersistentVolumeClaim, "cache")
    wait_for(lambda: not list(client.list(PersistentVolumeClaim)), what="claim gone")
    backend.gate.set()
    wait_for(lambda: backend.deleted, what="volume deleted")
    assert backend.deleted == ["ocid1.volume.oc1.iad.1"]
    assert list(client.list(PersistentVolume)) == []
    assert _pv_events(client, "ProvisioningSucceeded") == []
