"""A local Kubernetes API server with controllers that really run pods (as local code).

It speaks the real wire protocol (discovery, CRUD, server-side apply with managedFields,
merge/strategic/JSON patch, watch, logs, scale, Table output), so lightkube and kubectl
work against it unchanged::

    from nimble_oke.sim.clock import SimClock
    from nimble_oke.sim.kube import KubeSimulator

    with KubeSimulator(state_dir, clock=SimClock(60)) as kube:   # own thread + event loop
        kube.add_gpu_node("VM.GPU.A10.1")                         # OKE labels, taint, allocatable
        kubeconfig = kube.write_kubeconfig(state_dir / "kubeconfig")
        ...  # lightkube.Client(KubeConfig.from_file(kubeconfig)) / kubectl --kubeconfig

Pods run as local code chosen by image (:meth:`KubeSimulator.register_image`): NIM images
(``nvcr.io/nim/...``) run :class:`nimble_oke.sim.nim.NimEmulator`; ``busybox`` runs a small
shell vocabulary; ``nimble-sim/http-echo`` is an HTTP test server. Services get a real
local TCP forwarder (annotation ``sim.nimble-oke.io/local-ports``,
:meth:`KubeSimulator.service_address`); PVC data lives under ``state_dir/volumes``.
"""

from nimble_oke.sim.kube.images import (
    NIM_IMAGE_BYTES,
    Container,
    ContainerContext,
    ImageRegistry,
)
from nimble_oke.sim.kube.provisioners import (
    LoadBalancerProvisioner,
    LoadBalancerRequest,
    LocalLoadBalancerProvisioner,
    LocalVolumeProvisioner,
    VolumeProvisioner,
    VolumeRequest,
    default_pull_auth,
)
from nimble_oke.sim.kube.shapes import GPU_SHAPES
from nimble_oke.sim.kube.simulator import KubeSimulator

__all__ = [
    "GPU_SHAPES",
    "NIM_IMAGE_BYTES",
    "Container",
    "ContainerContext",
    "ImageRegistry",
    "KubeSimulator",
    "LoadBalancerProvisioner",
    "LoadBalancerRequest",
    "LocalLoadBalancerProvisioner",
    "LocalVolumeProvisioner",
    "VolumeProvisioner",
    "VolumeRequest",
    "default_pull_auth",
]
