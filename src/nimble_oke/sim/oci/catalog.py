"""What the simulated OCI offers: shapes, GPU limits, OKE versions and images, timings."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

from nimble_oke.domain import hibernate


@dataclass(frozen=True)
class Shape:
    name: str
    gpus: int
    gpu_family: str | None  # price key suffix: gpu.<family>
    ocpus: float
    memory_gb: float
    bare_metal: bool
    limit_name: str | None  # Limits service name (service "compute")

    @property
    def is_billed_for_stopped_instance(self) -> bool:
        """OCI's published rule (domain/hibernate.py): a stopped instance keeps billing on
        every GPU shape but the VM.GPU.A10 VMs (GPUs reserved), not on standard shapes."""
        return hibernate.documented_billed_when_stopped(self.name, self.gpus, self.bare_metal)


# GPU shape facts and prices: reference/oci.md (price list 2026-08); CPU counts: OCI shapes docs.
SHAPES: dict[str, Shape] = {
    s.name: s
    for s in [
        Shape("VM.GPU.A10.1", 1, "A10", 15, 240, False, "gpu-a10-count"),
        Shape("VM.GPU.A10.2", 2, "A10", 30, 480, False, "gpu-a10-count"),
        Shape("BM.GPU.A10.4", 4, "A10", 64, 1024, True, "gpu-a10-count"),
        Shape("BM.GPU.A100-v2.8", 8, "A100-80G", 128, 2048, True, "gpu-a100-count"),
        Shape("BM.GPU4.8", 8, "A100-40G", 64, 2048, True, "gpu-a100-count"),
        Shape("BM.GPU.H100.8", 8, "H100", 112, 2048, True, "gpu-h100-count"),
        Shape("BM.GPU.L40S.4", 4, "L40S", 112, 1024, True, "gpu-l40s-count"),
        Shape("VM.GPU3.1", 1, "V100", 6, 90, False, "gpu3-count"),
        Shape("VM.GPU2.1", 1, "P100", 12, 72, False, "gpu2-count"),
        # CPU shapes: limits count OCPUs (OCI Limits service names, "compute" service).
        Shape("VM.Standard.E5.Flex", 0, None, 2, 16, False, "standard-e5-core-count"),
        Shape("VM.Standard.E4.Flex", 0, None, 2, 16, False, "standard-e4-core-count"),
        Shape("VM.Standard3.Flex", 0, None, 2, 16, False, "standard3-core-count"),
    ]
}
GPU_LIMIT_NAMES = sorted({s.limit_name for s in SHAPES.values() if s.limit_name and s.gpus})
CPU_LIMIT_NAMES = sorted({s.limit_name for s in SHAPES.values() if s.limit_name and not s.gpus})
LIMIT_NAMES = GPU_LIMIT_NAMES + CPU_LIMIT_NAMES
# A simulated tenancy is generous by default (real new tenancies start at 0: oci.md);
# fault plans set lower limits per AD.
DEFAULT_GPU_LIMIT_PER_AD = 16
# CPU cores (OCPUs) per AD for each flexible-shape family; fault plans can lower it to 0.
DEFAULT_CPU_CORE_LIMIT_PER_AD = 64

# OKE versions as of 2026-09 (reference/oke.md).
KUBERNETES_VERSIONS = ["v1.34.10", "v1.35.2", "v1.36.1"]
_IMAGE_BUILDS = {"v1.34.10": "1455", "v1.35.2": "1505", "v1.36.1": "1542"}
_IMAGE_DATES = ["2026.05.20-0", "2026.06.15-0"]


def node_images() -> list[tuple[str, str]]:
    """(source_name, k8s version) for every OKE node image, named as OKE names them."""
    images = []
    for version, build in _IMAGE_BUILDS.items():
        bare = version.lstrip("v")
        for date in _IMAGE_DATES:
            for flavour in ("", "-Gen2-GPU", "-aarch64"):
                images.append((f"Oracle-Linux-8.10{flavour}-{date}-OKE-{bare}-{build}", version))
    return images


ADDONS = {
    # name -> (versions, enhanced-only); add-on management is an enhanced-cluster feature (oke.md)
    "NvidiaGpuPlugin": (["v0.17.0", "v0.17.2"], True),
    "CertManager": (["v1.16.2"], True),
    "KubernetesMetricsServer": (["v0.7.2"], True),
    # version strings are illustrative: OKE lists one per supported Kubernetes minor
    "ClusterAutoscaler": (["1.35.0-1", "1.36.0-1"], True),
}


@dataclass
class Timings:
    """Simulated durations in seconds, drawn uniformly from (min, max) with the seeded RNG."""

    # enhanced cluster to ACTIVE 5-10 min (calibration.md, nim-deploy RAG guide);
    # basic cluster ~7 min (brief; Quick Create 10-15 min includes the node pool).
    cluster_create_min_s: float = 360
    cluster_create_max_s: float = 480
    # deletes are faster than creates; no published figure: assume 2-4 min.
    cluster_delete_min_s: float = 120
    cluster_delete_max_s: float = 240
    # VM GPU node to ACTIVE 10-15 min (calibration.md); we use 10-12 min.
    vm_gpu_node_min_s: float = 600
    vm_gpu_node_max_s: float = 720
    # BM GPU nodes: assume +5-10 min over VM (calibration.md).
    bm_extra_min_s: float = 300
    bm_extra_max_s: float = 600
    # CPU nodes: not published; assume 5-7 min.
    cpu_node_min_s: float = 300
    cpu_node_max_s: float = 420
    # Instance launch attempt before a capacity error shows (assumption: ~1-2 min).
    launch_attempt_s: float = 90
    # Node terminate: assume 1-2 min.
    node_delete_min_s: float = 60
    node_delete_max_s: float = 120
    # Registration timeout message appears after 20 min (terraform-provider-oci issue 963).
    node_registration_timeout_s: float = 1200
    # LoadBalancer external IP 1-2 min (calibration.md, nim-deploy OKE README).
    lb_create_min_s: float = 60
    lb_create_max_s: float = 120
    lb_delete_s: float = 30
    # Block volumes provision in seconds (OCI block volume docs: "seconds").
    volume_create_s: float = 10
    volume_delete_s: float = 5
    backup_create_s: float = 60
    # Networking objects appear almost at once (observed: seconds).
    network_create_s: float = 2
    network_delete_s: float = 2
    addon_install_s: float = 60
    work_request_start_s: float = 5
    # Object Storage replication lag: not published; assume 60 s.
    replication_delay_s: float = 60
    # Custom image capture (CreateImage from an instance): not published. Assumption: 8-12 min
    # for a GPU OKE node's boot volume, roughly proportional to the boot volume's used bytes
    # (the OKE GPU base image plus the cached container images).
    image_capture_min_s: float = 480
    image_capture_max_s: float = 720
    # Custom image delete: not published; assume seconds (the image is gone "shortly").
    image_delete_s: float = 5
    # Compute power actions (InstanceAction) on an OKE node's instance. Documented: SOFTSTOP
    # sends an ACPI shutdown and powers the instance off after 15 min if the OS is still up.
    softstop_timeout_s: float = hibernate.SOFTSTOP_TIMEOUT_S
    # ASSUMPTIONS (not published; domain/hibernate.py holds the same figures for the planner):
    # the OS's shutdown after SOFTSTOP's ACPI signal; a hard STOP to STOPPED; a GPU VM's START
    # to RUNNING; and RUNNING until the kubelet reports the Node Ready again. Each is drawn
    # around its typical value (the median): half the draws below it, half above.
    os_shutdown_min_s: float = hibernate.OS_SHUTDOWN.best
    os_shutdown_typical_s: float = hibernate.OS_SHUTDOWN.typical
    os_shutdown_max_s: float = hibernate.OS_SHUTDOWN.worst
    instance_stop_min_s: float = hibernate.INSTANCE_STOP.best
    instance_stop_typical_s: float = hibernate.INSTANCE_STOP.typical
    instance_stop_max_s: float = hibernate.INSTANCE_STOP.worst
    instance_start_min_s: float = hibernate.INSTANCE_START.best
    instance_start_typical_s: float = hibernate.INSTANCE_START.typical
    instance_start_max_s: float = hibernate.INSTANCE_START.worst
    node_rejoin_min_s: float = hibernate.NODE_REJOIN.best
    node_rejoin_typical_s: float = hibernate.NODE_REJOIN.typical
    node_rejoin_max_s: float = hibernate.NODE_REJOIN.worst

    def override(self, values: dict[str, float]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in values.items():
            if key in names:
                setattr(self, key, float(value))
            elif f"{key}_min_s" in names or (key.endswith("_s") and f"{key[:-2]}_min_s" in names):
                base = key[:-2] if key.endswith("_s") else key
                setattr(self, f"{base}_min_s", float(value))
                setattr(self, f"{base}_max_s", float(value))
                if f"{base}_typical_s" in names:
                    setattr(self, f"{base}_typical_s", float(value))
            else:
                raise ValueError(f"unknown timing {key!r}; known: {sorted(names)}")

    def draw(self, rng: random.Random, name: str) -> float:
        lo = getattr(self, f"{name}_min_s")
        hi = getattr(self, f"{name}_max_s")
        if hi <= lo:
            return float(lo)
        typical = getattr(self, f"{name}_typical_s", None)
        if typical is None:
            return rng.uniform(lo, hi)
        # a skewed assumption (best, typical, worst): typical is the median of the draws
        mid = min(max(float(typical), lo), hi)
        return rng.uniform(lo, mid) if rng.random() < 0.5 else rng.uniform(mid, hi)

    def node_ready(self, rng: random.Random, shape: Shape) -> float:
        if shape.gpus == 0:
            return self.draw(rng, "cpu_node")
        base = self.draw(rng, "vm_gpu_node")
        return base + (self.draw(rng, "bm_extra") if shape.bare_metal else 0.0)
