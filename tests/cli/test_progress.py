"""Live progress for up/down (cli/progress.py): the saga's step events and the say() lines
drive one status line redrawn in place on a terminal, plain appended lines elsewhere, and
nothing with --output json."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nimble_oke.cli.progress import LiveProgress, State, for_command, status_line, waiting_on
from nimble_oke.errors import ProviderError
from nimble_oke.services.saga import Saga, SagaFailedError, StepEvent, listening


@dataclass
class Plan:
    time_to_ready_s: float = 1432.0  # 23m52s


@dataclass
class Ctx:
    plan: Plan = field(default_factory=Plan)
    log: list[str] = field(default_factory=list)


class Step:
    def __init__(self, name: str, phase: str | None = None, fail: bool = False) -> None:
        self.name, self.phase, self.fail = name, phase, fail

    def do(self, ctx: Ctx) -> None:
        ctx.log.append(self.name)
        if self.fail:
            raise ProviderError("out of capacity")

    def undo(self, ctx: Ctx) -> None:
        ctx.log.append(f"undo {self.name}")


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def event(step: str, status: str, index: int = 1, total: int = 3, ctx: object = None) -> StepEvent:
    return StepEvent("up", "try1", step, None, status, index, total, ctx)


def test_status_line_names_step_wait_elapsed_and_plan() -> None:
    state = State("up", "try1", "wait ready", 9, 17, "model download 40%", 1432.0, started=0.0)
    assert status_line(state, 41.0) == (
        "up try1 · 9/17 wait ready · model download 40% · 41s · plan: ready after ≈ 23m52s of cloud time"
    )
    state.undoing, state.expected_s, state.waiting_on = True, None, ""
    assert status_line(state, 125.0) == "up try1 · 9/17 undo wait ready · 2m05s"


def test_the_plans_time_to_ready_is_shown_until_the_endpoint_is_ready() -> None:
    display = LiveProgress("up", Console(file=io.StringIO()), live=False, clock=FakeClock())
    ctx = Ctx()
    display.on_event(event("wait ready", "started", 9, 17, ctx))
    assert display.state.expected_s == 1432.0
    display.on_event(event("ready", "done", 13, 17, ctx))
    display.on_event(event("bench", "started", 17, 17, ctx))
    assert "plan" not in status_line(display.state, 200.0)


@dataclass
class Store:
    """A run's state store as the display reads it: only its clock (the cloud's)."""

    t: float = 5000.0

    def now(self) -> float:
        return self.t


@dataclass
class RunCtx:
    plan: Plan = field(default_factory=Plan)
    store: Store = field(default_factory=Store)


def test_cloud_time_against_the_plan_read_at_events_and_say_lines() -> None:
    clock = FakeClock()
    display = LiveProgress("up", Console(file=io.StringIO()), live=False, clock=clock)
    ctx = RunCtx()
    display.on_event(event("gpu pool", "started", 8, 16, ctx))
    ctx.store.t += 11 * 60  # the simulated cloud moved 11 minutes
    clock.t += 9
    display.say("provision   network ✓  cluster ✓  gpu pool ✓")
    assert status_line(display.state, clock()) == (
        "up try1 · 8/16 gpu pool · network ✓  cluster ✓  gpu pool ✓ · 9s · "
        "cloud time 11m00s of ≈ 23m52s planned"
    )


def test_waiting_on_reads_the_say_lines_detail() -> None:
    assert waiting_on("deploy      model download 40%") == "model download 40%"
    assert (
        waiting_on("gpu pool: trying VM.GPU.A10.1 in AD-1")
        == "gpu pool: trying VM.GPU.A10.1 in AD-1"
    )


def test_saga_reports_each_step_to_the_listener_and_survives_a_failing_one(
    tmp_path: Path,
) -> None:
    from nimble_oke.state.store import StateStore

    seen: list[tuple[str, str, int, int]] = []

    def listener(ev: StepEvent) -> None:
        seen.append((ev.step, ev.status, ev.index, ev.total))
        raise RuntimeError("a broken display")  # must not fail the run

    with StateStore(tmp_path) as store, listening(listener):
        saga: Saga[Ctx] = Saga(store, "s", "up", say=lambda _m: None)
        ctx = Ctx()
        with pytest.raises(SagaFailedError):
            saga.run([Step("net"), Step("pool", fail=True), Step("never")], ctx)
    assert ctx.log == ["net", "pool", "undo pool", "undo net"]
    assert seen == [
        ("net", "started", 1, 3),
        ("net", "done", 1, 3),
        ("pool", "started", 2, 3),
        ("pool", "failed", 2, 3),
        ("pool", "undoing", 1, 2),
        ("pool", "undone", 1, 2),
        ("net", "undoing", 2, 2),
        ("net", "undone", 2, 2),
    ]


def test_no_listener_outside_listening(tmp_path: Path) -> None:
    from nimble_oke.state.store import StateStore

    with StateStore(tmp_path) as store:
        assert Saga(store, "s", "up", say=lambda _m: None).on_event is None


def test_terminal_redraws_one_status_line_in_place() -> None:
    console = Console(
        file=io.StringIO(), force_terminal=True, record=True, width=120, color_system=None
    )
    clock = FakeClock()
    display = LiveProgress("up", console, live=True, clock=clock)
    ctx = Ctx()
    with display.open():
        display.on_event(event("gpu pool", "started", 4, 17, ctx))
        display.say("gpu pool: trying VM.GPU.A10.1 in US-ASHBURN-AD-1 (on-demand)")
        clock.t += 65
        display.on_event(event("wait ready", "started", 9, 17, ctx))
        display.say("deploy      model download 40%")
        clock.t += 10
        shown = console.export_text(clear=False, styles=False)
        now = status_line(display.state, clock())
        assert (
            now
            == "up try1 · 9/17 wait ready · model download 40% · 1m15s · plan: ready after ≈ 23m52s of cloud time"
        )
        display._live.refresh()
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    said = "gpu pool: trying VM.GPU.A10.1 in US-ASHBURN-AD-1 (on-demand)\n"
    # each say line is printed once, as a line of its own, in order, above the live line
    assert raw.count(said) == 1 and raw.count("deploy      model download 40%\n") == 1
    assert raw.index(said) < raw.index("deploy      model download 40%\n")
    assert shown.index("gpu pool: trying") < shown.index("deploy      model download 40%")
    # the status line is drawn, then erased and redrawn in place (never appended as a line)
    assert "⠋ up try1 · 4/17 gpu pool · gpu pool: trying" in raw and now in raw
    assert raw.count("\x1b[2K") >= 3
    assert "cloud time\n" not in raw.replace(now + "\n", "")  # only the last draw ends the region


def test_not_a_terminal_appends_plain_lines_and_a_heartbeat() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    display = LiveProgress("down", console, live=False, heartbeat_s=0.3)
    with display.open():
        display.on_event(StepEvent("down", "try1", "teardown", None, "started", 4, 6))
        display.say("deleting node pool try1-gpu")
        time.sleep(0.8)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0] == "deleting node pool try1-gpu"
    assert "\x1b" not in text  # no control codes in a log
    assert any(
        line.startswith("  … still down try1 · 4/6 teardown · deleting node pool try1-gpu · ")
        for line in lines[1:]
    ), text


def test_json_output_gets_no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    assert for_command("up", "json") is None
    monkeypatch.setenv("FORCE_COLOR", "1")  # Rich alone would call a pipe a terminal then
    display = for_command("up", "table")
    assert display is not None and display.is_live is False  # pytest's stdout is no terminal
    assert display.console.is_terminal is False


def test_up_json_refused_prints_no_progress() -> None:
    """--output json: no progress on stdout (a refused up prints nothing there)."""
    from nimble_oke.cli.app import app

    result = CliRunner().invoke(
        app, ["up", "--name", "p1", "--budget", "0.01", "--yes", "--output", "json"]
    )
    assert result.exit_code == 3, result.output
    assert result.stdout == ""


@dataclass
class Snap:
    """What the bench engine hands its observer (bench.engine.Progress's fields)."""

    phase: str
    elapsed_s: float
    sent: int
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    planned: int | None = 200
    duration_s: float | None = None


def test_plain_bench_lines_every_interval_and_at_each_phase() -> None:
    from nimble_oke.cli.progress import PlainBenchLines

    clock, lines = FakeClock(), []
    show = PlainBenchLines(lines.append, every_s=10.0, clock=clock)
    show(Snap("warm-up", 0.25, 2, in_flight=2))
    for i in range(1, 82):  # 20 s of 0.25 s samples: one line per 10 s, not 81
        clock.t += 0.25
        show(Snap("measured", i * 0.25, i * 4, done=i * 3, failed=1, in_flight=8))
    assert len(lines) == 4, lines  # warm-up, measured starts, +10 s, +20 s
    assert lines[0].startswith("bench warm-up")
    assert lines[1].startswith("bench measured")
    assert "16 req/s · in flight 8 · done" in lines[2] and "errors 1" in lines[2]


@pytest.mark.slow
def test_bench_in_a_log_prints_plain_progress_on_stderr(tmp_path: Path) -> None:
    """`nimble bench` with stderr not a terminal: plain progress lines on stderr, the
    summary alone on stdout."""
    import os
    import subprocess
    import sys

    from test_exit_codes import closed_port

    port = closed_port()
    env = {**os.environ, "NIMBLE_HOME": str(tmp_path / "home")}
    nim = [sys.executable, "-m", "nimble_oke.cli.app", "sim", "nim", "--warm", "--port", str(port)]
    proc = subprocess.Popen(nim, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        args = ["bench", "--endpoint", url, "--requests", "24", "--concurrency", "4"]
        deadline = time.monotonic() + 90
        while True:
            done = subprocess.run(
                [sys.executable, "-m", "nimble_oke.cli.app", *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            if done.returncode != 7 or time.monotonic() > deadline:  # 7: not listening yet
                break
            time.sleep(0.5)
        # 8 (INVALID): the client lagged on a loaded machine; the progress is what counts here
        assert done.returncode in (0, 8), done.stdout + done.stderr
        progress = [line for line in done.stderr.splitlines() if line.startswith("bench ")]
        assert progress, done.stderr
        assert any("req/s · in flight" in line for line in progress)
        assert "\x1b" not in done.stderr
        assert "bench warm-up" not in done.stdout and "nimble bench —" in done.stdout
    finally:
        proc.terminate()
        proc.wait(20)
