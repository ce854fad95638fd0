"""The model cache kept between sessions (``down --keep-cache``).

A kept cache is a block volume the session's journal marks ``kept``. The next ``up`` puts
the GPU pool in its AD, raises its performance online to the session's VPUs while the GPU
node provisions (off the critical path), and binds it through a static PersistentVolume, so
NIM skips the download. Between sessions it rests at ``cache.kept_vpus_per_gb`` (Lower Cost
by default): OCI changes a volume's performance online and keeps its data, so paying for
speed only while a GPU waits on it is free of risk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import rerated_volume_meters
from nimble_oke.services.targets import Target
from nimble_oke.state.store import StateStore

Say = Callable[[str], None]

KEPT_CLAIM_LABEL = {"app.kubernetes.io/name": "nimble-cache"}
OCI_BV_DRIVER = "blockvolume.csi.oraclecloud.com"


def _kept_volumes(target: Target, store: StateStore, session: str) -> list[Any]:
    kept = [r for r in store.resources(session, live_only=True) if r.kind == "volume" and r.kept]
    return [r for r in kept if target.provider.state("volume", r.resource_id) is not None]


def kept_cache_ad(target: Target, store: StateStore, session: str) -> str | None:
    kept = _kept_volumes(target, store, session)
    return target.provider.volume_availability_domain(kept[-1].resource_id) if kept else None


def attach_kept_cache(
    client: Any,
    cfg: NimbleConfig,
    target: Target,
    store: StateStore,
    session: str,
    placement_ad: str | None = None,
) -> str | None:
    """Reuse a model-cache volume kept by ``down --keep-cache``: a static PersistentVolume
    for the block volume (by OCID) and a claim bound to it; returns the claim's name.

    The volume keeps its data, so NIM finds the model and skips the download. A re-run of
    ``up`` finds the claim an earlier run bound and keeps using it (the journal no longer
    marks the volume kept once it is attached)."""
    if cfg.cache.mode == "object-storage":
        return None
    kept = _kept_volumes(target, store, session)
    if not kept:
        return _bound_kept_claim(client, cfg, session)
    volume_ad = target.provider.volume_availability_domain(kept[-1].resource_id)
    if placement_ad and volume_ad and volume_ad != placement_ad:
        store.event(
            session,
            "WARNING",
            f"kept cache volume is in {volume_ad}, the GPU pool landed in {placement_ad}: "
            "a block volume attaches only within its AD, so this run fills a new cache",
        )
        return None
    from lightkube import codecs

    from nimble_oke.kube.deploy import FIELD_MANAGER, SESSION_LABEL

    volume = kept[-1]
    _forget_released_volume(client, volume.resource_id)
    name = f"{session}-kept-cache"
    labels = {**KEPT_CLAIM_LABEL, SESSION_LABEL: session}
    size = f"{cfg.cache.size_gb}Gi"
    storage_class = f"{session}-cache"
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain" if cfg.cache.keep else "Delete",
            "storageClassName": storage_class,
            "csi": {
                "driver": OCI_BV_DRIVER,
                "volumeHandle": volume.resource_id,
                "fsType": "ext4",
                # the volume's performance level (a property of the block volume itself)
                "volumeAttributes": {"vpusPerGB": str(cfg.cache.vpus_per_gb)},
            },
            "claimRef": {"namespace": cfg.nim.namespace, "name": name},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": cfg.nim.namespace, "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "volumeName": name,
            "resources": {"requests": {"storage": size}},
        },
    }
    for manifest in (pv, pvc):
        client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)
    store.mark_kept(session, "volume", volume.resource_id, kept=False)
    store.event(session, "INFO", f"attached kept cache volume {volume.resource_id} as claim {name}")
    return name


def hold_kept_claim(client: Any, claim: str | None) -> str | None:
    """Before a failed ``up`` deletes its namespace: the kept volume behind ``claim`` (the
    one :func:`attach_kept_cache` bound) is switched to Retain so it outlives its claim.
    Returns the volume's OCID, or None when there is no such claim."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import PersistentVolume

    if claim is None:
        return None
    try:
        pv = client.get(PersistentVolume, claim)
    except ApiError:
        return None
    client.patch(PersistentVolume, claim, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
    csi = pv.spec.csi if pv.spec else None
    return str(csi.volumeHandle) if csi is not None else None


def _bound_kept_claim(client: Any, cfg: NimbleConfig, session: str) -> str | None:
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    name = f"{session}-kept-cache"
    try:
        client.get(PersistentVolumeClaim, name, namespace=cfg.nim.namespace)
    except ApiError:
        return None
    return name


def _forget_released_volume(client: Any, volume_id: str) -> None:
    """In a kept (standby) cluster the volume's old PersistentVolume is still there,
    Released with policy Retain: remove the object (the volume stays) so one PV, bound to
    the new claim, points at the volume."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import PersistentVolume

    for pv in client.list(PersistentVolume):
        csi = pv.spec.csi if pv.spec else None
        phase = pv.status.phase if pv.status else None
        if csi is not None and csi.volumeHandle == volume_id and phase == "Released":
            name = pv.metadata.name if pv.metadata else ""
            with contextlib.suppress(ApiError):
                client.delete(PersistentVolume, name)


def retain_cache_volume(client: Any, cfg: NimbleConfig) -> list[str]:
    """Before deleting the deployment with ``--keep-cache``: switch the cache volumes'
    reclaim policy to Retain so deleting their claims does not delete the block volumes."""
    from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim

    retained = []
    for pvc in client.list(PersistentVolumeClaim, namespace=cfg.nim.namespace):
        volume = pvc.spec.volumeName if pvc.spec else None
        if not volume:
            continue
        client.patch(
            PersistentVolume, volume, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}}
        )
        retained.append(volume)
    return retained


def _set_performance(
    target: Target, store: StateStore, session: str, volume_id: str, vpus_per_gb: int
) -> int | None:
    """Change the volume's VPUs online and re-rate its meters; the previous level, or None
    when nothing changed (already there, or the volume is gone)."""
    current = target.provider.volume_performance(volume_id)
    if current is None or current[1] == vpus_per_gb:
        return None
    target.provider.set_volume_performance(volume_id, vpus_per_gb)
    for record in store.resources(session, live_only=True):
        if record.kind == "volume" and record.resource_id == volume_id:
            meters = rerated_volume_meters(record.meters, vpus_per_gb, store.now())
            store.set_meters(session, "volume", volume_id, meters)
    store.event(
        session,
        "INFO",
        f"volume {volume_id} performance {current[1]} -> {vpus_per_gb} VPU/GB (online)",
    )
    return current[1]


def set_volume_level(
    target: Target, store: StateStore, session: str, volume_id: str, vpus_per_gb: int
) -> int | None:
    """Change a (live or kept) volume's VPUs online and re-rate its journal meters; the
    previous level, or None when nothing changed. (Hibernate rests and raises the attached
    cache volume with it.)"""
    return _set_performance(target, store, session, volume_id, vpus_per_gb)


def tune_kept_volume(
    cfg: NimbleConfig, target: Target, store: StateStore, session: str, say: Say
) -> None:
    """Before the GPU pool is created: bring the kept volume to the session's performance,
    so the weights load at the speed the plan counted on."""
    if cfg.cache.mode == "object-storage":
        return
    kept = _kept_volumes(target, store, session)
    if not kept:
        return
    before = _set_performance(target, store, session, kept[-1].resource_id, cfg.cache.vpus_per_gb)
    if before is not None:
        say(
            f"cache       kept volume {before} -> {cfg.cache.vpus_per_gb} VPU/GB online "
            "(while the GPU pool provisions)"
        )


def rest_kept_volumes(
    cfg: NimbleConfig, target: Target, store: StateStore, session: str, say: Say
) -> None:
    """After ``down --keep-cache``: the kept volume rests at ``cache.kept_vpus_per_gb``."""
    for record in _kept_volumes(target, store, session):
        before = _set_performance(
            target, store, session, record.resource_id, cfg.cache.kept_vpus_per_gb
        )
        if before is not None:
            say(
                f"keeping the model cache at {cfg.cache.kept_vpus_per_gb} VPU/GB "
                f"(was {before}) until the next up"
            )
