"""Python API for the Kubernetes simulator, acting as OKE's CSI driver and cloud controller.

Creates the same resources (and bills them) as the HTTP API would; safe from any thread.
"""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.services import blockstorage, containerengine, loadbalancer
from nimble_oke.sim.oci.world import World


class SimApi:
    def __init__(self, world: World, compartment_id: str) -> None:
        self._world = world
        self.compartment_id = compartment_id

    def _region(self, region: str | None) -> str:
        return region or self._world.home_region

    def create_volume(
        self,
        size_gb: int,
        availability_domain: str | None = None,
        *,
        vpus_per_gb: int = 10,
        display_name: str | None = None,
        freeform_tags: dict[str, str] | None = None,
        compartment_id: str | None = None,
        source_volume_id: str | None = None,
        region: str | None = None,
    ) -> str:
        """A block volume, as the CSI driver creates for a PVC; returns its OCID."""
        region = self._region(region)
        with self._world.lock:
            body: dict[str, Any] = {
                "compartmentId": compartment_id or self.compartment_id,
                "availabilityDomain": availability_domain or self._world.ads(region)[0],
                "sizeInGBs": size_gb,
                "vpusPerGB": vpus_per_gb,
                "displayName": display_name,
                "freeformTags": freeform_tags or {},
            }
            if source_volume_id:
                body["sourceDetails"] = {"type": "volume", "id": source_volume_id}
            return blockstorage.create_volume_record(self._world, region, body).id

    def delete_volume(self, volume_id: str) -> None:
        with self._world.lock:
            blockstorage.delete_volume_record(self._world, self._world.get(volume_id, "volume"))

    def get_volume(self, volume_id: str) -> dict[str, Any]:
        with self._world.lock:
            return dict(self._world.get(volume_id, "volume").wire)

    def create_load_balancer(
        self,
        display_name: str,
        *,
        subnet_ids: list[str] | None = None,
        min_mbps: int = 10,
        max_mbps: int = 100,
        is_private: bool = False,
        freeform_tags: dict[str, str] | None = None,
        compartment_id: str | None = None,
        region: str | None = None,
    ) -> str:
        """A flexible LB, as OKE's cloud controller creates for a Service of type LoadBalancer.
        It turns ACTIVE (and gets its IP) after 1-2 simulated minutes."""
        with self._world.lock:
            body = {
                "compartmentId": compartment_id or self.compartment_id,
                "displayName": display_name,
                "shapeName": "flexible",
                "shapeDetails": {
                    "minimumBandwidthInMbps": min_mbps,
                    "maximumBandwidthInMbps": max_mbps,
                },
                "subnetIds": subnet_ids or [],
                "isPrivate": is_private,
                "freeformTags": freeform_tags or {},
            }
            lb, _ = loadbalancer.create_lb_record(self._world, self._region(region), body)
            return lb.id

    def get_load_balancer(self, lb_id: str) -> dict[str, Any]:
        with self._world.lock:
            return dict(self._world.get(lb_id, "loadbalancer").wire)

    def load_balancer_ip(self, lb_id: str) -> str | None:
        """The public (or private) IP once the LB is ACTIVE, else None."""
        lb = self.get_load_balancer(lb_id)
        if lb["lifecycleState"] != "ACTIVE":
            return None
        return str(lb["ipAddresses"][0]["ipAddress"])

    def delete_load_balancer(self, lb_id: str) -> None:
        with self._world.lock:
            loadbalancer.delete_lb_record(self._world, self._world.get(lb_id, "loadbalancer"))

    def preempt_node(self, node_id: str) -> None:
        """Reclaim a preemptible node (about 2 simulated minutes later it is gone and
        ``node_removed`` fires); OKE launches a replacement in the same pool."""
        with self._world.lock:
            containerengine.preempt(self._world, self._world.get(node_id, "node"))

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        with self._world.lock:
            return dict(self._world.get(cluster_id, "cluster").wire)

    def nodes(self, cluster_id: str) -> list[dict[str, Any]]:
        """Every node of the cluster's pools, in wire form (incl. lifecycleState)."""
        with self._world.lock:
            return [
                dict(r.wire)
                for r in self._world.find("node")
                if r.extra.get("cluster") == cluster_id
            ]
