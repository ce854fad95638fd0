"""Protocols the services depend on. Adapters implement them; services receive them as
arguments, so the sim and oci targets share every line above the adapters."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Kinds of cloud resources the provisioning workflow manages, in creation order.
NETWORK_KINDS = (
    "vcn",
    "internet_gateway",
    "nat_gateway",
    "service_gateway",
    "route_table",
    "security_list",
    "subnet",
)
CLUSTER_KINDS = ("cluster", "node_pool")
# Created by Kubernetes (CSI driver, cloud controller) but billed to the session.
KUBE_CREATED_KINDS = ("volume", "load_balancer")
# Deletion order: what depends on others goes first.
DELETE_ORDER = (
    "schedule",  # the cloud guard's Resource Scheduler schedule; depends on nothing
    "node_image",  # a custom GPU worker image (down --keep-node-image); depends on nothing
    "load_balancer",
    "volume",
    "node_pool",
    "cluster",
    "subnet",
    "route_table",
    "security_list",
    "nat_gateway",
    "service_gateway",
    "internet_gateway",
    "vcn",
)


@dataclass(frozen=True)
class Created:
    """What a create call returned: the resource id and, for async operations, the
    work request to wait on."""

    resource_id: str
    work_request_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class FoundResource:
    kind: str
    resource_id: str
    name: str
    state: str
    tags: Mapping[str, str] = field(default_factory=dict)
    created_at: float | None = None  # when the cloud made it (Unix s), when it says


@dataclass(frozen=True)
class InstanceInfo:
    """A node's Compute instance as GetInstance reports it."""

    instance_id: str
    state: str  # Instance.lifecycle_state: RUNNING | STOPPING | STOPPED | STARTING | ...
    shape: str
    availability_domain: str


@dataclass(frozen=True)
class GpuAvailability:
    """Preflight facts for one (shape, AD): the GPU limit left and the capacity report."""

    availability_domain: str
    limit_available: int | None  # None: the limit could not be read
    capacity: str  # AVAILABLE | OUT_OF_HOST_CAPACITY | HARDWARE_NOT_SUPPORTED | UNKNOWN


class CloudProvider(Protocol):
    """The cloud side of a session (implemented over the OCI SDK)."""

    region: str
    compartment_id: str

    def check_credentials(self) -> str:
        """Return the tenancy's name; raise ProviderError when authentication fails."""
        ...

    def compartment_name(self, compartment_id: str) -> str: ...

    def availability_domains(self) -> list[str]: ...

    def gpu_availability(
        self, shape: str, limit_name: str, availability_domain: str
    ) -> GpuAvailability: ...

    def kubernetes_versions(self) -> list[str]: ...

    def node_image(self, kubernetes_version: str, *, gpu: bool) -> tuple[str, str]:
        """(image id, image name) of the newest OKE image for the version."""
        ...

    def oracle_services(self) -> tuple[str, str] | None:
        """(service id, CIDR label) of 'All <region> Services in Oracle Services Network'."""
        ...

    def create(self, kind: str, spec: Mapping[str, Any], *, retry_token: str) -> Created: ...

    def await_ready(self, kind: str, created: Created, *, timeout_s: float) -> None:
        """Wait until the resource is usable. CapacityError when OCI is out of capacity."""
        ...

    def state(self, kind: str, resource_id: str) -> str | None:
        """Lifecycle state, or None when the resource is gone (deleted or never existed)."""
        ...

    def delete(self, kind: str, resource_id: str) -> str | None:
        """Start deleting (idempotent: a missing resource is fine). Returns a work request id."""
        ...

    def await_deleted(self, kind: str, resource_id: str, *, timeout_s: float) -> None: ...

    def find_tagged(self, tags: Mapping[str, str]) -> list[FoundResource]:
        """Every live resource carrying all these freeform tags."""
        ...

    def kubeconfig(self, cluster_id: str) -> str: ...

    def scale_node_pool(self, node_pool_id: str, size: int) -> None: ...

    def node_pool_nodes(self, node_pool_id: str) -> list[dict[str, Any]]: ...

    def addon(self, cluster_id: str, name: str) -> dict[str, Any] | None:
        """An installed cluster add-on (state, version, configurations), None if absent."""
        ...

    def install_addon(
        self, cluster_id: str, name: str, configurations: Mapping[str, str], *, timeout_s: float
    ) -> bool:
        """Install or re-configure a cluster add-on; wait until ACTIVE. False: unchanged."""
        ...

    def volume_availability_domain(self, volume_id: str) -> str | None:
        """The AD a block volume lives in (None if it is gone)."""
        ...

    def volume_performance(self, volume_id: str) -> tuple[int, int] | None:
        """(size in GB, VPUs per GB) of a block volume (None if it is gone)."""
        ...

    def node_image_size_gb(self, image_id: str) -> float | None:
        """Billable size of a custom image (None if it is gone)."""
        ...

    def set_volume_performance(self, volume_id: str, vpus_per_gb: int) -> None:
        """Change a block volume's performance online (OCI keeps it attached and in use)."""
        ...

    # -- the cloud guard (services/cloud_guard.py) ------------------------------------

    def ensure_defined_tag(self, namespace: str, key: str) -> None:
        """Make sure the tenancy has the defined tag ``namespace.key``."""
        ...

    def update_schedule(self, schedule_id: str, spec: Mapping[str, Any]) -> None:
        """Re-point a stop schedule (a new lease end)."""
        ...

    def schedule_runs(self, schedule_id: str) -> dict[str, Any] | None:
        """state, starts, last_run (Unix s), last_status of a schedule; None if gone."""
        ...

    def instance_state(self, instance_id: str) -> str | None:
        """A node's Compute instance state (RUNNING, STOPPED, ...); None if gone."""
        ...

    def start_instance(self, instance_id: str) -> None:
        """Start a stopped instance."""
        ...

    # -- hibernate (services/hibernate*.py) ---------------------------------------------

    def shape_billed_when_stopped(
        self, shape: str, availability_domain: str | None = None
    ) -> bool | None:
        """``Shape.is_billed_for_stopped_instance`` as ListShapes reports it (None: the
        shape is not listed, or the API does not say)."""
        ...

    def instance_info(self, instance_id: str) -> InstanceInfo | None:
        """GetInstance: state, shape and AD; None when the instance is gone."""
        ...

    def instance_action(self, instance_id: str, action: str, *, retry_token: str) -> str:
        """InstanceAction SOFTSTOP | STOP | START; returns the state the API answers
        (STOPPING / STARTING). CapacityError on a START without a host."""
        ...

    def await_instance_state(
        self, instance_id: str, states: Collection[str], *, timeout_s: float
    ) -> str:
        """Poll GetInstance until the instance is in one of ``states`` (returned);
        ProviderError after ``timeout_s`` real seconds."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
