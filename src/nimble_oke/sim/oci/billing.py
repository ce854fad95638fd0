"""What the simulated cloud bills: per resource and price line, the simulated seconds billed.

Rows mirror OCI's usage lines closely enough that a cost engine's accrual can be compared
with them: ``quantity`` is in the line's unit (GPUs, GB, VPU-GB, Mbps, ...), ``seconds``
is the simulated time the resource was billable with that quantity.
"""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.world import World

INTERNAL_KINDS = {"workrequest", "lbworkrequest", "computeworkrequest", "compartment"}


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


def catalog_price_key(sim_key: str) -> str:
    """The project catalog's price key for a billing row's key.

    The simulator names GPU lines by GPU family (``gpu.A10``, ``gpu.A100-80G``) as OCI's usage
    reports do; the catalog by price item (``gpu.a10``, ``gpu.a100_80``). The mapping is
    derived from the shapes both know, so it cannot drift; CPU lines map to the flex items."""
    from nimble_oke.catalog import load_catalog
    from nimble_oke.sim.oci.catalog import SHAPES

    catalog = load_catalog()
    for shape in SHAPES.values():
        if (
            shape.gpu_family
            and sim_key == f"gpu.{shape.gpu_family}"
            and shape.name in catalog.shapes
        ):
            return catalog.shapes[shape.name].price_key
    return {"compute.ocpu": "compute.flex.ocpu", "compute.memory": "compute.flex.memory"}.get(
        sim_key, sim_key
    )


def priced_usd(
    rows: list[dict[str, Any]], *, start: float | None = None, end: float | None = None
) -> tuple[float, float]:
    """(USD, GPU-billed seconds) of billing rows priced with the catalog — the same meters the
    cost engine accrues with (preemptible GPUs at the catalog's discount) — optionally only
    the part of each row inside [start, end] (simulated seconds, as in the rows)."""
    from nimble_oke.catalog import load_catalog
    from nimble_oke.domain.cost import Meter, meter_usd

    catalog = load_catalog()
    usd = gpu_seconds = 0.0
    for row in rows:
        lo = row["start"] if start is None else max(row["start"], start)
        hi = row["end"] if end is None else min(row["end"], end)
        seconds = max(0.0, hi - lo)
        key = catalog_price_key(str(row["price_key"]))
        is_gpu = key.startswith("gpu.")
        if is_gpu:
            gpu_seconds += seconds
        if key not in catalog.prices:
            continue
        mult = catalog.preemptible_discount if is_gpu and row.get("preemptible") else 1.0
        usd += meter_usd(catalog, Meter(key, float(row["quantity"]), "sim", mult), seconds)[0]
    return usd, gpu_seconds
