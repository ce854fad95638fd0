"""Each doctor check fails when its prerequisite is missing and passes when it is there."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimble_oke.domain.config import build_config
from nimble_oke.kube.deploy import kube_client
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.services.doctor import (
    check_ngc_key,
    check_oci_config,
    check_python_deps,
    cluster_checks,
    provider_checks,
)
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.oci import FaultPlan

KEY = throwaway_key()


def by_name(checks: list, name: str):  # type: ignore[no-untyped-def]
    return next(c for c in checks if c.name == name)


def test_python_deps_pass_and_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_python_deps().status == "pass"
    monkeypatch.setitem(sys.modules, "helm_python", None)  # an import that fails
    failed = check_python_deps()
    assert failed.status == "fail" and "helm_python" in failed.detail and failed.fix


def _oci_files(tmp_path: Path, *, mode: int = 0o600, profile: str = "DEFAULT") -> Path:
    key = tmp_path / "key.pem"
    key.write_text("not checked here")
    key.chmod(mode)
    config = tmp_path / "config"
    config.write_text(
        f"[{profile}]\nuser=ocid1.user.oc1..a\ntenancy=ocid1.tenancy.oc1..a\n"
        f"fingerprint=aa:bb\nkey_file={key}\nregion=us-ashburn-1\n"
    )
    return config


def test_oci_config_checks(tmp_path: Path) -> None:
    missing = build_config({"target": "oci", "oci": {"config_file": str(tmp_path / "nope")}})
    assert check_oci_config(missing).status == "fail"
    good = build_config({"target": "oci", "oci": {"config_file": str(_oci_files(tmp_path))}})
    assert check_oci_config(good).status == "pass"
    other = build_config(
        {"target": "oci", "oci": {"config_file": str(_oci_files(tmp_path)), "profile": "PROD"}}
    )
    assert "profile [PROD]" in check_oci_config(other).detail
    loose = build_config(
        {"target": "oci", "oci": {"config_file": str(_oci_files(tmp_path, mode=0o644))}}
    )
    warn = check_oci_config(loose)
    assert warn.status == "warn" and "chmod 600" in warn.fix


def test_ngc_key_checks() -> None:
    cfg = build_config({"target": "oci"})
    assert check_ngc_key(cfg, {}, simulated=False).status == "fail"
    assert check_ngc_key(cfg, {"NGC_API_KEY": "hunter2"}, simulated=False).status == "fail"
    assert check_ngc_key(cfg, {"NGC_API_KEY": KEY}, simulated=False).status == "pass"
    assert check_ngc_key(cfg, {}, simulated=True).status == "warn"
    for check in (check_ngc_key(cfg, {"NGC_API_KEY": KEY}, simulated=False),):
        assert KEY not in check.detail


@contextlib.contextmanager
def _target(tmp_path: Path, faults: FaultPlan | None = None, **cfg_sections: object) -> Iterator:  # type: ignore[type-arg]
    with product_stack(tmp_path / "sim", time_scale=600, faults=faults, seed=2) as stack:
        cfg = build_config(cfg_sections)
        target = sim_target(cfg, stack.endpoints(), {})
        try:
            yield cfg, target, stack
        finally:
            target.provider.close()


def test_provider_checks_pass_on_a_healthy_cloud(tmp_path: Path) -> None:
    with _target(tmp_path) as (cfg, target, _stack):
        checks = provider_checks(cfg, target)
    assert [c.status for c in checks] == ["pass"] * 4, checks


def test_wrong_key_fails_credentials(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    with _target(tmp_path) as (cfg, target, _stack):
        other = tmp_path / "other.pem"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        other.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        os.chmod(other, 0o600)
        from nimble_oke.cloud.oci.provider import OciProvider, fast_retry_strategy

        bad = OciProvider(
            {**target.oci_config, "key_file": str(other)},
            compartment_id=target.provider.compartment_id,
            service_endpoint=target.endpoints["oci"],
            retry_strategy=fast_retry_strategy(1),
        )
        target.provider.close()
        target.provider = bad
        checks = provider_checks(cfg, target)
    assert checks[0].name == "credentials" and checks[0].status == "fail"
    assert "NotAuthenticated" in checks[0].detail


def test_unknown_compartment_and_version_fail(tmp_path: Path) -> None:
    with _target(tmp_path, cluster={"kubernetes_version": "1.30.1"}) as (cfg, target, _stack):
        target.provider.compartment_id = "ocid1.compartment.oc1..doesnotexist"
        checks = provider_checks(cfg, target)
    assert by_name(checks, "compartment").status == "fail"
    version = by_name(checks, "Kubernetes version")
    assert version.status == "fail" and "1.35.2" in version.detail


def test_gpu_limit_zero_fails_with_the_limit_to_raise(tmp_path: Path) -> None:
    plan = FaultPlan(limits={"gpu-a10-count": {"AD-1": 0, "AD-2": 0, "AD-3": 0}})
    with _target(tmp_path, faults=plan) as (cfg, target, _stack):
        limits = by_name(provider_checks(cfg, target), "GPU limits")
    assert limits.status == "fail" and "gpu-a10-count" in limits.fix


def test_cluster_checks_device_plugin(tmp_path: Path) -> None:
    assert cluster_checks(None)[0].status == "warn"
    with KubeSimulator(tmp_path / "kube", SimClock(60)) as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        no_gpu = cluster_checks(lambda: kube_client(kubeconfig))
        assert by_name(no_gpu, "kubeconfig").status == "pass"
        assert by_name(no_gpu, "GPU device plugin").status == "fail"
        kube.add_gpu_node(shape="VM.GPU.A10.1")
        with_gpu = cluster_checks(lambda: kube_client(kubeconfig))
        assert by_name(with_gpu, "GPU device plugin").status == "pass"
    unreachable = cluster_checks(lambda: kube_client(kubeconfig))
    assert by_name(unreachable, "kubeconfig").status == "fail"


def test_doctor_checks_follow_the_target_registry(tmp_path: Path) -> None:
    """The target's declared facts decide the checks: the sim reads no OCI profile and has
    no real registry (a simulated key is fine); oci checks its profile and the real key."""
    from nimble_oke.services.doctor import run_doctor

    sim = run_doctor(build_config({"target": "sim"}, {}), None, {})
    assert not any(c.name == "OCI config" for c in sim)
    assert by_name(sim, "NGC API key").status == "warn"
    assert "skipped on the sim target" in by_name(sim, "NGC model access").detail
    missing = str(tmp_path / "absent")
    oci_cfg = build_config({"target": "oci", "oci": {"config_file": missing}}, {})
    oci = run_doctor(oci_cfg, None, {}, metadata_url="http://127.0.0.1:9/v2")
    assert by_name(oci, "OCI config").status == "fail"
    assert by_name(oci, "NGC API key").status == "fail"
    assert by_name(oci, "NGC model access").detail == "no NGC key to check"
    assert by_name(oci, "NIM profiles").status == "warn"  # unreachable: the catalog decides


def test_target_registry_names_and_reachability(tmp_path: Path) -> None:
    from nimble_oke.errors import ConfigError
    from nimble_oke.services.targets import TARGETS, reachable_target_for, target_kind

    assert sorted(TARGETS) == ["oci", "sim"]
    with pytest.raises(ConfigError, match="target 'aws': allowed oci, sim"):
        target_kind("aws")
    # A stopped simulator: nothing can have changed there, and nothing is started.
    cfg = build_config({"target": "sim"}, {})
    assert reachable_target_for(tmp_path, "sim", cfg, {}) is None
    assert target_kind("sim").live_clock(tmp_path) is None
    assert not (tmp_path / "sim" / "sim.pid").exists()
