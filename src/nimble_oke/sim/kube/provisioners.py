"""Seams to the cloud: block volumes for PVCs, load balancers for Services, registry auth.

The defaults are local only. The OCI simulator (or real OCI) plugs in by implementing the
protocols and passing them to ``KubeSimulator(volume_provisioner=..., lb_provisioner=...)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from nimble_oke.ngc_keys import NGC_KEY_PREFIX

# The OCI Block Volume CSI driver (reference/oke.md, calibration.md).
OCI_BV_PROVISIONER = "blockvolume.csi.oraclecloud.com"


@dataclass
class VolumeRequest:
    """What the CSI provisioner is asked for (sizes in bytes, VPUs from the class)."""

    pvc_namespace: str
    pvc_name: str
    pvc_uid: str
    storage_class: str
    size_bytes: int
    vpus_per_gb: int
    freeform_tags: dict[str, str] = field(default_factory=dict)
    availability_domain: str | None = None


@dataclass
class LoadBalancerRequest:
    """A LoadBalancer Service, as OKE's cloud controller manager sees it."""

    namespace: str
    name: str
    uid: str
    ports: list[int]
    shape: str  # "flexible" or a fixed shape like "100Mbps"
    min_mbps: int | None
    max_mbps: int | None
    freeform_tags: dict[str, str] = field(default_factory=dict)


class VolumeProvisioner(Protocol):
    async def create_volume(self, request: VolumeRequest) -> str:
        """Create the volume and return its id (stored as the PV's csi.volumeHandle)."""
        ...

    async def delete_volume(self, volume_id: str) -> None: ...


class LoadBalancerProvisioner(Protocol):
    async def ensure_load_balancer(self, request: LoadBalancerRequest) -> str:
        """Create or update the LB; return its id."""
        ...

    async def delete_load_balancer(self, namespace: str, name: str, uid: str) -> None: ...


class LocalVolumeProvisioner:
    """Volume ids look like OCI's; the data lives in a directory the simulator keeps."""

    def __init__(self) -> None:
        self.created: dict[str, VolumeRequest] = {}
        self.deleted: list[str] = []

    async def create_volume(self, request: VolumeRequest) -> str:
        volume_id = f"ocid1.volume.oc1.sim.{uuid.uuid4().hex}"
        self.created[volume_id] = request
        return volume_id

    async def delete_volume(self, volume_id: str) -> None:
        self.deleted.append(volume_id)


class LocalLoadBalancerProvisioner:
    def __init__(self) -> None:
        self.active: dict[str, LoadBalancerRequest] = {}

    async def ensure_load_balancer(self, request: LoadBalancerRequest) -> str:
        self.active[request.uid] = request
        return f"ocid1.loadbalancer.oc1.sim.{request.uid.replace('-', '')}"

    async def delete_load_balancer(self, namespace: str, name: str, uid: str) -> None:
        self.active.pop(uid, None)


# registry host, username, password -> None when accepted, else "unauthorized" or
# "insufficient_scope" (the two failure modes nvcr.io reports).
PullAuth = Callable[[str, str, str], str | None]


def default_pull_auth(registry: str, username: str, password: str) -> str | None:
    """nvcr.io accepts user ``$oauthtoken`` with an NGC API key (``nvapi-...``)."""
    if registry != "nvcr.io":
        return None
    if username != "$oauthtoken" or not password.startswith(NGC_KEY_PREFIX) or len(password) < 16:
        return "unauthorized"
    return None
