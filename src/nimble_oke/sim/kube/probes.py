"""Startup/liveness/readiness probes, executed for real against a container's server."""

from __future__ import annotations

import asyncio

import aiohttp

from nimble_oke.sim.clock import SimClock

from .images import Container
from .store import Obj

# Probe defaults from the Kubernetes API (core/v1 Probe).
PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "successThreshold": 1,
    "failureThreshold": 3,
}
# A probe never gets less real time than this: the 2-core test machine is shared.
MIN_PROBE_TIMEOUT_REAL_S = 0.5


async def run_probe(
    probe: Obj,
    *,
    session: aiohttp.ClientSession,
    clock: SimClock,
    pod_ip: str,
    local_port: int | None,
    instance: Container,
) -> tuple[bool, str]:
    """Run one probe for real against the container's local port; (success, message in
    the kubelet's words). The simulated clock does not jump while a probe runs."""
    with clock.busy():
        return await _probe(probe, clock, pod_ip, local_port, instance, session)


async def _probe(
    probe: Obj,
    clock: SimClock,
    pod_ip: str,
    local_port: int | None,
    instance: Container,
    session: aiohttp.ClientSession,
) -> tuple[bool, str]:
    timeout = max(float(probe["timeoutSeconds"]) / clock.scale, MIN_PROBE_TIMEOUT_REAL_S)
    if "httpGet" in probe:
        http = probe["httpGet"]
        port, path = http.get("port"), http.get("path", "/")
        scheme = str(http.get("scheme", "HTTP")).lower()
        url = f"{scheme}://{pod_ip}:{port}{path}"
        if local_port is None:
            return False, (f'Get "{url}": dial tcp {pod_ip}:{port}: connect: connection refused')
        headers = {h["name"]: h["value"] for h in http.get("httpHeaders") or []}
        try:
            async with session.get(
                f"http://127.0.0.1:{local_port}{path}",
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                await response.read()
                if 200 <= response.status < 400:
                    return True, ""
                return False, f"HTTP probe failed with statuscode: {response.status}"
        except TimeoutError:
            return False, (
                f'Get "{url}": context deadline exceeded (Client.Timeout '
                "exceeded while awaiting headers)"
            )
        except aiohttp.ClientError:
            return False, (f'Get "{url}": dial tcp {pod_ip}:{port}: connect: connection refused')
    if "tcpSocket" in probe:
        port = probe["tcpSocket"].get("port")
        if local_port is None:
            return False, f"dial tcp {pod_ip}:{port}: connect: connection refused"
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", local_port), timeout
            )
            writer.close()
            await writer.wait_closed()
            return True, ""
        except (OSError, TimeoutError):
            return False, f"dial tcp {pod_ip}:{port}: connect: connection refused"
    if "exec" in probe:
        run = getattr(instance, "exec", None)
        if run is None:
            return True, ""  # the image has no exec hook: treat the command as succeeding
        argv = list(probe["exec"].get("command") or [])
        code = int(await run(argv))
        if code == 0:
            return True, ""
        return False, f"command {' '.join(argv)!r} exited with {code}"
    return True, ""
