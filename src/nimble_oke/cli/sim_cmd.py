"""``nimble sim``: the local simulators (serve in the foreground, or a background service)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nimble_oke.cli.common import handle_errors, print_json
from nimble_oke.cli.sim_nim_cmd import sim_nim

sim_app = typer.Typer(help="Local simulators of OCI, Kubernetes and NIM.", no_args_is_help=True)
sim_app.command("nim")(sim_nim)


@sim_app.command("serve")
@handle_errors
def serve_cmd(
    state_dir: Annotated[
        str | None, typer.Option(help="State directory (default: $NIMBLE_HOME/sim).")
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            help="Run a scaled clock instead of the event clock: simulated seconds per real "
            "second, always (600: a 12 min create in 1.2 s, a 2 h lease in 12 s)."
        ),
    ] = None,
    faults: Annotated[str | None, typer.Option(help="Fault plan file (YAML/JSON).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for deterministic faults and ids.")] = None,
) -> None:
    """Run the OCI and Kubernetes simulators (joined) until interrupted."""
    from nimble_oke.errors import ConfigError
    from nimble_oke.services.sim_service import serve
    from nimble_oke.services.sim_service import state_dir as default_dir
    from nimble_oke.state.store import default_home

    if time_scale is not None and time_scale <= 0:
        raise ConfigError(f"--time-scale {time_scale}: must be > 0")
    if faults and not Path(faults).exists():
        raise ConfigError(f"--faults {faults}: file does not exist")
    directory = Path(state_dir) if state_dir else default_dir(default_home())
    serve(directory, time_scale=time_scale, faults_file=Path(faults) if faults else None, seed=seed)


@sim_app.command("start")
@handle_errors
def start_cmd(
    time_scale: Annotated[
        float | None,
        typer.Option(
            help="Run a scaled clock instead of the event clock (simulated seconds per real "
            "second, always); for tests and automation."
        ),
    ] = None,
) -> None:
    """Start the simulators as a background service (state under $NIMBLE_HOME/sim).

    Simulated time runs at real speed and jumps over provisioning, image pulls and model
    downloads while nothing else happens: `up` takes seconds, and a ready endpoint lives
    as long as its lease in real time (skip ahead with `nimble sim advance`)."""
    from nimble_oke.services.sim_service import start
    from nimble_oke.state.store import default_home

    status = start(default_home(), time_scale=time_scale)
    typer.echo(
        f"simulators running (pid {status['pid']}): OCI {status['endpoints']['oci']} · "
        f"Kubernetes {status['endpoints']['kube']}"
    )


@sim_app.command("stop")
@handle_errors
def stop_cmd() -> None:
    """Stop the background simulators (their cloud state is saved)."""
    from nimble_oke.services.sim_service import stop
    from nimble_oke.state.store import default_home

    typer.echo("stopped" if stop(default_home()) else "not running")


@sim_app.command("advance")
@handle_errors
def advance_cmd(
    hours: Annotated[float, typer.Option(help="Simulated hours to skip (0 < hours ≤ 720).")],
) -> None:
    """Skip simulated time, as if the laptop were closed: leases run out, the in-cluster
    watchdog acts, billing accrues (then see nimble status)."""
    import time

    from nimble_oke.services.sim_service import advance
    from nimble_oke.state.store import default_home

    now = advance(default_home(), hours)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
    typer.echo(f"simulated clock moved {hours:g} h forward: now {stamp} UTC")


@sim_app.command("status")
@handle_errors
def status_cmd(output: Annotated[str, typer.Option("--output", "-o")] = "table") -> None:
    """Is the background service running, and where."""
    from nimble_oke.services.sim_service import status
    from nimble_oke.state.store import default_home

    current = status(default_home())
    if output == "json":
        print_json(current)
    elif current["running"]:
        eps = current["endpoints"]
        typer.echo(
            f"running (pid {current['pid']}): OCI {eps['oci']} · {eps.get('clock', 'scaled')} "
            f"clock · one Kubernetes API per cluster (listed at {eps['kube']}; admin "
            f"kubeconfigs in {eps['kubeconfig']})"
        )
    else:
        typer.echo("not running (nimble sim start)")
