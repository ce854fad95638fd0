"""``nimble smoke`` and ``nimble sim nim`` as commands: a real emulator process, smoked
through the Typer command (the app registers these functions; here a bare Typer app does)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from nimble_oke.cli.sim_nim_cmd import sim_nim
from nimble_oke.cli.smoke_cmd import smoke

TINY = "nimble/smollm2-135m-instruct"
_PORT_RE = re.compile(rb"http://127\.0\.0\.1:(\d+)/v1")


def _app(command: Callable[..., Any]) -> typer.Typer:
    app = typer.Typer()
    app.command()(command)
    return app


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cache = tmp_path_factory.mktemp("nim-cache")
    cmd = [
        sys.executable,
        "-m",
        "nimble_oke.sim.nim",
        "--port",
        "0",
        "--warm",
        "--model",
        TINY,
        "--cache-path",
        str(cache),
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    try:
        deadline = time.monotonic() + 30
        port = None
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "the emulator process exited early"
            match = _PORT_RE.search(line)
            port = int(match.group(1)) if match else None
        assert port is not None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()
    assert proc.returncode == 0  # SIGTERM stops it cleanly


def test_smoke_command_passes_with_json_and_junit(emulator_url: str, tmp_path: Path) -> None:
    junit = tmp_path / "reports" / "smoke.xml"
    result = CliRunner().invoke(
        _app(smoke),
        ["--endpoint", emulator_url, "--output", "json", "--junit", str(junit), "--timeout", "10"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True and data["model"] == TINY
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "16"


def test_smoke_command_table_and_failure_exit_code(emulator_url: str) -> None:
    ok = CliRunner().invoke(_app(smoke), ["--endpoint", emulator_url + "/v1"])
    assert ok.exit_code == 0, ok.output
    assert "16/16 passed" in ok.stdout and "[DONE]" in ok.stdout
    planned = CliRunner().invoke(
        _app(smoke), ["--endpoint", emulator_url, "--profile", "vllm-bf16-tp1-pp1"]
    )
    assert planned.exit_code == 0 and "(as planned)" in planned.stdout, planned.output
    other = CliRunner().invoke(
        _app(smoke), ["--endpoint", emulator_url, "--profile", "vllm-fp8-tp2-pp1"]
    )
    assert other.exit_code == 7 and "metadata" in other.stderr
    wrong = CliRunner().invoke(_app(smoke), ["--endpoint", emulator_url, "--model", "not/served"])
    assert wrong.exit_code == 7  # the README's endpoint error code
    assert "failed" in wrong.stdout and "smoke test failed" in wrong.stderr
    bad_format = CliRunner().invoke(_app(smoke), ["--endpoint", emulator_url, "--output", "xml"])
    assert bad_format.exit_code == 2


def test_smoke_command_user_errors_are_one_line(emulator_url: str, tmp_path: Path) -> None:
    as_dir = CliRunner().invoke(_app(smoke), ["--endpoint", emulator_url, "--junit", str(tmp_path)])
    assert as_dir.exit_code == 2 and "is a directory" in as_dir.stderr
    assert len(as_dir.stderr.strip().splitlines()) == 1
    # No --endpoint and no session with one: say how to give one, test nothing.
    nothing = CliRunner().invoke(_app(smoke), [])
    assert nothing.exit_code == 2 and "--endpoint" in nothing.stderr, nothing.output
    unknown = CliRunner().invoke(_app(smoke), ["--session", "nope"])
    assert unknown.exit_code == 4 and "no session named 'nope'" in unknown.stderr


def test_smoke_uses_the_recorded_session(emulator_url: str) -> None:
    from nimble_oke.state.store import StateStore

    with StateStore() as store:
        store.upsert_session(
            "try1",
            target="sim",
            status="ready",
            config={"nim": {"model": TINY, "model_profile": "vllm-bf16-tp1-pp1"}},
        )
        store.set_session_status("try1", "ready", endpoint=emulator_url)
    result = CliRunner().invoke(_app(smoke), ["--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["endpoint"] == emulator_url and data["model"] == TINY
    metadata = next(c for c in data["checks"] if c["name"] == "metadata")
    assert "(as planned)" in metadata["detail"]  # the session's planned profile was checked


def test_sim_nim_rejects_bad_options_without_serving() -> None:
    runner = CliRunner()
    result = runner.invoke(_app(sim_nim), ["--engine", "vllm"])
    assert result.exit_code == 2 and "allowed values" in result.output
    result = runner.invoke(_app(sim_nim), ["--gpu", "TPU", "--warm"])
    assert result.exit_code == 2 and "unknown GPU" in result.output
    result = runner.invoke(_app(sim_nim), ["--nim-release", "latest"])
    assert result.exit_code == 2 and "such as 2.0.12 or 1.8.0" in result.output
