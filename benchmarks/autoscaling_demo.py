"""Autoscaling, demonstrated on the simulators: the queue grows under load → replicas increase;
the load stops → replicas come back down.

What runs (nothing is faked): the Kubernetes simulator with three VM.GPU.A10.1 nodes; our
Helm chart rendered with ``autoscaling.enabled=true`` (a StatefulSet — one cache volume per
replica — and an autoscaling/v2 HPA on NIM's ``num_requests_waiting``, target 4 per pod);
NIM emulators in the pods; the HPA controller of the simulator scraping their
``/v1/metrics``; and our benchmark client (``nimble_oke.bench``) driving a closed loop of
streaming requests through the Service.

The emulated engine runs at most ``--max-running`` sequences at once (vLLM's
``max_num_seqs``; NIM's default is 256), so a queue forms at a concurrency a laptop can
drive; everything else keeps its calibrated timings (image pull, model download, load).
Kubernetes time (cold start, stabilization windows, policy periods) runs ``--time-scale``
times faster than real time; serving runs in real time.

Usage: python benchmarks/autoscaling_demo.py [--time-scale 120] [--concurrency 32]
Prints a timeline (simulated seconds since the load started, replicas, ready replicas,
the HPA's average num_requests_waiting) and the final figures. Bounded: < 90 s real.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from nimble_oke.bench import BenchConfig, run_async, summarize
from nimble_oke.kube.deploy import (
    apply_manifests,
    ensure_namespace,
    ensure_ngc_secrets,
    kube_client,
)
from nimble_oke.kube.render import render_chart
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator

NAMESPACE = "nim"
SESSION = "autoscale"
NAME = f"{SESSION}-nimble-nim"
REAL_BUDGET_S = 85.0


@dataclass
class Sample:
    sim_s: float
    replicas: int
    ready: int
    waiting: str  # the HPA's current averageValue of num_requests_waiting
    hpa_replicas: int  # the HPA's status.currentReplicas


@dataclass
class Timeline:
    kube: KubeSimulator
    t0: float
    samples: list[Sample] = field(default_factory=list)
    printed: Sample | None = None
    seen_events: set[str] = field(default_factory=set)

    def sample(self) -> Sample:
        sts = next(iter(self.kube.objects("StatefulSet", NAMESPACE)), {})
        hpa = next(iter(self.kube.objects("HorizontalPodAutoscaler", NAMESPACE)), {})
        waiting = "<unknown>"
        for metric in (hpa.get("status") or {}).get("currentMetrics") or []:
            pods = metric.get("pods") or {}
            if (pods.get("metric") or {}).get("name") == "num_requests_waiting":
                waiting = pods["current"]["averageValue"]
        sample = Sample(
            sim_s=self.kube.clock.now() - self.t0,
            replicas=int((sts.get("spec") or {}).get("replicas", 0)),
            ready=int((sts.get("status") or {}).get("readyReplicas", 0)),
            waiting=waiting,
            hpa_replicas=int((hpa.get("status") or {}).get("currentReplicas", 0)),
        )
        self.samples.append(sample)
        last = self.printed
        if last is None or (last.replicas, last.ready, last.waiting) != (
            sample.replicas,
            sample.ready,
            sample.waiting,
        ):
            print(
                f"{sample.sim_s:9.0f} {sample.replicas:9d} {sample.ready:6d} {sample.waiting:>9}",
                flush=True,
            )
            self.printed = sample
        self._print_hpa_events(sample.sim_s)
        return sample

    def _print_hpa_events(self, sim_s: float) -> None:
        for event in self.kube.objects("Event", NAMESPACE):
            if event["involvedObject"].get("kind") != "HorizontalPodAutoscaler":
                continue
            key = f"{event['metadata']['name']}/{event.get('count', 1)}"
            if key in self.seen_events:
                continue
            self.seen_events.add(key)
            if event["reason"] == "SuccessfulRescale":
                print(f"{sim_s:9.0f}   HPA {event['reason']}: {event['message']}", flush=True)


def kubectl_get_hpa(kube: KubeSimulator) -> str:
    """What ``kubectl get hpa -n nim`` prints: the API server's Table for the resource."""
    table = httpx.get(
        f"{kube.url}/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers",
        headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
            "Authorization": f"Bearer {kube.token}",
        },
    ).json()
    rows = [[c["name"].upper() for c in table["columnDefinitions"]]]
    rows += [[str(cell) for cell in row["cells"]] for row in table["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def deploy(kube: KubeSimulator, state: Path, scale_down_window: int) -> Any:
    client = kube_client(kube.write_kubeconfig(state / "kubeconfig"), NAMESPACE)
    ensure_namespace(client, NAMESPACE, SESSION)
    ensure_ngc_secrets(client, NAMESPACE, throwaway_key(), session=SESSION)
    values = {
        "session": SESSION,
        "workload": "StatefulSet",
        "autoscaling": {
            "enabled": True,
            "minReplicas": 1,
            "maxReplicas": 3,
            "hpa": {"scaleDownStabilizationSeconds": scale_down_window},
        },
    }
    apply_manifests(
        client,
        render_chart(values, release=SESSION, namespace=NAMESPACE),
        session=SESSION,
        namespace=NAMESPACE,
    )
    return client


async def watch_until(timeline: Timeline, done: Any, deadline: float) -> bool:
    while time.monotonic() < deadline:
        sample = await asyncio.to_thread(timeline.sample)
        if done(sample):
            return True
        await asyncio.sleep(0.1)
    return False


async def load_phase(
    timeline: Timeline, endpoint: str, concurrency: int, output_tokens: int, duration_s: float
) -> dict[str, Any]:
    """A closed loop of streaming requests for ``duration_s`` real seconds (requests in
    flight at the end complete), sampling the timeline meanwhile."""
    config = BenchConfig(
        endpoint=endpoint,
        concurrency=concurrency,
        requests=None,
        duration_s=duration_s,
        output_tokens=output_tokens,
        scrape_metrics=False,
        timeout_s=60,
    )
    # A new connection per request, so the Service spreads requests over new replicas
    # (kube-proxy balances connections, not requests).
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        bench = asyncio.create_task(run_async(config, session))
        shown = False
        while not bench.done():
            sample = await asyncio.to_thread(timeline.sample)
            if sample.ready >= 3 and not shown:
                print(f"--- all replicas Ready; kubectl get hpa -n {NAMESPACE}:", flush=True)
                print(await asyncio.to_thread(kubectl_get_hpa, kube=timeline.kube), flush=True)
                shown = True
            await asyncio.sleep(0.1)
        return summarize(await bench)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=120.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--output-tokens", type=int, default=16)
    parser.add_argument("--max-running", type=int, default=4)
    parser.add_argument("--load-sim-seconds", type=float, default=1500.0)
    parser.add_argument("--scale-down-window", type=int, default=300)
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nimble-autoscale-") as tmp:
        state = Path(tmp)
        with KubeSimulator(
            state / "kube",
            SimClock(args.time_scale),
            nim_overrides={"max_running": args.max_running},
        ) as kube:
            for _ in range(3):
                kube.add_gpu_node("VM.GPU.A10.1")
            client = deploy(kube, state, args.scale_down_window)
            try:
                figures = asyncio.run(run_demo(kube, args, started + REAL_BUDGET_S))
            finally:
                client.close()
    figures["real_seconds"] = round(time.monotonic() - started, 1)
    if args.output == "json":
        print(json.dumps(figures, indent=2))
    else:
        print()
        for key, value in figures.items():
            print(f"{key:34} {value}")
    return 0 if figures["scaled_up_to"] >= 2 and figures["scaled_down_to"] == 1 else 1


async def run_demo(kube: KubeSimulator, args: argparse.Namespace, deadline: float) -> Any:
    timeline = Timeline(kube, kube.clock.now())
    print(f"{'sim s':>9} {'replicas':>9} {'ready':>6} {'waiting':>9}")
    await watch_until(timeline, lambda s: s.ready >= 1, deadline=deadline)
    address = kube.service_address(NAMESPACE, NAME, 8000)
    if address is None:
        raise SystemExit("the Service has no local address")
    load_real_s = min(kube.clock.real_seconds(args.load_sim_seconds), deadline - time.monotonic())
    print(f"--- load: {args.concurrency} concurrent streaming requests ---", flush=True)
    load_start = kube.clock.now() - timeline.t0
    summary = await load_phase(
        timeline,
        f"http://{address[0]}:{address[1]}",
        args.concurrency,
        args.output_tokens,
        max(1.0, load_real_s),
    )
    load_end = kube.clock.now() - timeline.t0
    print("--- load stopped (requests in flight completed) ---", flush=True)
    await watch_until(
        timeline, lambda s: s.replicas == s.ready == s.hpa_replicas == 1, deadline=deadline
    )
    print(f"--- back to minReplicas; kubectl get hpa -n {NAMESPACE}:", flush=True)
    print(await asyncio.to_thread(kubectl_get_hpa, kube), flush=True)
    during = [s for s in timeline.samples if load_start <= s.sim_s <= load_end]
    peak = max((s.replicas for s in during), default=1)
    first_up = next((s.sim_s for s in during if s.replicas >= 2), None)
    all_ready = next((s.sim_s for s in during if s.ready >= peak), None)
    back = next((s.sim_s for s in timeline.samples if s.sim_s > load_end and s.replicas == 1), None)
    return {
        "time_scale": args.time_scale,
        "concurrency": args.concurrency,
        "load_sim_seconds_incl_drain": round(load_end - load_start),
        "scaled_up_to": peak,
        "first_scale_up_after_load_start_s": _since(first_up, load_start),
        "all_replicas_ready_after_load_start_s": _since(all_ready, load_start),
        "scaled_down_to": timeline.samples[-1].replicas,
        "back_to_one_after_load_stop_s": _since(back, load_end),
        "requests_ok": summary["request_count"]["avg"],
        "request_errors": summary["errors"]["count"],
        "output_tokens_per_s": round(summary["output_token_throughput"]["avg"], 1),
        "ttft_p50_ms": _round(summary["time_to_first_token"]["p50"]),
        "ttft_p90_ms": _round(summary["time_to_first_token"]["p90"]),
    }


def _since(t: float | None, origin: float) -> int | None:
    return None if t is None else round(t - origin)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


if __name__ == "__main__":
    raise SystemExit(main())
