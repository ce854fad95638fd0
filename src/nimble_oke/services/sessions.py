"""Session commands (up, down, status, sweep, extend) wired to their target."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.errors import BudgetError, StateError
from nimble_oke.services.costs import session_accrual, session_clock, status_text
from nimble_oke.services.enforcement import reachable_target
from nimble_oke.services.lifecycle import UpResult, down, up
from nimble_oke.services.planning import plan_session, session_warmth
from nimble_oke.services.provision import Keep
from nimble_oke.services.targets import Target, open_target
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import SessionRecord, StateStore

Say = Callable[[str], None]


def resolve_target(cfg: NimbleConfig, env: Mapping[str, str] | None = None) -> Target:
    return open_target(cfg, env)


def run_up(
    config_file: str | None,
    flags: Mapping[str, Any],
    *,
    yes: bool,
    interactive: bool,
    bench: bool,
    down_after: bool,
    keep_on_failure: bool,
    say: Say,
    confirm: Callable[[str], bool] = lambda _q: False,
) -> dict[str, Any]:
    planned = plan_session(
        config_file, flags, yes=yes, interactive=interactive, warmth=session_warmth
    )
    cfg, plan = planned.config, planned.plan
    decision = planned.guard
    say(
        f"plan        {plan.shape.name} ×{cfg.gpu_pool.nodes}"
        f"{' preemptible' if cfg.gpu_pool.preemptible else ''} · {plan.model.name} "
        f"{cfg.nim.precision} · cache {cfg.cache.mode} {cfg.cache.size_gb} GB"
    )
    say(
        f"            estimate ${plan.total_usd:.2f} for {plan.hours:g} h (worst case "
        f"${plan.worst_case_usd:.2f}) · budget ${cfg.budget.max_usd:.2f}"
    )
    if decision.action == "refuse":
        raise BudgetError(f"budget guard refused: {decision.reason}")
    if decision.action == "confirm" and not confirm(f"{decision.reason}. Start the session?"):
        raise BudgetError("not confirmed; nothing was created")
    target = resolve_target(cfg)
    with contextlib.closing(target.provider), StateStore(now=target.now) as store:
        if target.ngc_key_simulated:
            say(
                f"            ${cfg.nim.ngc_api_key_env} not set: using a simulated NGC key (sim target only)"
            )
        result = up(cfg, plan, target, store, say=say, bench=bench, keep_on_failure=keep_on_failure)
        out = up_dict(result)
        if down_after and (result.ok or keep_on_failure is False):
            teardown = down(cfg.session_name, cfg, target, store, say=say)
            out["down"] = {
                "removed": len(teardown.teardown.removed),
                "failed": teardown.teardown.failed,
                "remaining": [r.resource_id for r in teardown.teardown.remaining],
            }
        return out


def up_dict(result: UpResult) -> dict[str, Any]:
    return {
        "session": result.session,
        "ok": result.ok,
        "endpoint": result.endpoint,
        "placement": result.placement,
        "cache_warm_up": result.cache_warm_up,
        "phases": result.phases,
        "smoke": result.smoke,
        "bench": result.bench,
        "cost": {
            "estimated_usd": round(result.estimated_usd, 4),
            "worst_case_usd": round(result.worst_case_usd, 4),
        },
        "rolled_back": result.rolled_back,
        "rollback_failed": result.rollback_failed,
        # from hibernation: "hibernated" (woken), or what the fallback did; else None
        "wake": result.wake,
        "error": result.error,
        # for the CLI: the failure's kind (a NimbleError subclass name, or the internal
        # error's type) and the exit code it maps to (0 when ok; 70 for a bug)
        "error_kind": result.error_kind,
        "failed_step": result.failed_step,
        "exit_code": result.exit_code,
    }


def session_config(store: StateStore, name: str) -> NimbleConfig:
    record = store.session(name)
    if record is None:
        known = ", ".join(s.name for s in store.sessions()) or "none"
        raise StateError(f"no session named '{name}' (known sessions: {known})")
    return build_config(record.config, {}, source=f"session {name}")


def run_down(
    name: str,
    *,
    say: Say,
    keep: Keep | None = None,
    keep_cache: bool = False,
    keep_cluster: bool = False,
    keep_node_image: bool = False,
    hibernate: bool = False,
) -> dict[str, Any]:
    """``keep_*``: the same as ``keep`` (kept for callers written before :class:`Keep`).
    ``hibernate``: stop the GPU node instead (services/hibernate.py)."""
    keep = keep or Keep(keep_cache, keep_cluster, keep_node_image)
    if hibernate and keep != Keep():
        from nimble_oke.errors import ConfigError

        raise ConfigError(
            "--hibernate keeps the network, cluster, node pool and volumes already; it does "
            "not combine with --keep-cache, --keep-cluster or --keep-node-image"
        )
    with StateStore() as plain:
        cfg = session_config(plain, name)
    target = resolve_target(cfg)
    with contextlib.closing(target.provider), StateStore(now=target.now) as store:
        if hibernate:
            return _hibernate_dict(name, cfg, target, store, say)
        result = down(
            name,
            cfg,
            target,
            store,
            keep=keep,
            say=say,
        )
        accrual = session_accrual(store, name, now=store.now(), read_lease=False).accrual
        return {
            "session": name,
            "removed": len(result.teardown.removed),
            "kept": result.teardown.kept,
            "standby": result.teardown.standby,
            "failed": result.teardown.failed,
            "remaining": [
                {"kind": r.kind, "id": r.resource_id, "name": r.name}
                for r in result.teardown.remaining
            ],
            "accrued_usd": round(accrual.total_usd, 6),
        }


def _hibernate_dict(
    name: str, cfg: NimbleConfig, target: Target, store: StateStore, say: Say
) -> dict[str, Any]:
    from nimble_oke.services.hibernate import hibernate

    result = hibernate(name, cfg, target, store, say=say)
    accrual = session_accrual(store, name, now=store.now(), read_lease=False).accrual
    return {
        "session": name,
        "hibernated": True,
        "summary": (
            f"down        hibernated {name}: {len(result.stopped)} {result.shape} node(s) "
            f"stopped · load balancer deleted · storage only ${result.usd_per_day:.3f}/day · "
            f"accrued ${accrual.total_usd:.4f} · nimble up wakes it"
        ),
        "shape": result.shape,
        "stopped_instances": result.stopped,
        "storage_usd_per_day": round(result.usd_per_day, 6),
        "storage_lines": [line.as_dict() for line in result.lines],
        "removed": 0,
        "kept": [],
        "standby": [],
        "failed": [],
        "remaining": [],
        "accrued_usd": round(accrual.total_usd, 6),
    }


def hibernated_note(store: StateStore, record: SessionRecord) -> tuple[float | None, str]:
    """For a hibernated session: storage per day, and the line ``status`` shows."""
    if SessionStatus.of(record.status) is not SessionStatus.HIBERNATED:
        return None, ""
    from nimble_oke.services.hibernate import storage_per_day

    per_day, _lines = storage_per_day(store, record.name)
    return per_day, (
        f"hibernated: storage only, ${per_day:.3f}/day (GPU node stopped, watchdog asleep "
        "with it; nimble up wakes it, nimble down removes everything)"
    )


def run_status(
    name: str | None,
    *,
    target_for: Callable[[Path, SessionRecord], Target | None] = reachable_target,
) -> list[dict[str, Any]]:
    """Each session from the journal; once its lease or budget has run out, after reading
    what the in-cluster watchdog did (``target_for`` reaches the session's cloud)."""
    with StateStore() as store:
        catalog = load_catalog()
        out = []
        for listed in store.sessions():
            if name and listed.name != name:
                continue
            clock = session_clock(store, listed)
            priced = session_accrual(
                store, listed, clock=clock, catalog=catalog, target_for=target_for
            )
            accrual, watchdog_note = priced.accrual, priced.note
            record = store.session(listed.name) or listed  # the watchdog may have acted
            now = clock()
            resources = store.resources(record.name)
            left = None if record.lease_expires_at is None else record.lease_expires_at - now
            per_day, asleep = hibernated_note(store, record)
            out.append(
                {
                    "session": record.name,
                    "target": record.target,
                    "status": record.status,
                    "status_text": status_text(record.status),
                    "endpoint": record.endpoint,
                    "lease_seconds_left": None if left is None else round(max(0.0, left)),
                    "accrued_usd": round(accrual.total_usd, 6),
                    "running_usd_per_hour": round(accrual.running_usd_per_hour, 6),
                    "watchdog": watchdog_note or asleep or None,
                    "storage_usd_per_day": None if per_day is None else round(per_day, 6),
                    "live_resources": [
                        {"kind": r.kind, "name": r.name, "id": r.resource_id, "kept": r.kept}
                        for r in resources
                        if r.deleted_at is None
                    ],
                }
            )
        if name and not out:
            raise StateError(f"no session named '{name}'")
        return out


def run_extend(name: str, hours: float) -> float:
    if hours <= 0 or hours > 720:
        from nimble_oke.errors import ConfigError

        raise ConfigError(f"--hours {hours}: allowed 0 < hours ≤ 720")
    with StateStore() as store:
        record = store.session(name)
        if record is None:
            raise StateError(f"no session named '{name}'")
    cfg = build_config(record.config, {}, source=f"session {name}")
    target = (
        resolve_target(cfg)
        if SessionStatus.of(record.status) in (SessionStatus.READY, SessionStatus.DEPLOYING)
        else None
    )
    now_fn = target.now if target is not None else time.time
    closing = (
        contextlib.closing(target.provider) if target is not None else contextlib.nullcontext()
    )
    with closing, StateStore(now=now_fn) as store:
        record = store.session(name)
        assert record is not None
        base = max(store.now(), record.lease_expires_at or store.now())
        expires = base + hours * 3600
        store.extend_lease(name, expires)
        if target is not None:
            _extend_in_cluster(store, cfg, target, name, expires)
        return expires


def _extend_in_cluster(
    store: StateStore, cfg: NimbleConfig, target: Target, name: str, expires: float
) -> None:
    """Renew the lease the in-cluster watchdog enforces (a closed lease is not reopened:
    the pool was scaled to zero; run nimble up to bring it back)."""
    import dataclasses

    from nimble_oke.kube.connect import client_for
    from nimble_oke.services import watchdog

    live = store.live_cluster(name)
    if live is None:
        return
    path, cluster_id = live
    client = client_for(path, target.token(cluster_id), cfg.nim.namespace)
    try:
        lease = watchdog.lease_from_configmap(client, cfg.nim.namespace)
        if lease is not None and lease.enforced_at is None:
            watchdog.write_lease(
                client, cfg.nim.namespace, dataclasses.replace(lease, expires_at=expires)
            )
    finally:
        client.close()


def run_sweep(
    config_file: str | None,
    flags: Mapping[str, Any],
    *,
    session: str | None,
    dry_run: bool,
    confirm: Callable[[list[dict[str, Any]]], bool],
    say: Say,
) -> dict[str, Any]:
    """Find everything tagged by this tool (or one session) and delete it after confirmation."""
    from nimble_oke.config_file import load_config
    from nimble_oke.services.provision import delete_in_order, sweep_candidates

    cfg, _ = load_config(config_file, flags)
    target = resolve_target(cfg)
    with contextlib.closing(target.provider), StateStore(now=target.now) as store:
        found = sweep_candidates(target.provider, session)
        known = {r.resource_id: r for s in store.sessions() for r in store.resources(s.name)}
        catalog = load_catalog()
        rows = []
        for res in found:
            record = known.get(res.resource_id)
            hourly = 0.0
            if record is not None:
                from nimble_oke.domain.cost import Meter, meter_usd

                hourly = sum(
                    meter_usd(catalog, Meter(m.price_key, m.quantity, m.item, m.multiplier), 3600)[
                        0
                    ]
                    for m in record.meters
                )
            rows.append(
                {
                    "kind": res.kind,
                    "id": res.resource_id,
                    "name": res.name,
                    "state": res.state,
                    "session": res.tags.get("nimble-oke-session"),
                    "usd_per_hour": round(hourly, 6),
                }
            )
        out: dict[str, Any] = {"target": cfg.target, "resources": rows, "deleted": [], "failed": []}
        if dry_run or not rows or not confirm(rows):
            return out
        removed, failed = delete_in_order(target.provider, None, None, found, target.timeouts, say)
        for res in found:
            sess = res.tags.get("nimble-oke-session")
            if res.resource_id in removed and sess:
                store.record_deleted(sess, res.kind, res.resource_id)
        out["deleted"], out["failed"] = removed, failed
        return out


def doctor_context(cfg: NimbleConfig, session: str | None) -> tuple[Target | None, Any, list[Any]]:
    """The target to check (None when it cannot even be configured) and, when a session
    with a live cluster exists, a factory for a client to its cluster."""
    from nimble_oke.errors import NimbleError
    from nimble_oke.services.doctor import Check

    problems: list[Any] = []
    try:
        target: Target | None = open_target(cfg, os.environ, require_key=False)
    except NimbleError as exc:
        problems.append(Check("target", "fail", str(exc), "see the OCI config check"))
        return None, None, problems
    factory = None
    name = session or cfg.session_name
    with StateStore() as store:
        found = store.live_cluster(name)
    if target is not None and found is not None:
        kubeconfig, cluster_id = found
        if target.provider.state("cluster", cluster_id):
            from nimble_oke.kube.connect import client_for

            live = target

            def factory() -> Any:
                return client_for(kubeconfig, live.token(cluster_id))

    return target, factory, problems


def run_troubleshoot(
    session: str | None, *, kubeconfig: str | None, namespace: str | None, config_file: str | None
) -> dict[str, Any]:
    """Collect the deployment's state and name the causes (a kubeconfig, or a session's)."""
    from pathlib import Path

    from nimble_oke.kube.deploy import kube_client
    from nimble_oke.kube.diagnose import collect, diagnose

    if kubeconfig:
        from nimble_oke.config_file import load_config

        cfg, _ = load_config(config_file)
        client = kube_client(Path(kubeconfig))
        ns = namespace or cfg.nim.namespace
    else:
        client, cfg = session_cluster_client(session or _default_session(config_file))
        ns = namespace or cfg.nim.namespace
    try:
        snap = collect(client, ns)
    finally:
        client.close()
    findings = diagnose(snap)
    pods = [
        {
            "name": p["metadata"]["name"],
            "phase": (p.get("status") or {}).get("phase"),
            "restarts": sum(
                int(cs.get("restartCount", 0))
                for cs in (p.get("status") or {}).get("containerStatuses") or []
            ),
        }
        for p in snap.pods
    ]
    return {"namespace": ns, "pods": pods, "findings": [f.as_dict() for f in findings]}


def _default_session(config_file: str | None) -> str:
    from nimble_oke.config_file import load_config

    cfg, _ = load_config(config_file)
    return cfg.session_name


def run_rollback(session: str, revision: int | None, *, say: Say) -> dict[str, Any]:
    """Re-apply the chart values of an earlier revision (default: the previous one)."""
    from nimble_oke.errors import KubeError
    from nimble_oke.kube.connect import client_for
    from nimble_oke.kube.deploy import apply_manifests
    from nimble_oke.kube.render import render_chart
    from nimble_oke.services.chart_ops import revision_values

    with StateStore() as store:
        cfg = session_config(store, session)
        number, values = revision_values(store.revisions(session), revision)
        live = store.live_cluster(session)
        if live is None:
            raise KubeError(f"session '{session}' has no live cluster")
        path, cluster_id = live
        target = resolve_target(cfg)
        with contextlib.closing(target.provider):
            client = client_for(path, target.token(cluster_id), cfg.nim.namespace)
        try:
            manifests = render_chart(values, release=session, namespace=cfg.nim.namespace)
            applied = apply_manifests(
                client, manifests, session=session, namespace=cfg.nim.namespace
            )
        finally:
            client.close()
        import json as _json

        new = store.add_revision(
            session, applied.manifest_hash, _json.dumps(values, sort_keys=True)
        )
        say(
            f"re-applied revision {number} as revision {new} ({len(applied.applied)} objects, pruned {len(applied.pruned)})"
        )
        return {
            "session": session,
            "from_revision": number,
            "revision": new,
            "pruned": applied.pruned,
        }


def session_cluster_client(name: str) -> tuple[Any, NimbleConfig]:
    """A lightkube client for session ``name``'s live cluster (token computed, never stored)
    and the session's config. KubeError when the session has no live cluster."""
    from nimble_oke.errors import KubeError
    from nimble_oke.kube.connect import client_for

    with StateStore() as store:
        cfg = session_config(store, name)
        live = store.live_cluster(name)
    if live is None:
        raise KubeError(f"session '{name}' has no live cluster (nimble status)")
    path, cluster_id = live
    target = resolve_target(cfg)
    with contextlib.closing(target.provider):
        client = client_for(path, target.token(cluster_id), cfg.nim.namespace)
    return client, cfg
