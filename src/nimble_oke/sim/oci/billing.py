"""What the simulated cloud bills: per resource and price line, the simulated seconds billed.

Rows mirror OCI's usage lines closely enough that a cost engine's accrual can be compared
with them: ``quantity`` is in the line's unit (GPUs, GB, VPU-GB, Mbps, ...), ``seconds``
is the simulated time the resource was billable with that quantity.
"""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.world import World

INTERNAL_KINDS = {"workrequest", "lbworkrequest", "compartment"}


def billing_rows(world: World) -> list[dict[str, Any]]:
    with world.lock:
        now = world.now()
        rows = []
        for res in world.resources.values():
            segments = list(res.extra.get("billing_segments", []))
            if res.billed_from is not None:
                end = res.billed_to if res.billed_to is not None else now
                segments.append({"from": res.billed_from, "to": end, "lines": res.billing})
            for seg in segments:
                for line in seg["lines"]:
                    rows.append(
                        {
                            "id": res.id,
                            "kind": res.kind,
                            "region": res.region,
                            "display_name": res.wire.get("displayName") or res.wire.get("name"),
                            "price_key": line["price_key"],
                            "quantity": line["quantity"],
                            "unit": line["unit"],
                            "preemptible": bool(res.extra.get("preemptible")),
                            "start": seg["from"],
                            "end": seg["to"],
                            "seconds": max(0.0, seg["to"] - seg["from"]),
                            "live": res.live,
                            "freeform_tags": dict(res.wire.get("freeformTags") or {}),
                        }
                    )
        return rows


def inventory_rows(world: World) -> list[dict[str, Any]]:
    with world.lock:
        return [
            {
                "kind": r.kind,
                "id": r.id,
                "region": r.region,
                "lifecycle_state": r.wire.get("lifecycleState"),
                "display_name": r.wire.get("displayName") or r.wire.get("name"),
                "compartment_id": r.wire.get("compartmentId"),
                "freeform_tags": dict(r.wire.get("freeformTags") or {}),
                "default": bool(r.extra.get("default")),
            }
            for r in world.resources.values()
            if r.live and r.kind not in INTERNAL_KINDS
        ]
