"""``nimble models ...`` on the sim target: the commands reach the simulator service through
NIMBLE_HOME/sim/endpoints.json (here: the in-process simulator, registered as the service)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from model_helpers import make_model, tree
from typer.testing import CliRunner

from nimble_oke.cli.models_cmd import models_app
from nimble_oke.services.models import Storage, create_par
from nimble_oke.sim.oci import OciSimulator

runner = CliRunner()


@pytest.fixture
def sim_service(sim: OciSimulator, _isolated_home: Path) -> Path:
    """Point the sim target at the in-process simulator (what ``nimble sim start`` writes)."""
    directory = _isolated_home / "sim"
    directory.mkdir(parents=True, exist_ok=True)
    endpoints = {
        "oci": sim.endpoint,
        "oci_regions": dict(sim.endpoints),
        "oci_config": str(sim.write_config_file()),
        "compartment_id": sim.compartment_id,
        "kube": "http://127.0.0.1:1",
        "time_scale": 600.0,
    }
    (directory / "endpoints.json").write_text(json.dumps(endpoints))
    (directory / "sim.pid").write_text(str(os.getpid()))
    return directory


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(models_app, list(args), env=env)


def test_push_list_promote_hydrate_replicate(
    sim: OciSimulator, sim_service: Path, bucket: str, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "src")
    pushed = run("push", str(model), "--bucket", bucket, "--version", "v1",
                 "--part-size-mib", "1", "--target", "sim", "-o", "json")  # fmt: skip
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)["files"] == 6

    listed = run("list", "--bucket", bucket, "--target", "sim", "--output", "json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["model"], row["version"], row["files"], row["labels"]) == (
        "llama-tiny",
        "v1",
        6,
        ["latest"],
    )

    promoted = run("promote", "v1", "--bucket", bucket, "--to", "prod", "--target", "sim")
    assert promoted.exit_code == 0, promoted.output
    assert "prod → v1" in promoted.stdout

    ns = json.loads(run("list", "--bucket", bucket, "-o", "json").stdout)  # default target: sim
    assert ns[0]["labels"] == ["latest", "prod"]
    with Storage(config=sim.oci_config(), endpoints=dict(sim.endpoints)) as storage:
        namespace = storage.namespace()
    source = f"oci://{bucket}@{namespace}/models/llama-tiny"
    dest = tmp_path / "cache"
    args = ["hydrate", "--source", source, "--version", "prod", "--dest", str(dest),
            "--auth", "config", "--parallelism", "4", "--part-size-mib", "1",
            "--skip-if-manifest-matches"]  # fmt: skip
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert tree(dest) == tree(model)
    second = run(*args)
    assert second.exit_code == 0 and "already matches" in second.stdout

    other = next(r for r in sim.endpoints if r != sim.region)
    replicated = run("replicate", "--bucket", bucket, "--to", other, "--deep", "-o", "json")
    assert replicated.exit_code == 0, replicated.output
    assert json.loads(replicated.stdout)["verified"] == "sha256"


def test_hydrate_with_the_charts_command_line_and_a_par(
    sim: OciSimulator, sim_service: Path, bucket: str, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "src")
    assert run("push", str(model), "--bucket", bucket, "--version", "v3").exit_code == 0
    with Storage(config=sim.oci_config(), endpoints=dict(sim.endpoints)) as storage:
        url = create_par(storage, bucket, "models/llama-tiny", 6 * 3600, now=sim.clock.wall)
        namespace = storage.namespace()
    dest = tmp_path / "nim-cache"
    # Exactly what charts/nimble-nim/templates/_pod.tpl runs (no config, no OCI key).
    chart_args = [
        "hydrate", "--source", f"oci://{bucket}@{namespace}/models/llama-tiny",
        "--version", "v3", "--dest", str(dest), "--auth", "par",
        "--region", sim.region, "--parallelism", "8", "--part-size-mib", "64",
        "--skip-if-manifest-matches",
    ]  # fmt: skip
    result = run(*chart_args, env={"NIMBLE_PAR_URL": url})
    assert result.exit_code == 0, result.output
    assert tree(dest) == tree(model)
    token = url.split("/p/", 1)[1].split("/", 1)[0]
    assert token not in result.output

    missing = run(*chart_args)  # no NIMBLE_PAR_URL
    assert missing.exit_code == 2
    assert "NIMBLE_PAR_URL" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1

    bad = run(*[a if a != "v3" else "v404" for a in chart_args], env={"NIMBLE_PAR_URL": url})
    assert bad.exit_code == 5
    assert "v404" in bad.stderr and token not in bad.output
    assert "Traceback" not in bad.output


def test_errors_are_one_line(sim_service: Path, bucket: str, tmp_path: Path) -> None:
    model = make_model(tmp_path / "src")
    assert run("push", str(model), "--bucket", bucket, "--version", "v1").exit_code == 0
    result = run("promote", "v2", "--bucket", bucket, "--to", "prod")
    assert result.exit_code == 5
    assert result.stderr.strip().splitlines() == [
        f"[nimble][ERROR] llama-tiny version v2 is not in {bucket} (or is incomplete)"
    ]
    bad_source = run("hydrate", "--source", "s3://x/y", "--dest", str(tmp_path / "d"))
    assert bad_source.exit_code == 2 and "oci://<bucket>@<namespace>/<prefix>" in bad_source.stderr


def test_the_charts_init_container_command_runs_as_rendered(
    sim: OciSimulator, sim_service: Path, bucket: str, tmp_path: Path
) -> None:
    """Render the chart (cache.mode object-storage) and run its hydrate-cache command line
    verbatim, only --dest redirected to a temporary directory."""
    pytest.importorskip("helm_python")
    from nimble_oke.kube.render import render_chart

    model = make_model(tmp_path / "src")
    assert run("push", str(model), "--bucket", bucket, "--version", "1.0.0").exit_code == 0
    with Storage(config=sim.oci_config(), endpoints=dict(sim.endpoints)) as storage:
        url = create_par(storage, bucket, "models/llama-tiny", 6 * 3600, now=sim.clock.wall)
        namespace = storage.namespace()
    object_storage = {
        "namespace": namespace,
        "bucket": bucket,
        "prefix": "models/llama-tiny/",
        "version": "1.0.0",
        "region": sim.region,
        "parSecret": {"name": "model-par", "key": "PAR_URL"},
    }
    values = {"cache": {"mode": "object-storage", "objectStorage": object_storage}}
    manifests = render_chart(values, release="nim", namespace="nim")
    [pod] = [
        m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet")
    ]
    [init] = [c for c in pod["initContainers"] if c["name"] == "hydrate-cache"]
    command = list(init["command"])
    assert command[:3] == ["nimble", "models", "hydrate"]
    dest = tmp_path / "nim-cache"
    command[command.index("--dest") + 1] = str(dest)
    [par_env] = [e for e in init["env"] if e["name"] == "NIMBLE_PAR_URL"]
    assert par_env["valueFrom"]["secretKeyRef"] == {"name": "model-par", "key": "PAR_URL"}

    result = run(*command[2:], env={"NIMBLE_PAR_URL": url})
    assert result.exit_code == 0, result.output
    assert tree(dest) == tree(model)
    assert "already matches" in run(*command[2:], env={"NIMBLE_PAR_URL": url}).stdout
