"""``nimble bench`` and ``nimble bench diff``: thin Typer commands over :mod:`nimble_oke.bench`.

Not registered here. ``bench`` works both as a plain command and as the callback of a
``bench`` group whose ``diff`` subcommand is ``bench_diff``::

    bench_app = typer.Typer(invoke_without_command=True)
    bench_app.callback(invoke_without_command=True)(bench)
    bench_app.command("diff")(bench_diff)
    app.add_typer(bench_app, name="bench")
    bench_app.command("worker", hidden=True)(bench_worker)  # in-cluster shard (tools image)

``--session NAME`` takes the endpoint from the state store, adds the session's cost per
million output tokens and records the run; ``--in-cluster --workers N`` (with
``--session``) runs the load generator as Jobs next to the session's Service.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nimble_oke.cli.common import check_output_format, handle_errors, print_json

INVALID_RUN_EXIT = 8  # the run finished but the validity gate marked it INVALID

if TYPE_CHECKING:
    from nimble_oke.bench.config import BenchConfig


def _ms(v: Any) -> str:
    return "–" if v is None else f"{v:,.1f} ms"


def _line(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    load = (
        f"concurrency {cfg['concurrency']}"
        if cfg["rate"] is None
        else (f"rate {cfg['rate']:g}/s {cfg['arrival']}")
    )
    e = summary["errors"]
    return (
        f"  {load:<24} TTFT p50 {_ms(summary['time_to_first_token']['p50'])} · "
        f"ITL p50 {_ms(summary['inter_token_latency']['p50'])} · "
        f"{summary['output_token_throughput']['avg']:,.0f} tok/s · "
        f"{e['count']} errors · {summary['validity']['status'].lower()}"
    )


def render_summary(summary: dict[str, Any]) -> None:
    """Human-readable run summary on stdout."""
    cfg = summary["config"]
    v = summary["validity"]
    typer.echo(f"nimble bench — {cfg['model']} @ {cfg['endpoint']}")
    typer.echo(f"  validity     {v['status']}")
    for reason in v["reasons"]:
        typer.echo(f"    ✗ {reason}")
    for warning in v["warnings"] + summary["warnings"]:
        typer.echo(f"    ! {warning}")
    for label, key in (
        ("TTFT", "time_to_first_token"),
        ("ITL", "inter_token_latency"),
        ("TPOT", "time_per_output_token"),
        ("latency", "request_latency"),
        ("TTFT*", "time_to_first_token_from_intended_send"),
    ):
        d = summary[key]
        typer.echo(
            f"  {label:<12} p50 {_ms(d['p50'])}  p90 {_ms(d['p90'])}  p99 {_ms(d['p99'])}  "
            f"avg {_ms(d['avg'])}"
        )
    typer.echo("  (TTFT* = from the intended send time: includes any client-side send lag)")
    e = summary["errors"]
    by_type = ", ".join(f"{k} {n}" for k, n in e["by_type"].items())
    typer.echo(
        f"  throughput   {summary['output_token_throughput']['avg']:,.1f} tok/s · "
        f"{summary['request_throughput']['avg']:,.2f} req/s · "
        f"{summary['request_count']['avg']} ok · errors {e['count']} ({e['rate']:.1%})"
        + (f": {by_type}" if by_type else "")
    )
    g = summary["goodput"]
    if g.get("request_goodput"):
        typer.echo(
            f"  goodput      {g['request_goodput']['avg']:,.2f} req/s · "
            f"{g['token_goodput']['avg']:,.1f} tok/s · {g['attainment']:.0%} of requests "
            f"met {g['slo_ms']}"
        )
    s = summary["server"]
    if s.get("available"):
        typer.echo(
            f"  server       TTFT mean {_ms(s['time_to_first_token_mean_ms'])} · "
            f"queue max {s['num_requests_waiting_max']} · KV max {s['kv_cache_usage_max']}"
        )
    c = summary["cost"]
    if c.get("usd_per_million_output_tokens") is not None:
        basis = (
            f" (session {c['session']} at ${c['usd_per_hour']:,.2f}/h over {c['window_s']:.1f} s)"
            if c.get("session")
            else ""
        )
        typer.echo(
            f"  cost         ${c['usd_per_million_output_tokens']:,.2f} per 1M output tokens"
            + basis
        )
    ic = summary.get("in_cluster")
    if ic:
        typer.echo(
            f"  in-cluster   {ic['workers']} workers → {ic['endpoint']} · start skew "
            f"{ic['max_start_skew_s'] * 1e3:,.0f} ms"
        )


def session_endpoint(name: str) -> str:
    """The endpoint ``nimble up`` recorded for session ``name`` (a clear error otherwise)."""
    from nimble_oke.errors import ConfigError, StateError
    from nimble_oke.state.store import StateStore

    with StateStore() as store:
        record = store.session(name)
        known = ", ".join(s.name for s in store.sessions()) or "none"
    if record is None:
        raise StateError(f"no session named '{name}' (known sessions: {known})")
    if not record.endpoint:
        raise ConfigError(
            f"session '{name}' has no endpoint (status: {record.status}); "
            "bring it up with nimble up, or pass --endpoint URL"
        )
    return record.endpoint


def session_cost_rate(name: str) -> tuple[float, float]:
    """(running $/h, accrued $) of session ``name`` from the cost engine."""
    from nimble_oke.services.costs import session_cost
    from nimble_oke.state.store import StateStore

    with StateStore() as store:
        cost = session_cost(name, None, store)
    return float(cost["running_usd_per_hour"]), float(cost["accrued_usd"])


def summarize_for_session(
    result: Any, session: str | None, rate: tuple[float, float] | None
) -> dict[str, Any]:
    """``summarize(result)``; for a session run, with the cost of its tokens.

    Cost basis: the session's running rate (all its live resources, $/h, from the cost
    engine) over the run's measurement window — ``usd = usd_per_hour × window_s / 3600``
    and ``usd_per_million_output_tokens = usd / Σ output tokens × 1e6`` (equivalently
    ``usd_per_hour / (output_token_throughput × 3600) × 1e6``). Not the session's whole
    accrued cost, which includes provisioning and idle time (reported alongside)."""
    from nimble_oke.bench.analysis import analyze
    from nimble_oke.bench.summary import summarize, window_s

    if session is None or rate is None:
        return summarize(result)
    usd_per_hour, accrued = rate
    window = window_s(analyze(result))
    usd = usd_per_hour * window / 3600.0 if usd_per_hour > 0 else None
    summary = summarize(result, session_cost_usd=usd)
    summary["cost"].update(
        {
            "session": session,
            "basis": "usd_per_hour * window_s / 3600",
            "usd_per_hour": usd_per_hour,
            "window_s": window,
            "session_accrued_usd": accrued,
        }
    )
    return summary


def _session_cluster(name: str) -> tuple[Any, str, str]:
    """(lightkube client, namespace, NIM service name) of session ``name``'s cluster."""
    from nimble_oke.services.lifecycle import release_name
    from nimble_oke.services.sessions import session_cluster_client

    client, cfg = session_cluster_client(name)
    return client, cfg.nim.namespace, f"{release_name(name)}-nimble-nim"


def _run_in_cluster(session: str, config: BenchConfig, workers: int) -> tuple[Any, dict[str, Any]]:
    from nimble_oke.bench.incluster import run_in_cluster
    from nimble_oke.cli.common import info

    client, namespace, service = _session_cluster(session)
    try:
        run = run_in_cluster(client, namespace, service, config, workers, say=info)
    finally:
        client.close()
    return run.result, run.as_dict()


def _config(**kw: Any) -> BenchConfig:
    from nimble_oke.bench.config import BenchConfig, parse_input_tokens, parse_slo
    from nimble_oke.errors import ConfigError

    mean, sd = parse_input_tokens(kw.pop("input_tokens"))
    slo_text = kw.pop("slo")
    if kw["rate"] is not None and kw["concurrency_given"]:
        raise ConfigError("--concurrency and --rate are exclusive: closed loop or open loop")
    kw.pop("concurrency_given")
    if kw["arrival"] not in ("constant", "poisson", "gamma"):
        raise ConfigError(
            f"--arrival {kw['arrival']!r}: allowed values are constant, poisson, gamma"
        )
    if kw["api"] not in ("chat", "completions"):
        raise ConfigError(f"--api {kw['api']!r}: allowed values are chat, completions")
    return BenchConfig(
        input_tokens_mean=mean,
        input_tokens_sd=sd,
        slo_ms=parse_slo(slo_text) if slo_text else {},
        **kw,
    )


@handle_errors
def bench(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Base URL, e.g. http://127.0.0.1:8000")
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(
            "--session", help="Benchmark this session's endpoint (instead of --endpoint)."
        ),
    ] = None,
    in_cluster: Annotated[
        bool,
        typer.Option(
            "--in-cluster", help="With --session: run the load as Jobs next to the service."
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", help="--in-cluster: worker pods sharing the load.")
    ] = 1,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (default: the first listed).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Closed loop: requests in flight.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", help="Open loop: requests per second.")
    ] = None,
    arrival: Annotated[
        str, typer.Option("--arrival", help="Open-loop arrivals: constant, poisson or gamma.")
    ] = "poisson",
    requests: Annotated[
        int | None, typer.Option("--requests", help="Requests to send (default 100).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop sending after S seconds.")
    ] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Warm-up requests, excluded.")] = 0,
    input_tokens: Annotated[
        str, typer.Option("--input-tokens", help="Input length in tokens: MEAN[,SD].")
    ] = "128",
    output_tokens: Annotated[
        int, typer.Option("--output-tokens", help="Output tokens per request.")
    ] = 64,
    slo: Annotated[
        str | None, typer.Option("--slo", help="SLOs for goodput, e.g. ttft=200ms,itl=40ms.")
    ] = None,
    find_capacity: Annotated[
        bool, typer.Option("--find-capacity", help="Search the highest load meeting --slo.")
    ] = False,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="Concurrencies (or rates) to run, e.g. 1,4,16.")
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Repeat the run K times.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed for prompts and arrivals.")] = 0,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    export: Annotated[
        Path | None, typer.Option("--export", help="Write GenAI-Perf JSON/CSV, JSONL, HTML here.")
    ] = None,
    api: Annotated[str, typer.Option("--api", help="chat or completions.")] = "chat",
    timeout: Annotated[float, typer.Option("--timeout", help="Per-request timeout (s).")] = 300.0,
    session_cost: Annotated[
        float | None,
        typer.Option("--session-cost", help="Session cost in USD for $ per 1M output tokens."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="NIMBLE_BENCH_API_KEY",
            help="Bearer token (env preferred).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Benchmark an OpenAI-compatible endpoint (TTFT, ITL, throughput, goodput, validity)."""
    from nimble_oke.bench import runs
    from nimble_oke.bench.config import parse_int_list
    from nimble_oke.bench.engine import run_sync
    from nimble_oke.bench.export import write_exports
    from nimble_oke.errors import ConfigError

    if ctx.invoked_subcommand is not None:
        return  # e.g. ``nimble bench diff A B``: the subcommand does the work
    if endpoint is not None and session is not None:
        raise ConfigError("--endpoint and --session are exclusive: pick one")
    if in_cluster and session is None:
        raise ConfigError("--in-cluster needs --session NAME (the cluster to run in)")
    if not in_cluster and workers != 1:
        raise ConfigError("--workers needs --in-cluster")
    if in_cluster and (find_capacity or sweep is not None or repeats > 1):
        raise ConfigError(
            "--in-cluster runs one load level: no --sweep, --repeats, --find-capacity"
        )
    if session is not None:
        endpoint = session_endpoint(session)
    if endpoint is None:
        raise ConfigError(
            "--endpoint is required (or --session NAME), e.g. --endpoint http://127.0.0.1:8000"
        )
    check_output_format(output)
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: allowed an integer >= 1")
    if sum([find_capacity, sweep is not None, repeats > 1]) > 1:
        raise ConfigError("--find-capacity, --sweep and --repeats are exclusive: pick one")
    config = _config(
        endpoint=endpoint,
        model=model,
        concurrency=concurrency if concurrency is not None else 1,
        concurrency_given=concurrency is not None,
        rate=rate,
        arrival=arrival,
        requests=requests if requests is not None or duration is not None else 100,
        duration_s=duration,
        warmup=warmup,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        slo=slo,
        seed=seed,
        api=api,
        timeout_s=timeout,
        session_cost_usd=session_cost,
        api_key=api_key,
    )
    if find_capacity and not config.slo_ms:
        raise ConfigError("--find-capacity needs --slo, e.g. --slo ttft=200ms,itl=40ms")
    if session is not None and session_cost is not None:
        raise ConfigError("--session-cost is for --endpoint runs: a session's cost is known")
    rate_usd = session_cost_rate(session) if session is not None else None

    def summarize(result: Any) -> dict[str, Any]:
        return summarize_for_session(result, session, rate_usd)

    extra: dict[str, Any] = {}
    if find_capacity:
        cap = runs.find_capacity(config)
        results = cap.results
        summaries = [summarize(r) for r in results]
        extra = {"capacity": {"mode": cap.mode, "value": cap.capacity, "steps": cap.steps}}
        payload: dict[str, Any] = {**extra, "runs": summaries}
    elif sweep is not None:
        levels = parse_int_list("--sweep", sweep)
        results = run_sync(lambda: runs.sweep_async(config, levels))
        summaries = [summarize(r) for r in results]
        payload = {"sweep": summaries}
    elif repeats > 1:
        results = runs.repeats(config, repeats)
        summaries = [summarize(r) for r in results]
        extra = {"repeat_variation": runs.repeat_variation(summaries)}
        payload = {**extra, "runs": summaries}
    elif in_cluster:
        assert session is not None
        merged, placement = _run_in_cluster(session, config, workers)
        results = [merged]
        summaries = [summarize(merged)]
        summaries[0]["in_cluster"] = placement
        payload = summaries[0]
    else:
        results = [runs.run(config)]
        summaries = [summarize(results[0])]
        payload = summaries[0]

    paths = write_exports(export, results, summaries, extra) if export is not None else {}
    if session is not None:
        from nimble_oke.state.store import StateStore

        with StateStore() as store:
            for s in summaries:
                store.add_bench_run(session, s, str(export) if export is not None else None)
    if output == "json":
        print_json(payload)
    else:
        if len(summaries) == 1:
            render_summary(summaries[0])
        else:
            typer.echo(f"nimble bench — {summaries[-1]['config']['model']} @ {endpoint}")
            for s in summaries:
                typer.echo(_line(s))
            if "capacity" in extra:
                c = extra["capacity"]
                typer.echo(f"  capacity     {c['mode']} {c['value']} meets {config.slo_ms} (ms)")
            if "repeat_variation" in extra:
                for key, v in extra["repeat_variation"].items():
                    if isinstance(v, dict) and v.get("mean") is not None:
                        cv = "–" if v["cv"] is None else f"{v['cv']:.1%}"
                        typer.echo(f"  {key:<32} mean {v['mean']:,.2f} sd {v['sd']:,.2f} CV {cv}")
        for name, path in paths.items():
            typer.echo(f"  export {name:<6} {path}")
    if any(not s["validity"]["valid"] for s in summaries):
        raise typer.Exit(INVALID_RUN_EXIT)


@handle_errors
def bench_worker(
    endpoint: Annotated[str, typer.Option("--endpoint", help="In-cluster service URL.")],
    shard_index: Annotated[int, typer.Option("--shard-index", help="This worker's shard.")],
    workers: Annotated[int, typer.Option("--workers", help="Number of shards.")],
    config: Annotated[str, typer.Option("--config", help="The run's BenchConfig as JSON.")],
) -> None:
    """Run one shard of an in-cluster benchmark and print its raw result (used by the Jobs
    ``nimble bench --in-cluster`` creates; the API key, if any, from NIMBLE_BENCH_API_KEY)."""
    from nimble_oke.bench.incluster import worker_main

    argv = ["nimble", "bench", "worker", "--endpoint", endpoint, "--shard-index"]
    argv += [str(shard_index), "--workers", str(workers), "--config", config]
    code = worker_main(argv, typer.echo)
    if code:
        raise typer.Exit(code)


@handle_errors
def bench_diff(
    a: Annotated[Path, typer.Argument(help="Baseline: export directory or JSON summary.")],
    b: Annotated[Path, typer.Argument(help="Candidate: export directory or JSON summary.")],
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
) -> None:
    """Compare two benchmark runs, with significance tests on per-request values."""
    from nimble_oke.bench.diff import diff_summaries
    from nimble_oke.errors import ConfigError

    check_output_format(output)
    for path in (a, b):
        if not path.exists():
            raise ConfigError(f"{path}: no such export directory or JSON file")
    result = diff_summaries(a, b)
    if output == "json":
        print_json(result)
        return
    typer.echo(f"nimble bench diff — {a} → {b}")
    for key, m in result["metrics"].items():
        if "a_p50" in m:
            sig = ""
            if "significant" in m:
                lo, hi = m["p50_delta_ci95"]
                sig = (
                    f"  Δp50 {m['p50_delta_ms']:+.2f} ms [{lo:+.2f}, {hi:+.2f}] "
                    f"p={m['mann_whitney_p']:.3g} "
                    + ("SIGNIFICANT" if m["significant"] else "not significant")
                )
            typer.echo(f"  {key:<24} p50 {_ms(m['a_p50'])} → {_ms(m['b_p50'])}{sig}")
        else:
            rel = m["relative_change"]
            typer.echo(
                f"  {key:<24} {m['a']:,.2f} → {m['b']:,.2f}"
                + ("" if rel is None else f" ({rel:+.1%})")
            )
