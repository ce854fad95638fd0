"""Streaming subresources with the real kubectl 1.33: port-forward (SPDY tunnelled in
WebSocket), exec (v5.channel.k8s.io), cp (exec + tar), attach, and the real errors."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from kubesim_helpers import echo_deployment
from real_clients import KUBECTL, kubectl, needs_binaries

from nimble_oke.sim.kube import KubeSimulator

pytestmark = needs_binaries

SHELL_POD = """
apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  containers:
  - name: sh
    image: busybox
    command: [sh, -c, "echo started; sleep 100000"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
"""


@pytest.fixture
def kc(kube: KubeSimulator, tmp_path: Path) -> Path:
    kube.add_node("10.0.1.5", allocatable={"cpu": "4", "memory": "16Gi"})
    return kube.write_kubeconfig(tmp_path / "kc")


@contextmanager
def port_forward(kc: Path, *args: str) -> Iterator[int]:
    """``kubectl port-forward ARGS`` on a free local port; yields that port."""
    with background(kc, "port-forward", *args) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Forwarding from 127.0.0.1:"), line
        yield int(line.split(":")[1].split()[0])


@contextmanager
def background(kc: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A kubectl that runs until the block ends (then terminated, pipes closed)."""
    with subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(kc), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(kc.parent)},
    ) as proc:
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(10)


def test_port_forward_to_a_service_reaches_the_pod(kube: KubeSimulator, kc: Path) -> None:
    kubectl(kc, "apply", "-f", "-", stdin=echo_deployment(replicas=1))
    kubectl(kc, "expose", "deployment", "echo", "--port=80", "--target-port=8080")
    kubectl(kc, "wait", "--for=condition=Available", "deployment/echo", "--timeout=30s")
    with port_forward(kc, "svc/echo", ":80") as port:
        for path in ("/first", "/second"):  # one SPDY stream pair per connection
            answer = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).json()
            assert answer["path"] == path and answer["pod"].startswith("echo-")


def test_port_forward_to_a_port_nothing_listens_on_reports_the_kubelet_error(
    kube: KubeSimulator, kc: Path
) -> None:
    kubectl(kc, "apply", "-f", "-", stdin=SHELL_POD)
    kubectl(kc, "wait", "--for=condition=Ready", "pod/shell", "--timeout=30s")
    with port_forward(kc, "pod/shell", ":9999") as port, pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_exec_runs_what_the_container_has_and_reports_exit_codes(
    kube: KubeSimulator, kc: Path
) -> None:
    kubectl(kc, "apply", "-f", "-", stdin=SHELL_POD)
    kubectl(kc, "wait", "--for=condition=Ready", "pod/shell", "--timeout=30s")
    assert kubectl(kc, "exec", "shell", "--", "echo", "hello", "there") == "hello there\n"
    assert kubectl(kc, "exec", "shell", "--", "sh", "-c", "touch /data/x; ls /data") == "x\n"
    err = kubectl(kc, "exec", "shell", "--", "sh", "-c", "exit 3", ok=False)
    assert "command terminated with exit code 3" in err
    err = kubectl(kc, "exec", "shell", "--", "python3", "-V", ok=False)
    assert (
        "error: Internal error occurred: error executing command in container: OCI runtime exec "
        'failed: exec failed: unable to start container process: exec: "python3": executable '
        "file not found in $PATH: unknown"
    ) in err
    err = kubectl(kc, "exec", "shell", "-c", "nope", "--", "true", ok=False)
    assert "container nope is not valid for pod shell" in err


def test_cp_in_and_out_of_a_mounted_volume(kube: KubeSimulator, kc: Path, tmp_path: Path) -> None:
    kubectl(kc, "apply", "-f", "-", stdin=SHELL_POD)
    kubectl(kc, "wait", "--for=condition=Ready", "pod/shell", "--timeout=30s")
    local = tmp_path / "notes.txt"
    local.write_text("model cache notes\n")
    kubectl(kc, "cp", str(local), "shell:/data/notes.txt")
    assert kubectl(kc, "exec", "shell", "--", "cat", "/data/notes.txt") == "model cache notes\n"
    back = tmp_path / "back.txt"
    kubectl(kc, "cp", "shell:/data/notes.txt", str(back))
    assert back.read_text() == "model cache notes\n"
    err = kubectl(kc, "cp", "shell:/etc/hostname", str(tmp_path / "h"), ok=False)
    assert "command terminated with exit code 2" in err  # tar's own stderr: kubectl drops it


def test_attach_streams_the_container_output(kube: KubeSimulator, kc: Path) -> None:
    pod = SHELL_POD.replace(
        '"echo started; sleep 100000"', '"sleep 3000; echo late line; sleep 100000"'
    )
    kubectl(kc, "apply", "-f", "-", stdin=pod)
    kubectl(kc, "wait", "--for=condition=Ready", "pod/shell", "--timeout=30s")
    with background(kc, "attach", "shell") as proc:
        deadline = time.monotonic() + 20
        seen = ""
        assert proc.stdout is not None
        while "late line" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "late line" in seen
