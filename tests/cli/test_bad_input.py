"""Every bad input of issue #16 (item 7) and #21, through the real CLI: refused before
anything happens with one clear line on stderr, exit 2, nothing on stdout, never an
internal error (exit 70) and never a hang (inputs that used to hang or exhaust memory run
in a subprocess with a timeout)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nimble_oke.cli.app import app
from nimble_oke.ngc_keys import throwaway_key

runner = CliRunner()
Make = Callable[[Path], str]


def _file(name: str, content: str | bytes) -> Make:
    def make(tmp: Path) -> str:
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return str(path)

    return make


def _alias_bomb(prefix: str = "") -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return prefix + "\n".join(lines) + "\n"


def _fifo(tmp: Path) -> str:
    path = tmp / "config.fifo"
    os.mkfifo(path)
    return str(path)


# (test id, how to make the file, what the one line must say)
CONFIG_FILES: list[tuple[str, Make, str]] = [
    (
        "namespace-traversal",
        _file("a.yaml", "nim:\n  namespace: ../../kube-system\n"),
        "nim.namespace = '../../kube-system': a Kubernetes namespace must be a DNS-1123 label",
    ),
    ("namespace-upper", _file("a.yaml", "nim:\n  namespace: KUBE-SYSTEM\n"), "DNS-1123 label"),
    (
        "cidr",
        _file("a.yaml", "cluster:\n  api_allowed_cidr: 999.1.1.1/99\n"),
        "cluster.api_allowed_cidr = '999.1.1.1/99': expected an IPv4 CIDR",
    ),
    (
        "ingress-cidr",
        _file("a.yaml", "security:\n  allowed_ingress_cidrs: [10.0.0.0/33]\n"),
        "security.allowed_ingress_cidrs.0 = '10.0.0.0/33'",
    ),
    (
        "duplicate-key",
        _file("a.yaml", "gpu_pool:\n  nodes: 1\n  nodes: 2\n"),
        "duplicate key 'nodes' at line 3 (first at line 2)",
    ),
    (
        "ad-list",
        _file(
            "a.yaml",
            "gpu_pool:\n  availability_domains: ["
            + ", ".join(f"AD-{i}" for i in range(5000))
            + "]\n",
        ),
        "gpu_pool.availability_domains lists 5,000 items; at most 3 are allowed",
    ),
    ("unknown-model", _file("a.yaml", "nim:\n  model: acme/nope\n"), "unknown model 'acme/nope'"),
    (
        "unknown-shape",
        _file("a.yaml", "gpu_pool:\n  shape: VM.GPU.NOPE\n"),
        "unknown GPU shape 'VM.GPU.NOPE'",
    ),
    (
        "fp8-on-a10",
        _file("a.yaml", "nim:\n  precision: fp8\n"),
        "fp8 needs GPU compute capability ≥ 8.9; VM.GPU.A10.1 has A10",
    ),
    (
        "preemptible-bm",
        _file("a.yaml", "gpu_pool:\n  shape: BM.GPU.A10.4\n  preemptible: true\n"),
        "preemptible capacity is offered only on VM shapes",
    ),
    ("binary", _file("a.yaml", bytes(range(256)) * 4), "is a binary file (it contains NUL bytes)"),
    ("bad-utf8", _file("a.yaml", b"nim:\n  model: \xff\xfe\n"), "is not UTF-8 text (byte 0xff"),
    ("a-directory", str, "is a directory, not a regular file"),
    ("not-a-mapping", _file("a.yaml", "- a\n- b\n"), "the top level must be a mapping"),
]

# Inputs that used to hang, exhaust memory or overflow the stack: a subprocess with a timeout.
HANGING_CONFIGS: list[tuple[str, Make, str]] = [
    ("fifo", _fifo, "is a named pipe (FIFO), not a regular file"),
    ("dev-zero", lambda _tmp: "/dev/zero", "/dev/zero is a device, not a regular file"),
    (
        "nesting-1000",
        _file("a.yaml", "a: " + "[" * 1000 + "]" * 1000 + "\n"),
        "nested deeper than 32 levels",
    ),
    (
        "nesting-block",
        _file("a.yaml", "".join(" " * i + "k:\n" for i in range(1000))),
        "nested deeper than 32 levels",
    ),
    (
        "alias-bomb",
        _file(
            "a.yaml",
            "gpu_pool:\n  fallback_shapes: ["
            + ", ".join(line.split(": ", 1)[1] for line in _alias_bomb().splitlines())
            + "]\n",
        ),
        "expands to more than 20,000 values",
    ),
    (
        "ad-list-500k",
        _file(
            "a.yaml",
            "gpu_pool:\n  availability_domains: ["
            + ", ".join(f"AD-{i}" for i in range(500_000))
            + "]\n",
        ),
        "the limit is 1.0 MiB",
    ),
    (
        "unknown-keys-200k",
        _file("a.yaml", "\n".join(f"k{i}: 1" for i in range(200_000))),
        "the limit is 1.0 MiB",
    ),
]


def _one_clear_line(code: int, stdout: str, stderr: str, needle: str) -> None:
    assert code == 2, (code, stdout, stderr)
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith("[nimble][ERROR] ") and needle in lines[0], lines[0]
    assert "internal error" not in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("make", "needle"), [c[1:] for c in CONFIG_FILES], ids=[c[0] for c in CONFIG_FILES]
)
def test_config_validate_refuses(tmp_path: Path, make: Make, needle: str) -> None:
    result = runner.invoke(app, ["config", "validate", "-c", make(tmp_path)])
    _one_clear_line(result.exit_code, result.stdout, result.stderr, needle)


def nimble(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nimble_oke.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang fails the test instead of stalling the suite
        env={**os.environ, "NIMBLE_HOME": str(home)},
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    ("make", "needle"), [c[1:] for c in HANGING_CONFIGS], ids=[c[0] for c in HANGING_CONFIGS]
)
def test_inputs_that_used_to_hang_or_crash_are_refused_quickly(
    tmp_path: Path, make: Make, needle: str
) -> None:
    done = nimble(tmp_path / "home", "config", "validate", "-c", make(tmp_path))
    _one_clear_line(done.returncode, done.stdout, done.stderr, needle)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_file("v.yaml", bytes(range(256))), "values file"),
        (_file("v.yaml", _alias_bomb()), "expands to more than 100,000 values"),
        (_fifo, "is a named pipe (FIFO)"),
        (_file("v.yaml", "image:\n  tag: 1\n  tag: 2\n"), "duplicate key 'tag'"),
    ],
    ids=["binary", "billion-laughs", "fifo", "duplicate-key"],
)
def test_lint_reads_the_values_file_safely(tmp_path: Path, make: Make, needle: str) -> None:
    done = nimble(tmp_path / "home", "lint", make(tmp_path))
    _one_clear_line(done.returncode, done.stdout, done.stderr, needle)


@pytest.mark.parametrize("command", [("plan",), ("render",), ("up", "--yes", "--no-bench")])
def test_a_bad_namespace_is_refused_by_every_command_before_anything_happens(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    from nimble_oke.state.store import StateStore

    path = _file("a.yaml", "nim:\n  namespace: ../../kube-system\n")(tmp_path)
    result = runner.invoke(app, [*command, "-c", path])
    _one_clear_line(result.exit_code, result.stdout, result.stderr, "DNS-1123 label")
    with StateStore() as store:
        assert store.sessions() == []  # nothing was started


@pytest.mark.parametrize(
    "command", [("config", "validate"), ("config", "show"), ("up", "--yes", "--no-bench")]
)
def test_a_key_pasted_as_the_variable_name_is_never_echoed(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    key = throwaway_key()
    path = _file("a.yaml", f"nim:\n  ngc_api_key_env: {key}\n")(tmp_path)
    result = runner.invoke(app, [*command, "-c", path])
    _one_clear_line(result.exit_code, result.stdout, result.stderr, "NAME of the environment")
    assert key not in result.stdout + result.stderr
    assert key[len("nvapi-") :][:8] not in result.stdout + result.stderr


def test_config_show_never_prints_a_secret_even_in_yaml(tmp_path: Path) -> None:
    par = "https://objectstorage.us-ashburn-1.oraclecloud.com/p/AbCdEfGhIjKlMnOp1234/n/ns/b/x/o/"
    path = _file("a.yaml", f"monitoring:\n  otel_endpoint: {par}\n")(tmp_path)
    for fmt in ("yaml", "json"):
        shown = runner.invoke(app, ["config", "show", "-c", path, "--output", fmt])
        assert shown.exit_code == 0, shown.output
        assert "AbCdEfGhIjKl" not in shown.stdout and "/p/****/" in shown.stdout


def test_many_unknown_keys_are_capped_not_one_line_each(tmp_path: Path) -> None:
    path = _file("a.yaml", "\n".join(f"k{i}: 1" for i in range(9000)))(tmp_path)
    result = runner.invoke(app, ["config", "validate", "-c", path])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 11 and "and 8,990 more problems (9,000 in all" in lines[-1]


@pytest.mark.parametrize(
    ("args", "needle", "code_words"),
    [
        (
            ("plan", "--hours", "-1"),
            "--hours -1.0: must be greater than 0 (config key budget.max_hours)",
            "budget.max_hours = ",
        ),
        (
            ("up", "--name", "UPPER", "--yes"),
            "--name 'UPPER': a session name has 1-40",
            "cluster.name = ",
        ),
        (
            ("plan", "--cache-mode", "nfs"),
            "--cache-mode 'nfs': must be 'pvc', 'object-storage' or 'ngc'",
            "cache.mode = ",
        ),
        (
            ("down", "--name", "../../etc", "--yes"),
            "--name '../../etc': a session name",
            "Traceback",
        ),
        (("status", "--name", "A B"), "--name 'A B': a session name", "Traceback"),
        (("cost", "../x"), "SESSION '../x': a session name", "Traceback"),
        (("models", "list", "--bucket", "a/../b"), "--bucket 'a/../b': a bucket name", "Traceback"),
        (
            ("models", "replicate", "--bucket", "b", "--to", "mars"),
            "--to 'mars': expected a region",
            "Traceback",
        ),
        (
            ("monitoring", "show", "--namespace", "Obs"),
            "--namespace 'Obs': a Kubernetes namespace",
            "Traceback",
        ),
        (("export", "values", "--name", "A_B"), "--name 'A_B': a session name", "Traceback"),
        (
            ("troubleshoot", "--kubeconfig", "/dev/null", "--namespace", "../x"),
            "--namespace '../x': a Kubernetes namespace must be a DNS-1123 label",
            "Traceback",
        ),
    ],
)
def test_flags_are_named_as_the_user_typed_them(
    args: tuple[str, ...], needle: str, code_words: str
) -> None:
    result = runner.invoke(app, list(args))
    _one_clear_line(result.exit_code, result.stdout, result.stderr, needle)
    assert code_words not in result.stderr


def test_a_file_that_is_not_a_kubeconfig_is_refused(tmp_path: Path) -> None:
    path = _file("kc", "cluster:\n  api_allowed_cidr: 10.0.0.0/8\n")(tmp_path)
    result = runner.invoke(app, ["troubleshoot", "--kubeconfig", path])
    _one_clear_line(result.exit_code, result.stdout, result.stderr, "not a kubeconfig")


def test_writing_to_a_directory_or_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    into_dir = runner.invoke(app, ["config", "init", str(tmp_path)])
    _one_clear_line(into_dir.exit_code, into_dir.stdout, into_dir.stderr, "is a directory")
    missing = runner.invoke(app, ["config", "init", str(tmp_path / "no" / "such" / "x.yaml")])
    _one_clear_line(missing.exit_code, missing.stdout, missing.stderr, "no such file or directory")


def test_library_decoding_errors_that_reach_the_cli_are_input_errors(tmp_path: Path) -> None:
    """bench diff and smoke --junit refuse a file that is not JSON or not text, or a
    directory given as a file, in one line with exit 2 (the CLI's net catches what a
    command would miss the same way)."""
    text = _file("a.json", "not json at all\n")(tmp_path)
    diff = nimble(tmp_path / "home", "bench", "diff", text, text)
    assert diff.returncode == 2 and "invalid JSON at line 1" in diff.stderr, diff.stderr
    binary = _file("b.json", bytes(range(128, 256)))(tmp_path)
    diff = nimble(tmp_path / "home", "bench", "diff", binary, binary)
    assert diff.returncode == 2 and "not text" in diff.stderr, diff.stderr
    junit = nimble(
        tmp_path / "home", "smoke", "--endpoint", "http://127.0.0.1:9", "--junit", str(tmp_path)
    )
    assert junit.returncode == 2 and "is a directory" in junit.stderr, junit.stderr
    for done in (diff, junit):
        assert len(done.stderr.splitlines()) == 1 and "internal error" not in done.stderr
