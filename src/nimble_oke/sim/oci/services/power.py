"""The power state of a node's compute instance, read by whoever needs it (nodes.py drives
it; images.py asks before a capture) — apart so that neither imports the other."""

from __future__ import annotations

from nimble_oke.sim.oci.world import Resource

__all__ = ["BUSY_MESSAGE", "kubelet_up", "power_state"]

BUSY_MESSAGE = "instance {id} is currently being modified, try again later"


def power_state(node: Resource) -> str:
    """RUNNING, STOPPING, STOPPED or STARTING (a node never acted upon is RUNNING)."""
    return str((node.extra.get("power") or {}).get("state") or "RUNNING")


def kubelet_up(node: Resource) -> bool:
    """Whether the node's kubelet posts status: False from the power-off (or a STOP) until
    the node rejoins after START. Whoever replays nodes into Kubernetes (the simulator on
    attach) follows ``node_ready`` with ``node_stopped`` when this is False."""
    return bool((node.extra.get("power") or {}).get("kubelet_up", True))
