"""PersistentVolumeClaims: dynamic provisioning by StorageClass (OCI Block Volume CSI via a
:class:`VolumeProvisioner`), binding, WaitForFirstConsumer, and reclaim on delete.

Every volume's data is a real directory under ``state_dir/volumes/<volume handle>``, so it
survives pod restarts and, when retained, uninstalls: that is the model cache."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import uuid
from typing import Any

from . import quantity
from .admission import PVC_PROTECTION
from .cluster import NODES, PODS, PVCS, PVS, STORAGE_CLASSES, Cluster
from .provisioners import OCI_BV_PROVISIONER, VolumeRequest
from .resources import ResourceType
from .store import Obj

log = logging.getLogger(__name__)

TAGS_ANNOTATION = "oci.oraclecloud.com/initial-freeform-tags-override"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# OCI block volumes are at least 50 GB; the CSI driver rounds smaller claims up
# (OCI block volume docs: minimum volume size 50 GB).
OCI_BV_MIN_BYTES = 50 * 2**30
# Zone label keys, new and deprecated (k8s.io/api core/v1 LabelTopologyZone and
# LabelZoneFailureDomain): the topology the OCI CSI driver reports for a block volume.
ZONE_KEYS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
# Default VPUs/GB = Balanced (calibration.md, "block volume Balanced (10 VPU/GB, default)").
DEFAULT_VPUS_PER_GB = 10


def default_storage_classes() -> list[Obj]:
    """What an OKE cluster ships: ``oci-bv`` (CSI, default) and the legacy ``oci``."""
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "oci-bv", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "provisioner": OCI_BV_PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": True,
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "oci"},
            "provisioner": "oracle.com/oci",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
    ]


def block_volume_bytes_per_s(size_bytes: int, vpus_per_gb: int) -> float:
    """Throughput of an OCI block volume (calibration.md, "OCI timings and storage"):
    Balanced (10 VPU/GB) 480 KB/s per GB up to 480 MB/s; Higher Performance (20) 600 KB/s
    per GB up to 480 MB/s; Ultra High Performance at 120 VPU 1,800 KB/s per GB up to
    2,680 MB/s (linear in between). Below 10 VPU (Lower Cost) assume half of Balanced."""
    if vpus_per_gb < 10:
        per_gb_kb, cap_mb = 240.0, 480.0
    elif vpus_per_gb < 20:
        per_gb_kb, cap_mb = 480.0 + (vpus_per_gb - 10) * 12.0, 480.0
    else:
        vpus = min(vpus_per_gb, 120)
        per_gb_kb, cap_mb = 600.0 + (vpus - 20) * 12.0, 480.0 + (vpus - 20) * 22.0
    size_gb = size_bytes / 2**30
    return min(per_gb_kb * 1e3 * size_gb, cap_mb * 1e6)


def zone_node_affinity(zone: str) -> Obj:
    """The PV node affinity of an OCI block volume in availability domain ``zone``.

    The OCI CSI driver's CreateVolume answers with two accessible topologies, one per zone
    label key, each with the AD's short name (``Uocm:US-ASHBURN-AD-1`` -> ``US-ASHBURN-AD-1``,
    the value of the nodes' zone labels); the external provisioner turns them into two ORed
    node selector terms (oracle/oci-cloud-controller-manager, pkg/csi/driver/bv_controller.go).
    A block volume attaches only to instances in its own AD."""
    short = zone.rsplit(":", maxsplit=1)[-1]
    return {
        "required": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": key, "operator": "In", "values": [short]}]}
                for key in ZONE_KEYS
            ]
        }
    }


def is_single_node_volume(pv: Obj) -> bool:
    """An OCI block volume attaches to one node at a time (SINGLE_NODE_WRITER: the CSI
    driver supports ReadWriteOnce only)."""
    csi = pv["spec"].get("csi") or {}
    modes = set(pv["spec"].get("accessModes") or ["ReadWriteOnce"])
    return csi.get("driver") == OCI_BV_PROVISIONER and not modes & {
        "ReadWriteMany",
        "ReadOnlyMany",
    }


def pv_bytes_per_s(pv: Obj) -> float | None:
    """Throughput of an OCI block-volume-backed PV (None for other volume types)."""
    csi = pv["spec"].get("csi") or {}
    if csi.get("driver") != OCI_BV_PROVISIONER:
        return None
    size = int(quantity.parse((pv["spec"].get("capacity") or {}).get("storage", "50Gi")))
    vpus = int((csi.get("volumeAttributes") or {}).get("vpusPerGB", DEFAULT_VPUS_PER_GB))
    return block_volume_bytes_per_s(size, vpus)


def _provisioned_pv(pvc: Obj, sc: Obj, handle: str, size: int, vpus: int, zone: str | None) -> Obj:
    """The PersistentVolume the external provisioner writes for a new volume."""
    provisioner = str(sc.get("provisioner", ""))
    pv: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"csi-{uuid.uuid4()}",
            "annotations": {"pv.kubernetes.io/provisioned-by": provisioner},
        },
        "spec": {
            "capacity": {"storage": quantity.format_bytes(size)},
            "accessModes": pvc["spec"].get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
            "storageClassName": sc["metadata"]["name"],
            "volumeMode": pvc["spec"].get("volumeMode", "Filesystem"),
            "csi": {
                "driver": provisioner,
                "volumeHandle": handle,
                "fsType": "ext4",
                "volumeAttributes": {"vpusPerGB": str(vpus)},
            },
        },
        "status": {"phase": "Available"},
    }
    if provisioner == OCI_BV_PROVISIONER and zone:
        pv["spec"]["nodeAffinity"] = zone_node_affinity(str(zone))
    return pv


class VolumeController:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._waiting_announced: set[str] = set()
        self._deletions: set[asyncio.Task[None]] = set()
        self._reported: set[tuple[str, str]] = set()
        cluster.api.delete_hooks.append(self._on_delete)

    def _storage_class(self, pvc: Obj) -> Obj | None:
        name = pvc["spec"].get("storageClassName")
        if name:
            return self.c.store.get(STORAGE_CLASSES, "", name)
        if name == "":
            return None
        for sc in self.c.store.list(STORAGE_CLASSES):
            if (sc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                return sc
        return None

    def _consumer_node(self, pvc: Obj) -> str | None:
        ns, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        for pod in self.c.store.list(PODS, ns):
            node = pod["spec"].get("nodeName")
            if not node:
                continue
            for vol in pod["spec"].get("volumes") or []:
                if (vol.get("persistentVolumeClaim") or {}).get("claimName") == name:
                    return str(node)
        return None

    def _in_use(self, pvc: Obj) -> bool:
        ns, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        return any(
            (vol.get("persistentVolumeClaim") or {}).get("claimName") == name
            for pod in self.c.store.list(PODS, ns)
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            for vol in pod["spec"].get("volumes") or []
        )

    def reconcile(self) -> None:
        for pvc in self.c.store.list(PVCS):
            meta = pvc["metadata"]
            uid = meta["uid"]
            if meta.get("deletionTimestamp") and not self._in_use(pvc):
                self.c.api.remove_finalizer(PVCS, meta["namespace"], meta["name"], PVC_PROTECTION)
                continue
            if (pvc.get("status") or {}).get("phase") != "Pending" or uid in self._tasks:
                continue
            if meta.get("deletionTimestamp"):
                continue
            if pvc["spec"].get("volumeName"):
                self._bind_static(pvc)
                continue
            sc = self._storage_class(pvc)
            if sc is None:
                continue
            node = None
            if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                node = self._consumer_node(pvc)
                if node is None:
                    if uid not in self._waiting_announced:
                        self._waiting_announced.add(uid)
                        self.c.events.record(
                            pvc,
                            "WaitForFirstConsumer",
                            "waiting for first consumer to be created before binding",
                            component="persistentvolume-controller",
                        )
                    continue
            self._tasks[uid] = asyncio.create_task(self._provision(pvc, sc, node))

    def _bind_static(self, pvc: Obj) -> None:
        pv = self.c.store.get(PVS, "", pvc["spec"]["volumeName"])
        if pv is None:
            return
        claim = pv["spec"].get("claimRef") or {}
        meta = pvc["metadata"]
        if claim and (claim.get("name"), claim.get("namespace")) != (
            meta["name"],
            meta["namespace"],
        ):
            return
        problem = self._mismatch(pvc, pv)
        if problem:
            self._report_once(
                pvc,
                "FailedBinding",
                f'Cannot bind to requested volume "{pv["metadata"]["name"]}": {problem}',
            )
            return
        self._bind(pvc, pv)

    def _mismatch(self, pvc: Obj, pv: Obj) -> str | None:
        """Why ``pv`` cannot serve ``pvc`` (the persistent volume controller's checks)."""
        wanted = ((pvc["spec"].get("resources") or {}).get("requests") or {}).get("storage")
        have = (pv["spec"].get("capacity") or {}).get("storage")
        if wanted and have and quantity.parse(have) < quantity.parse(wanted):
            return "requested PV is too small"
        modes = set(pv["spec"].get("accessModes") or [])
        if not set(pvc["spec"].get("accessModes") or []) <= modes:
            return "incompatible accessMode"
        pvc_class = pvc["spec"].get("storageClassName")
        if pvc_class and pvc_class != pv["spec"].get("storageClassName", ""):
            return "storageClassName does not match"
        return None

    def _report_once(self, pvc: Obj, reason: str, message: str) -> None:
        key = (pvc["metadata"]["uid"], message)
        if key not in self._reported:
            self._reported.add(key)
            self.c.events.record(
                pvc, reason, message, type_="Warning", component="persistentvolume-controller"
            )

    def _bind(self, pvc: Obj, pv: Obj) -> None:
        meta = pvc["metadata"]
        claim_ref = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        }

        def bind_pv(o: Obj) -> None:
            o["spec"]["claimRef"] = claim_ref
            o.setdefault("status", {})["phase"] = "Bound"

        self.c.store.mutate(PVS, "", pv["metadata"]["name"], bind_pv)
        capacity = pv["spec"].get("capacity") or {}

        def bind_pvc(o: Obj) -> None:
            o["spec"]["volumeName"] = pv["metadata"]["name"]
            annotations = o["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations.setdefault("pv.kubernetes.io/bound-by-controller", "yes")
            o["status"] = {
                "phase": "Bound",
                "accessModes": pv["spec"].get("accessModes", []),
                "capacity": capacity,
            }

        self.c.store.mutate(PVCS, meta["namespace"], meta["name"], bind_pvc)

    def _tags(self, pvc: Obj, sc: Obj) -> dict[str, str]:
        tags: dict[str, str] = {}
        for source in (sc, pvc):
            raw = (source["metadata"].get("annotations") or {}).get(TAGS_ANNOTATION)
            if raw:
                with contextlib.suppress(ValueError, AttributeError):
                    tags.update({str(k): str(v) for k, v in json.loads(raw).items()})
        return tags

    async def _provision(self, pvc: Obj, sc: Obj, node: str | None) -> None:
        """The external provisioner's work for one claim; any failure is an event on it."""
        meta = pvc["metadata"]
        component = f"{sc.get('provisioner', '')}_csi-oci-controller"
        try:
            await self._provision_claim(pvc, sc, node, component)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("provisioning %s/%s", meta["namespace"], meta["name"])
            self.c.events.record(
                pvc,
                "ProvisioningFailed",
                f"failed to provision volume: {exc}",
                type_="Warning",
                component=component,
            )
        finally:
            self._tasks.pop(meta["uid"], None)
            self.c.nudge()

    async def _provision_claim(self, pvc: Obj, sc: Obj, node: str | None, component: str) -> None:
        """Create the volume, then its PV bound to the claim (if the claim still exists;
        if not, the new volume is deleted again)."""
        meta = pvc["metadata"]
        provisioner = str(sc.get("provisioner", ""))
        self.c.events.record(
            pvc,
            "Provisioning",
            f"External provisioner is provisioning volume for claim "
            f'"{meta["namespace"]}/{meta["name"]}"',
            component=component,
        )
        size = int(
            quantity.parse(
                ((pvc["spec"].get("resources") or {}).get("requests") or {}).get("storage", 0)
            )
        )
        params: dict[str, Any] = sc.get("parameters") or {}
        vpus = int(params.get("vpusPerGB", DEFAULT_VPUS_PER_GB))
        zone: str | None = None
        if provisioner == OCI_BV_PROVISIONER:
            size = max(size, OCI_BV_MIN_BYTES)
            created_volume = await self._create_block_volume(pvc, sc, node, size, vpus, component)
            if created_volume is None:
                return
            handle, zone = created_volume
        else:
            handle = f"local-{uuid.uuid4().hex}"
        current = self.c.store.get(PVCS, meta["namespace"], meta["name"])
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            if provisioner == OCI_BV_PROVISIONER:
                await self.c.volume_provisioner.delete_volume(handle)
            return
        self.c.volume_dir(handle)
        pv = _provisioned_pv(pvc, sc, handle, size, vpus, zone)
        created = self.c.store.create(PVS, pv)
        self._bind(current, created)
        self.c.events.record(
            current,
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {pv['metadata']['name']}",
            component=component,
        )

    async def _create_block_volume(
        self, pvc: Obj, sc: Obj, node: str | None, size: int, vpus: int, component: str
    ) -> tuple[str, str | None] | None:
        """(volume id, availability domain) from the OCI block volume back end, in the zone
        of the consuming node if there is one; None (a ProvisioningFailed event) for access
        modes the CSI driver cannot serve."""
        meta = pvc["metadata"]
        modes = pvc["spec"].get("accessModes") or ["ReadWriteOnce"]
        if "ReadWriteMany" in modes or "ReadOnlyMany" in modes:
            self.c.events.record(
                pvc,
                "ProvisioningFailed",
                f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}"'
                ": rpc error: code = InvalidArgument desc = invalid volume capabilities "
                "requested. Only SINGLE_NODE_WRITER is supported ('accessModes.ReadWrite"
                "Once' on Kubernetes)",
                type_="Warning",
                component=component,
            )
            return None
        zone: str | None = None
        if node:
            node_obj = self.c.store.get(NODES, "", node)
            zone = ((node_obj or {}).get("metadata", {}).get("labels") or {}).get(
                "topology.kubernetes.io/zone"
            )
        request = VolumeRequest(
            pvc_namespace=meta["namespace"],
            pvc_name=meta["name"],
            pvc_uid=meta["uid"],
            storage_class=sc["metadata"]["name"],
            size_bytes=size,
            vpus_per_gb=vpus,
            freeform_tags=self._tags(pvc, sc),
            availability_domain=zone,
        )
        return await self.c.volume_provisioner.create_volume(request), zone

    # --- reclaim ------------------------------------------------------------------------------
    def _on_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind == "PersistentVolumeClaim":
            self._waiting_announced.discard(obj["metadata"]["uid"])
            pv_name = obj["spec"].get("volumeName")
            pv = self.c.store.get(PVS, "", pv_name) if pv_name else None
            if pv is None:
                return
            if pv["spec"].get("persistentVolumeReclaimPolicy", "Delete") == "Delete":
                self._delete_pv(pv)
            else:

                def release(o: Obj) -> None:
                    o.setdefault("status", {})["phase"] = "Released"

                self.c.store.mutate(PVS, "", pv["metadata"]["name"], release)
        elif rt.kind == "PersistentVolume":
            self._reclaim(obj)

    def _delete_pv(self, pv: Obj) -> None:
        def unprotect(o: Obj) -> None:
            o["metadata"].pop("finalizers", None)

        name = pv["metadata"]["name"]
        self.c.store.mutate(PVS, "", name, unprotect)
        if self.c.store.get(PVS, "", name) is not None:
            self.c.api.remove(PVS, "", name)

    def _reclaim(self, pv: Obj) -> None:
        """A removed dynamically provisioned PV with policy Delete takes its volume along."""
        if pv["spec"].get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
            return
        provisioned_by = (pv["metadata"].get("annotations") or {}).get(
            "pv.kubernetes.io/provisioned-by"
        )
        handle = (pv["spec"].get("csi") or {}).get("volumeHandle")
        if not provisioned_by or not handle:
            return
        shutil.rmtree(self.c.volume_dir(str(handle)), ignore_errors=True)
        if provisioned_by == OCI_BV_PROVISIONER:
            task = asyncio.get_running_loop().create_task(
                self.c.volume_provisioner.delete_volume(str(handle))
            )
            self._deletions.add(task)
            task.add_done_callback(self._deletions.discard)

    async def close(self) -> None:
        """Cancel provisioning in flight; let volume deletions finish."""
        for task in self._tasks.values():
            task.cancel()
        pending = [*self._tasks.values(), *self._deletions]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
