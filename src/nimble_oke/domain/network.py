"""The OKE network a session creates (pure data): public API endpoint, private workers,
public load balancers, flannel overlay — following Oracle's OKE network requirements
(../shared/reference/oke.md). Each rule says why it is open.

| subnet   | CIDR         | access  | routes                                            |
|----------|--------------|---------|---------------------------------------------------|
| api      | 10.0.0.0/29  | public  | 0.0.0.0/0 → internet gateway                      |
| workers  | 10.0.1.0/24  | private | 0.0.0.0/0 → NAT; Oracle Services Network → SGW    |
| lb       | 10.0.2.0/24  | public  | 0.0.0.0/0 → internet gateway                      |

A public subnet must not route to both an internet gateway and a service gateway, so the
public subnets share one route table and the worker subnet has its own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

VCN_CIDR = "10.0.0.0/16"
API_CIDR = "10.0.0.0/29"
WORKER_CIDR = "10.0.1.0/24"
LB_CIDR = "10.0.2.0/24"
PODS_CIDR = "10.244.0.0/16"  # flannel default (oke.md)
SERVICES_CIDR = "10.96.0.0/16"
ANYWHERE = "0.0.0.0/0"
OSN = "oracle-services-network"  # placeholder replaced by the region's service CIDR label

TCP, UDP, ICMP, ALL = "6", "17", "1", "all"
NIM_PORT = 8000
APISERVER_PORT = 6443
OKE_PORT = 12250
KUBE_PROXY_HEALTH_PORT = 10256
NODE_PORTS = (30000, 32767)


@dataclass(frozen=True)
class Rule:
    """A stateful security rule. ``peer`` is a CIDR or OSN; ports are inclusive ranges."""

    direction: str  # "ingress" | "egress"
    protocol: str
    peer: str
    why: str
    ports: tuple[int, int] | None = None
    icmp: tuple[int, int] | None = None  # (type, code)

    @property
    def peer_type(self) -> str:
        return "SERVICE_CIDR_BLOCK" if self.peer == OSN else "CIDR_BLOCK"


PATH_MTU = (3, 4)  # ICMP type 3 code 4: "fragmentation needed" (path MTU discovery)


def api_rules(api_allowed_cidr: str) -> list[Rule]:
    return [
        Rule("ingress", TCP, WORKER_CIDR, "kubelet → API server", (APISERVER_PORT, APISERVER_PORT)),
        Rule("ingress", TCP, WORKER_CIDR, "workers → OKE control plane", (OKE_PORT, OKE_PORT)),
        Rule("ingress", ICMP, WORKER_CIDR, "path MTU discovery", icmp=PATH_MTU),
        Rule(
            "ingress",
            TCP,
            api_allowed_cidr,
            "kubectl / nimble → API server",
            (APISERVER_PORT, APISERVER_PORT),
        ),
        Rule("egress", TCP, OSN, "control plane → OKE services"),
        Rule("egress", ICMP, OSN, "path MTU discovery", icmp=PATH_MTU),
        Rule("egress", TCP, WORKER_CIDR, "control plane → workers (flannel, kubelet)"),
        Rule("egress", ICMP, WORKER_CIDR, "path MTU discovery", icmp=PATH_MTU),
    ]


def worker_rules() -> list[Rule]:
    return [
        Rule("ingress", ALL, WORKER_CIDR, "pod-to-pod and node-to-node (flannel)"),
        Rule("ingress", TCP, API_CIDR, "control plane → kubelet / flannel"),
        Rule("ingress", ICMP, ANYWHERE, "path MTU discovery", icmp=PATH_MTU),
        Rule("ingress", TCP, LB_CIDR, "load balancer → node ports", NODE_PORTS),
        Rule("ingress", UDP, LB_CIDR, "load balancer → node ports (UDP)", NODE_PORTS),
        Rule(
            "ingress",
            TCP,
            LB_CIDR,
            "load balancer health checks → kube-proxy",
            (KUBE_PROXY_HEALTH_PORT, KUBE_PROXY_HEALTH_PORT),
        ),
        Rule("egress", ALL, WORKER_CIDR, "pod-to-pod and node-to-node"),
        Rule("egress", ICMP, ANYWHERE, "path MTU discovery", icmp=PATH_MTU),
        Rule("egress", TCP, ANYWHERE, "pull NIM images from nvcr.io and weights from NGC"),
        Rule("egress", TCP, OSN, "OCI services (OCIR, Object Storage, OKE)"),
        Rule("egress", TCP, API_CIDR, "kubelet → API server", (APISERVER_PORT, APISERVER_PORT)),
        Rule("egress", TCP, API_CIDR, "workers → OKE control plane", (OKE_PORT, OKE_PORT)),
    ]


def lb_rules(ingress_cidrs: list[str]) -> list[Rule]:
    rules = [
        Rule("ingress", TCP, cidr, "clients → NIM through the load balancer", (NIM_PORT, NIM_PORT))
        for cidr in (ingress_cidrs or [ANYWHERE])
    ]
    rules += [
        Rule("egress", TCP, WORKER_CIDR, "load balancer → node ports", NODE_PORTS),
        Rule(
            "egress",
            TCP,
            WORKER_CIDR,
            "health checks → kube-proxy",
            (KUBE_PROXY_HEALTH_PORT, KUBE_PROXY_HEALTH_PORT),
        ),
    ]
    return rules


@dataclass(frozen=True)
class SubnetPlan:
    key: str
    cidr: str
    public: bool
    route_table: str  # "public" | "private"
    security_list: str  # "api" | "workers" | "lb"
    dns_label: str


@dataclass(frozen=True)
class NetworkPlan:
    vcn_cidr: str = VCN_CIDR
    subnets: tuple[SubnetPlan, ...] = field(
        default=(
            SubnetPlan("api", API_CIDR, True, "public", "api", "api"),
            SubnetPlan("workers", WORKER_CIDR, False, "private", "workers", "workers"),
            SubnetPlan("lb", LB_CIDR, True, "public", "lb", "lb"),
        )
    )


def security_lists(api_allowed_cidr: str, lb_ingress_cidrs: list[str]) -> dict[str, list[Rule]]:
    return {
        "api": api_rules(api_allowed_cidr),
        "workers": worker_rules(),
        "lb": lb_rules(lb_ingress_cidrs),
    }


def cloud_init_b64() -> str:
    """Oracle's documented cloud-init that grows the boot filesystem, then runs OKE's init
    (oke.md): without ``oci-growfs`` a 200 GB boot volume still shows ~35 GB."""
    script = (
        "#!/bin/bash\n"
        'curl --fail -H "Authorization: Bearer Oracle" -L0 '
        "http://169.254.169.254/opc/v2/instance/metadata/oke_init_script "
        "| base64 --decode >/var/run/oke-init.sh\n"
        "bash /usr/libexec/oci-growfs -y\n"
        "bash /var/run/oke-init.sh\n"
    )
    return base64.b64encode(script.encode()).decode()
