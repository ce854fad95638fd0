"""``nimble bench`` and ``nimble bench diff``: thin Typer commands over :mod:`nimble_oke.bench`.

Not registered here. ``bench`` works both as a plain command and as the callback of a
``bench`` group whose ``diff`` subcommand is ``bench_diff``::

    bench_app = typer.Typer(invoke_without_command=True)
    bench_app.callback(invoke_without_command=True)(bench)
    bench_app.command("diff")(bench_diff)
    app.add_typer(bench_app, name="bench")
    bench_app.command("worker", hidden=True)(bench_worker)  # in-cluster shard (tools image)

The options are declared once as ``Annotated`` aliases and gathered into one
:class:`BenchFlags` object; the command body only checks the combination, builds the
:class:`~nimble_oke.bench.config.BenchConfig`, runs, renders and picks the exit code.
``--session NAME`` takes the endpoint from the state store, adds the session's cost per
million output tokens and records the run; ``--in-cluster --workers N`` (with
``--session``) runs the load generator as Jobs next to the session's Service.

Exit codes: 0 a PASSED and VALID run; :data:`FAILED_RUN_EXIT` (9) when more requests
failed than ``--max-error-rate`` allows (the server did not answer — checked first);
:data:`INVALID_RUN_EXIT` (8) when the validity gate says the client did not keep up.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nimble_oke.cli.common import check_output_format, err, handle_errors, print_json
from nimble_oke.errors import EXIT_CODES

# the run finished but the validity gate marked it INVALID
INVALID_RUN_EXIT = EXIT_CODES["benchmark-invalid"]
# more requests failed than --max-error-rate allows (outcome FAILED)
FAILED_RUN_EXIT = EXIT_CODES["benchmark-failed"]

if TYPE_CHECKING:
    from nimble_oke.bench.config import BenchConfig

Endpoint = Annotated[
    str | None, typer.Option("--endpoint", help="Base URL, e.g. http://127.0.0.1:8000")
]
Session = Annotated[
    str | None,
    typer.Option("--session", help="Benchmark this session's endpoint (instead of --endpoint)."),
]
InCluster = Annotated[
    bool,
    typer.Option("--in-cluster", help="With --session: run the load as Jobs next to the service."),
]
Workers = Annotated[
    int, typer.Option("--workers", help="--in-cluster: worker pods sharing the load.")
]
Model = Annotated[
    str | None, typer.Option("--model", help="Model name (default: the first listed).")
]
Concurrency = Annotated[
    int | None, typer.Option("--concurrency", help="Closed loop: requests in flight.")
]
Rate = Annotated[float | None, typer.Option("--rate", help="Open loop: requests per second.")]
Arrival = Annotated[
    str, typer.Option("--arrival", help="Open-loop arrivals: constant, poisson or gamma.")
]
Requests = Annotated[int | None, typer.Option("--requests", help="Requests to send (default 100).")]
Duration = Annotated[float | None, typer.Option("--duration", help="Stop sending after S seconds.")]
Warmup = Annotated[int, typer.Option("--warmup", help="Warm-up requests, excluded.")]
InputTokens = Annotated[
    str, typer.Option("--input-tokens", help="Input length in tokens: MEAN[,SD].")
]
OutputTokens = Annotated[int, typer.Option("--output-tokens", help="Output tokens per request.")]
Slo = Annotated[
    str | None, typer.Option("--slo", help="SLOs for goodput, e.g. ttft=200ms,itl=40ms.")
]
FindCapacity = Annotated[
    bool, typer.Option("--find-capacity", help="Search the highest load meeting --slo.")
]
Sweep = Annotated[
    str | None, typer.Option("--sweep", help="Concurrencies (or rates) to run, e.g. 1,4,16.")
]
Repeats = Annotated[int, typer.Option("--repeats", help="Repeat the run K times.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for prompts and arrivals.")]
Output = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
Export = Annotated[
    Path | None,
    typer.Option("--export", help="Write AIPerf-format JSON/CSV/JSONL and an HTML report here."),
]
Api = Annotated[str, typer.Option("--api", help="chat or completions.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Per-request timeout (s).")]
SessionCost = Annotated[
    float | None,
    typer.Option("--session-cost", help="Session cost in USD for $ per 1M output tokens."),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="NIMBLE_BENCH_API_KEY", help="Bearer token (env preferred).",
        show_default=False,
    ),
]  # fmt: skip
MaxErrorRate = Annotated[
    str,
    typer.Option("--max-error-rate", help="FAIL the run above this share of failed requests."),
]
Connections = Annotated[
    int | None,
    typer.Option("--connections", help="Connections opened before the run (default: automatic)."),
]
WarmConnections = Annotated[
    bool,
    typer.Option(
        "--warm-connections/--no-warm-connections",
        help="Open the connection pool before the measured phase.",
    ),
]


@dataclass(frozen=True)
class BenchFlags:
    """Every ``nimble bench`` option, as typed on the command line."""

    endpoint: str | None
    session: str | None
    in_cluster: bool
    workers: int
    model: str | None
    concurrency: int | None
    rate: float | None
    arrival: str
    requests: int | None
    duration: float | None
    warmup: int
    input_tokens: str
    output_tokens: int
    slo: str | None
    find_capacity: bool
    sweep: str | None
    repeats: int
    seed: int
    output: str
    export: Path | None
    api: str
    timeout: float
    session_cost: float | None
    api_key: str | None
    max_error_rate: str
    connections: int | None
    warm_connections: bool


@handle_errors
def bench(
    ctx: typer.Context,
    endpoint: Endpoint = None,
    session: Session = None,
    in_cluster: InCluster = False,
    workers: Workers = 1,
    model: Model = None,
    concurrency: Concurrency = None,
    rate: Rate = None,
    arrival: Arrival = "poisson",
    requests: Requests = None,
    duration: Duration = None,
    warmup: Warmup = 0,
    input_tokens: InputTokens = "128",
    output_tokens: OutputTokens = 64,
    slo: Slo = None,
    find_capacity: FindCapacity = False,
    sweep: Sweep = None,
    repeats: Repeats = 1,
    seed: Seed = 0,
    output: Output = "table",
    export: Export = None,
    api: Api = "chat",
    timeout: Timeout = 300.0,
    session_cost: SessionCost = None,
    api_key: ApiKey = None,
    max_error_rate: MaxErrorRate = "1%",
    connections: Connections = None,
    warm_connections: WarmConnections = True,
) -> None:
    """Benchmark an OpenAI-compatible endpoint (TTFT, ITL, throughput, goodput, validity)."""
    if ctx.invoked_subcommand is not None:
        return  # e.g. ``nimble bench diff A B``: the subcommand does the work
    options = dict(locals())
    del options["ctx"]
    raise typer.Exit(run_command(BenchFlags(**options)))


def run_command(flags: BenchFlags) -> int:
    """Check, run, record, render; returns the exit code."""
    endpoint = _check_flags(flags)
    config = build_config(flags, endpoint)
    rate_usd = session_cost_rate(flags.session) if flags.session is not None else None
    results, summaries, payload, extra = _execute(flags, config, rate_usd)
    paths = {}
    if flags.export is not None:
        from nimble_oke.bench.export import write_exports

        paths = write_exports(flags.export, results, summaries, extra)
    if flags.session is not None:
        _record_runs(flags.session, summaries, flags.export)
    if flags.output == "json":
        print_json(payload)
    else:
        _render(summaries, extra, config, paths)
    return exit_code(summaries)


def exit_code(summaries: list[dict[str, Any]]) -> int:
    """FAILED (errors) before INVALID (client saturation) before success; a failing run
    also says why in one line on stderr (the results stay on stdout)."""
    failed = [r for s in summaries if not s["outcome"]["passed"] for r in s["outcome"]["reasons"]]
    if failed:
        err(f"benchmark FAILED: {'; '.join(dict.fromkeys(failed))}")
        return FAILED_RUN_EXIT
    if any(not s["validity"]["valid"] for s in summaries):
        invalid = [r for s in summaries for r in s["validity"]["reasons"]]
        err(f"benchmark INVALID: {'; '.join(dict.fromkeys(invalid))}")
        return INVALID_RUN_EXIT
    return 0


def _check_flags(flags: BenchFlags) -> str:
    """The combination rules; returns the endpoint to measure."""
    from nimble_oke.errors import ConfigError

    if flags.endpoint is not None and flags.session is not None:
        raise ConfigError("--endpoint and --session are exclusive: pick one")
    if flags.in_cluster and flags.session is None:
        raise ConfigError("--in-cluster needs --session NAME (the cluster to run in)")
    if not flags.in_cluster and flags.workers != 1:
        raise ConfigError("--workers needs --in-cluster")
    modes = [flags.find_capacity, flags.sweep is not None, flags.repeats > 1]
    if flags.in_cluster and any(modes):
        raise ConfigError(
            "--in-cluster runs one load level: no --sweep, --repeats, --find-capacity"
        )
    endpoint = session_endpoint(flags.session) if flags.session is not None else flags.endpoint
    if endpoint is None:
        raise ConfigError(
            "--endpoint is required (or --session NAME), e.g. --endpoint http://127.0.0.1:8000"
        )
    check_output_format(flags.output)
    if flags.repeats < 1:
        raise ConfigError(f"--repeats {flags.repeats}: allowed an integer >= 1")
    if sum(modes) > 1:
        raise ConfigError("--find-capacity, --sweep and --repeats are exclusive: pick one")
    if flags.session is not None and flags.session_cost is not None:
        raise ConfigError("--session-cost is for --endpoint runs: a session's cost is known")
    return endpoint


def build_config(flags: BenchFlags, endpoint: str) -> BenchConfig:
    """The :class:`BenchConfig` the flags ask for (each bad value names its flag)."""
    from nimble_oke.bench.config import (
        BenchConfig,
        parse_error_rate,
        parse_input_tokens,
        parse_slo,
    )
    from nimble_oke.errors import ConfigError

    if flags.rate is not None and flags.concurrency is not None:
        raise ConfigError("--concurrency and --rate are exclusive: closed loop or open loop")
    if flags.arrival not in ("constant", "poisson", "gamma"):
        raise ConfigError(
            f"--arrival {flags.arrival!r}: allowed values are constant, poisson, gamma"
        )
    if flags.api not in ("chat", "completions"):
        raise ConfigError(f"--api {flags.api!r}: allowed values are chat, completions")
    mean, sd = parse_input_tokens(flags.input_tokens)
    slo_ms = parse_slo(flags.slo) if flags.slo else {}
    if flags.find_capacity and not slo_ms:
        raise ConfigError("--find-capacity needs --slo, e.g. --slo ttft=200ms,itl=40ms")
    bounded = flags.requests is not None or flags.duration is not None
    return BenchConfig(
        endpoint=endpoint,
        model=flags.model,
        api=flags.api,  # type: ignore[arg-type]
        concurrency=flags.concurrency if flags.concurrency is not None else 1,
        rate=flags.rate,
        arrival=flags.arrival,  # type: ignore[arg-type]
        requests=flags.requests if bounded else 100,
        duration_s=flags.duration,
        warmup=flags.warmup,
        input_tokens_mean=mean,
        input_tokens_sd=sd,
        output_tokens=flags.output_tokens,
        slo_ms=slo_ms,
        seed=flags.seed,
        timeout_s=flags.timeout,
        session_cost_usd=flags.session_cost,
        api_key=flags.api_key,
        max_error_rate=parse_error_rate(flags.max_error_rate),
        connections=flags.connections,
        warm_connections=flags.warm_connections,
    )


def _observer(flags: BenchFlags) -> Any:
    """A live progress display on a terminal, plain lines on stderr otherwise; nothing with
    ``--output json``."""
    import contextlib

    if flags.output != "table":
        return contextlib.nullcontext(None)
    if not sys.stderr.isatty():  # a log: a plain line every 10 s (rate, in flight, errors)
        from nimble_oke.cli.progress import PlainBenchLines

        return PlainBenchLines(lambda line: typer.echo(line, err=True))
    from nimble_oke.bench.progress import ProgressDisplay

    return ProgressDisplay()


def _execute(
    flags: BenchFlags, config: BenchConfig, rate_usd: tuple[float, float] | None
) -> tuple[list[Any], list[dict[str, Any]], Any, dict[str, Any]]:
    """Run what the flags ask for: (results, summaries, JSON payload, extra export keys)."""
    from nimble_oke.bench import runs
    from nimble_oke.bench.config import parse_int_list

    with _observer(flags) as show:
        extra: dict[str, Any] = {}
        if flags.in_cluster:
            assert flags.session is not None
            merged, placement = _run_in_cluster(flags.session, config, flags.workers)
            summary = summarize_for_session(merged, flags.session, rate_usd)
            summary["in_cluster"] = placement
            return [merged], [summary], summary, extra
        if flags.find_capacity:
            cap = runs.find_capacity(config, observer=show)
            results = cap.results
            extra = {"capacity": {"mode": cap.mode, "value": cap.capacity, "steps": cap.steps}}
        elif flags.sweep is not None:
            levels = parse_int_list("--sweep", flags.sweep)
            results = runs.sweep(config, levels, observer=show)
        elif flags.repeats > 1:
            results = runs.repeats(config, flags.repeats, observer=show)
        else:
            results = [runs.run(config, observer=show)]
    summaries = [summarize_for_session(r, flags.session, rate_usd) for r in results]
    if flags.repeats > 1:
        extra = {"repeat_variation": runs.repeat_variation(summaries)}
    if len(summaries) == 1 and not extra:
        return results, summaries, summaries[0], extra
    key = "sweep" if flags.sweep is not None else "runs"
    return results, summaries, {**extra, key: summaries}, extra


def _record_runs(session: str, summaries: list[dict[str, Any]], export: Path | None) -> None:
    from nimble_oke.state.store import StateStore

    with StateStore() as store:
        for s in summaries:
            store.add_bench_run(session, s, str(export) if export is not None else None)


# --- rendering ----------------------------------------------------------------------------
def _ms(v: Any) -> str:
    return "–" if v is None else f"{v:,.1f} ms"


def _status(text: str) -> str:
    good = text in ("VALID", "PASSED")
    return typer.style(text, fg="green" if good else "red", bold=not good)


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
        f"{e['count']} errors · {_status(summary['outcome']['status'])} · "
        f"{_status(summary['validity']['status'])}"
    )


def _render(
    summaries: list[dict[str, Any]],
    extra: dict[str, Any],
    config: BenchConfig,
    paths: dict[str, Path],
) -> None:
    if len(summaries) == 1:
        render_summary(summaries[0])
    else:
        typer.echo(f"nimble bench — {summaries[-1]['config']['model']} @ {config.endpoint}")
        for s in summaries:
            typer.echo(_line(s))
        if "capacity" in extra:
            c = extra["capacity"]
            typer.echo(f"  capacity     {c['mode']} {c['value']} meets {config.slo_ms} (ms)")
        for key, v in extra.get("repeat_variation", {}).items():
            if isinstance(v, dict) and v.get("mean") is not None:
                cv = "–" if v["cv"] is None else f"{v['cv']:.1%}"
                typer.echo(f"  {key:<32} mean {v['mean']:,.2f} sd {v['sd']:,.2f} CV {cv}")
    for name, path in paths.items():
        typer.echo(f"  export {name:<6} {path}")


def render_summary(summary: dict[str, Any]) -> None:
    """Human-readable run summary on stdout."""
    from nimble_oke.bench.metrics import DISTRIBUTIONS

    cfg = summary["config"]
    o, v = summary["outcome"], summary["validity"]
    typer.echo(f"nimble bench — {cfg['model']} @ {cfg['endpoint']}")
    typer.echo(f"  outcome      {_status(o['status'])}")
    for reason in o["reasons"]:
        typer.echo(f"    ✗ {reason}")
    typer.echo(f"  validity     {_status(v['status'])}")
    for reason in v["reasons"]:
        typer.echo(f"    ✗ {reason}")
    for warning in v["warnings"] + summary["warnings"]:
        typer.echo(f"    ! {warning}")
    for metric in DISTRIBUTIONS:
        if metric.short is not None:
            d = summary[metric.key]
            typer.echo(
                f"  {metric.short:<12} p50 {_ms(d['p50'])}  p90 {_ms(d['p90'])}  "
                f"p99 {_ms(d['p99'])}  avg {_ms(d['avg'])}"
            )
    typer.echo("  (TTFT* = from the intended send time: includes any client-side send lag)")
    _render_totals(summary)


def _render_totals(summary: dict[str, Any]) -> None:
    e = summary["errors"]
    by_type = ", ".join(f"{k} {n}" for k, n in e["by_type"].items())
    typer.echo(
        f"  throughput   {summary['output_token_throughput']['avg']:,.1f} tok/s · "
        f"{summary['request_throughput']['avg']:,.2f} req/s · "
        f"{summary['request_count']['avg']:.0f} ok · errors {e['count']} ({e['rate']:.1%})"
        + (f": {by_type}" if by_type else "")
    )
    slo = summary["slo"]
    if slo.get("slo_ms"):
        typer.echo(
            f"  goodput      {summary['goodput']['avg']:,.2f} req/s · "
            f"{slo['token_goodput']['avg']:,.1f} tok/s · {slo['attainment']:.0%} of requests "
            f"met {slo['slo_ms']}"
        )
    s = summary["server"]
    if s.get("available"):
        kv = s.get("kv_cache_usage_max")
        typer.echo(
            f"  server       TTFT mean {_ms(s['time_to_first_token_mean_ms'])} · "
            f"queue max {_count(s['num_requests_waiting_max'])} · "
            f"KV max {'–' if kv is None else f'{kv:.1%}'}"
        )
    conns = summary.get("client", {}).get("connections") or {}
    if conns.get("reuse"):
        typer.echo(
            f"  connections  {conns.get('warmed', 0)} opened before the run · "
            f"{conns.get('opened_during_run', 0)} during it"
        )
    _render_cost(summary)


def _count(v: Any) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _render_cost(summary: dict[str, Any]) -> None:
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


# --- sessions and the cluster -----------------------------------------------------------------
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


# --- worker and diff ----------------------------------------------------------------------------
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
    """Compare two benchmark runs, with significance tests on per-request values (nimble's
    exports, older ones, or AIPerf 0.13's)."""
    from nimble_oke.bench.diff import diff_summaries

    check_output_format(output)
    result = diff_summaries(a, b)
    if output == "json":
        print_json(result)
        return
    typer.echo(f"nimble bench diff — {a} → {b}")
    for key, m in result["metrics"].items():
        if "a_p50" in m:
            typer.echo(f"  {key:<30} p50 {_ms(m['a_p50'])} → {_ms(m['b_p50'])}{_significance(m)}")
        else:
            rel = m["relative_change"]
            typer.echo(
                f"  {key:<30} {_num(m['a'])} → {_num(m['b'])}"
                + ("" if rel is None else f" ({rel:+.1%})")
            )


def _num(v: Any) -> str:
    return "–" if v is None else f"{v:,.2f}"


def _significance(m: dict[str, Any]) -> str:
    if "significant" not in m:
        return ""
    lo, hi = m["p50_delta_ci95"]
    verdict = "SIGNIFICANT" if m["significant"] else "not significant"
    return (
        f"  Δp50 {m['p50_delta_ms']:+.2f} ms [{lo:+.2f}, {hi:+.2f}] "
        f"p={m['mann_whitney_p']:.3g} {verdict}"
    )
