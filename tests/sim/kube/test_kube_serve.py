"""The long-lived ``serve`` entry point: endpoints.json and a working kubeconfig."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube.serve import serve_async


def test_serve_writes_endpoints_and_keeps_other_keys(tmp_path: Path) -> None:
    (tmp_path / "endpoints.json").write_text(json.dumps({"oci": "http://127.0.0.1:1"}))

    async def scenario() -> dict[str, str]:
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve_async(
                tmp_path,
                stop=stop,
                clock=SimClock(60),
                on_ready=lambda kube: kube.add_gpu_node("VM.GPU.A10.1", name="10.0.1.50"),
            )
        )
        for _ in range(200):
            await asyncio.sleep(0.02)
            endpoints = json.loads((tmp_path / "endpoints.json").read_text())
            if "kube" in endpoints:
                break
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{endpoints['kube']}/api/v1/nodes")
        assert [n["metadata"]["name"] for n in response.json()["items"]] == ["10.0.1.50"]
        stop.set()
        await task
        return dict(endpoints)

    endpoints = asyncio.run(scenario())
    assert endpoints["oci"] == "http://127.0.0.1:1"
    assert Path(endpoints["kubeconfig"]).exists()
