"""Provisioning and teardown of a session's cloud side: network → OKE cluster → GPU node
pool, idempotent and crash-safe; teardown in dependency order; tag-based sweep.

How a step is made idempotent (``Provisioner.ensure``):
1. the intent is journaled *before* anything is sent, with a deterministic retry token;
2. a step whose journal entry names a live resource is adopted, not recreated;
3. otherwise a live resource tagged with this session and step is adopted (covers a kill
   between the API call and the journal write);
4. otherwise the create is sent with the retry token (OCI returns the same resource for
   the same token, so even a blind resend cannot duplicate), the resource's lifetime is
   recorded for cost accrual, and we wait until it is ready.

Everything carries freeform tags ``nimble-oke-session``, ``nimble-oke-created-by`` and
``nimble-oke-step`` so ``down`` and ``sweep`` find it even without the local state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nimble_oke.domain import network as net
from nimble_oke.domain.catalog import Catalog, Shape
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import Meter, cluster_meters, node_pool_meters
from nimble_oke.errors import CapacityError, ProviderError
from nimble_oke.polling import poll_until
from nimble_oke.ports import DELETE_ORDER, CloudProvider, Created, FoundResource
from nimble_oke.services.preflight import PreflightReport, Rung
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore

TAG_SESSION = "nimble-oke-session"
TAG_CREATOR = "nimble-oke-created-by"
TAG_STEP = "nimble-oke-step"
TAG_ROLE = "nimble-oke-role"
CREATOR = "nimble-oke"
_NODE_GONE = ("DELETED", "DELETING", "TERMINATED", "TERMINATING")
ROLE_CACHE = "model-cache"

Say = Callable[[str], None]


def session_tags(session: str) -> dict[str, str]:
    return {TAG_SESSION: session, TAG_CREATOR: CREATOR}


@dataclass(frozen=True)
class Timeouts:
    """Real-time limits for waits (the simulator runs them in seconds)."""

    network_s: float = 600
    cluster_s: float = 30 * 60
    node_pool_s: float = 45 * 60
    delete_s: float = 30 * 60


# What a standby session keeps: the cluster and everything deleted after it (the network) —
# free or nearly (a basic control plane, VCN objects).
STANDBY_KINDS = frozenset(DELETE_ORDER[DELETE_ORDER.index("cluster") :])
WhileCreating = Callable[[Rung, str, Mapping[str, str]], None]


@dataclass
class ProvisionResult:
    ids: dict[str, str] = field(default_factory=dict)
    placement: Rung | None = None
    kubeconfig_path: Path | None = None
    ladder_attempts: list[str] = field(default_factory=list)


class Provisioner:
    def __init__(
        self,
        session: str,
        cfg: NimbleConfig,
        provider: CloudProvider,
        store: StateStore,
        catalog: Catalog,
        *,
        say: Say = lambda _m: None,
        timeouts: Timeouts | None = None,
        home: Path | None = None,
        run: str | None = None,
        lineage: frozenset[str] = frozenset(),
    ) -> None:
        """``run``: the ``up`` this provisioner works for (recorded on what it creates);
        ``lineage``: that run and the unsettled runs before it, whose creations it owns."""
        self.session = session
        self.cfg = cfg
        self.provider = provider
        self.store = store
        self.catalog = catalog
        self.say = say
        self.timeouts = timeouts or Timeouts()
        self.home = home or store.home
        self.created_this_run: list[tuple[str, str]] = []
        self.run = run
        self.lineage = lineage | ({run} if run else set())
        # defined tags OKE puts on every node it launches (the cloud guard selects by them)
        self.node_defined_tags: dict[str, dict[str, str]] | None = None
        self._poll_s = float(getattr(provider, "poll_s", 1.0))

    # -- the idempotent step -------------------------------------------------------------

    def ensure(
        self,
        step: str,
        kind: str,
        spec: Callable[[], dict[str, Any]],
        *,
        timeout_s: float,
        meters: tuple[Meter, ...] = (),
        name: str | None = None,
        while_creating: Callable[[], None] | None = None,
    ) -> str:
        """Create-or-adopt one resource and wait until it is ready. ``while_creating`` runs
        after a *new* create was sent and journaled, before the wait (work that overlaps
        the resource's provisioning, e.g. the cache warm-up beside the GPU pool)."""
        entry = self.store.intend(self.session, step, kind)
        if entry.resource_id and entry.status in ("sent", "done"):
            state = self.provider.state(kind, entry.resource_id)
            if state is not None:
                # idempotent: covers a run killed between the journal write and this record
                self.store.record_created(
                    self.session, kind, entry.resource_id, name=name, meters=meters, run=self.run
                )
                if entry.status != "done":
                    wr = _work_request(entry.detail)
                    self.provider.await_ready(
                        kind, Created(entry.resource_id, wr), timeout_s=timeout_s
                    )
                    self.store.journal_update(self.session, step, status="done")
                return entry.resource_id
            # The resource this intent named is gone: a fresh intent gets a fresh retry
            # token, so OCI does not replay the old (now deleted) resource.
            self.store.forget_intent(self.session, step)
            entry = self.store.intend(self.session, step, kind)
        for found in self.provider.find_tagged({TAG_SESSION: self.session, TAG_STEP: step}):
            if found.kind == kind:
                self.say(f"adopting {kind} {found.name} (found by tag)")
                self.store.journal_update(
                    self.session, step, status="sent", resource_id=found.resource_id
                )
                self.store.record_created(
                    self.session,
                    kind,
                    found.resource_id,
                    name=found.name,
                    meters=meters,
                    tags=dict(found.tags),
                    # billed since the cloud made it (or, when it does not say, since the
                    # intent to make it was journaled), not since a later run found it
                    created_at=found.created_at or entry.created_at,
                    run=self.run,
                )
                self.provider.await_ready(kind, Created(found.resource_id), timeout_s=timeout_s)
                self.store.journal_update(self.session, step, status="done")
                return found.resource_id
        body = spec()
        body["tags"] = {**session_tags(self.session), TAG_STEP: step, **body.get("tags", {})}
        created = self.provider.create(kind, body, retry_token=entry.retry_token)
        self.store.journal_update(
            self.session,
            step,
            status="sent",
            request_id=created.request_id,
            resource_id=created.resource_id,
            detail=f"work_request={created.work_request_id}" if created.work_request_id else None,
        )
        self.store.record_created(
            self.session,
            kind,
            created.resource_id,
            name=name or body.get("name"),
            meters=meters,
            tags=body["tags"],
            run=self.run,
        )
        self.created_this_run.append((kind, created.resource_id))
        if while_creating is not None:
            while_creating()
        self.provider.await_ready(kind, created, timeout_s=timeout_s)
        self.store.journal_update(self.session, step, status="done")
        return created.resource_id

    # -- network -----------------------------------------------------------------------

    def network(self) -> dict[str, str]:
        """The session's VCN, gateways, route tables, security lists and subnets (or the
        ones the config names). Returns ids by role ("vcn", "subnet/workers", ...)."""
        cfg = self.cfg
        if cfg.cluster.vcn_id:
            assert cfg.cluster.api_subnet_id and cfg.cluster.worker_subnet_id
            assert cfg.cluster.lb_subnet_id
            self.say("network: reusing the configured VCN and subnets")
            return {
                "vcn": cfg.cluster.vcn_id,
                "subnet/api": cfg.cluster.api_subnet_id,
                "subnet/workers": cfg.cluster.worker_subnet_id,
                "subnet/lb": cfg.cluster.lb_subnet_id,
            }
        osn = self.provider.oracle_services()
        if osn is None:
            raise ProviderError("no 'All Services in Oracle Services Network' service found")
        ids = self._gateways(osn[0])
        self._route_tables(ids, osn[1])
        self._security_lists(ids, osn[1])
        self._subnets(ids)
        return ids

    def _net(self, step: str, kind: str, spec: Callable[[], dict[str, Any]]) -> str:
        return self.ensure(f"network/{step}", kind, spec, timeout_s=self.timeouts.network_s)

    def _gateways(self, osn_id: str) -> dict[str, str]:
        name = self.session
        vcn = self._net(
            "vcn",
            "vcn",
            lambda: {"name": f"{name}-vcn", "cidr": net.VCN_CIDR, "dns_label": _dns(name)},
        )
        return {
            "vcn": vcn,
            "igw": self._net(
                "igw", "internet_gateway", lambda: {"name": f"{name}-igw", "vcn_id": vcn}
            ),
            "nat": self._net("nat", "nat_gateway", lambda: {"name": f"{name}-nat", "vcn_id": vcn}),
            "sgw": self._net(
                "sgw",
                "service_gateway",
                lambda: {"name": f"{name}-sgw", "vcn_id": vcn, "service_id": osn_id},
            ),
        }

    def _route_tables(self, ids: dict[str, str], osn_cidr: str) -> None:
        name, vcn = self.session, ids["vcn"]
        ids["rt/public"] = self._net(
            "rt-public",
            "route_table",
            lambda: {
                "name": f"{name}-rt-public",
                "vcn_id": vcn,
                "rules": [_route(net.ANYWHERE, "CIDR_BLOCK", ids["igw"])],
            },
        )
        ids["rt/private"] = self._net(
            "rt-private",
            "route_table",
            lambda: {
                "name": f"{name}-rt-private",
                "vcn_id": vcn,
                "rules": [
                    _route(net.ANYWHERE, "CIDR_BLOCK", ids["nat"]),
                    _route(osn_cidr, "SERVICE_CIDR_BLOCK", ids["sgw"]),
                ],
            },
        )

    def _security_lists(self, ids: dict[str, str], osn_cidr: str) -> None:
        name, vcn = self.session, ids["vcn"]
        lists = net.security_lists(
            self.cfg.cluster.api_allowed_cidr, self.cfg.security.allowed_ingress_cidrs
        )
        for key, rules in lists.items():
            ids[f"sl/{key}"] = self._net(
                f"sl-{key}",
                "security_list",
                lambda key=key, rules=rules: {  # type: ignore[misc]
                    "name": f"{name}-sl-{key}",
                    "vcn_id": vcn,
                    "rules": rules,
                    "osn_cidr": osn_cidr,
                },
            )

    def _subnets(self, ids: dict[str, str]) -> None:
        name, vcn = self.session, ids["vcn"]
        for subnet in net.NetworkPlan().subnets:
            ids[f"subnet/{subnet.key}"] = self._net(
                f"subnet-{subnet.key}",
                "subnet",
                lambda s=subnet: {  # type: ignore[misc]
                    "name": f"{name}-{s.key}",
                    "vcn_id": vcn,
                    "cidr": s.cidr,
                    "public": s.public,
                    "dns_label": s.dns_label,
                    "route_table_id": ids[f"rt/{s.route_table}"],
                    "security_list_ids": [ids[f"sl/{s.security_list}"]],
                },
            )

    # -- cluster and node pool ----------------------------------------------------------

    def cluster(self, network: Mapping[str, str]) -> str:
        cfg = self.cfg
        self.say(f"cluster: OKE {cfg.cluster.type} {cfg.cluster.kubernetes_version}")
        return self.ensure(
            "cluster",
            "cluster",
            lambda: {
                "name": self.session,
                "vcn_id": network["vcn"],
                "kubernetes_version": cfg.cluster.kubernetes_version,
                "type": cfg.cluster.type,
                "endpoint_subnet_id": network["subnet/api"],
                "lb_subnet_ids": [network["subnet/lb"]],
                "pods_cidr": net.PODS_CIDR,
                "services_cidr": net.SERVICES_CIDR,
            },
            timeout_s=self.timeouts.cluster_s,
            meters=cluster_meters(cfg.cluster.type),
        )

    def node_pool(
        self,
        cluster_id: str,
        network: Mapping[str, str],
        report: PreflightReport,
        while_creating: WhileCreating | None = None,
    ) -> tuple[str, Rung, list[str]]:
        """The GPU pool, down the fallback ladder. ``while_creating(rung, cluster, network)``
        runs once, while the first GPU pool create is in flight."""
        cfg = self.cfg
        attempts: list[str] = []
        pending = [while_creating] if while_creating else []

        def overlap(rung: Rung) -> Callable[[], None] | None:
            if not pending:
                return None
            hook = pending.pop()
            return lambda: hook(rung, cluster_id, network)

        for rung in report.ladder:
            entry = self.store.journal_entry(self.session, rung.step)
            if entry is not None and entry.status == "rolled_back":
                attempts.append(f"{rung.label}: out of capacity (earlier run)")
                continue
            shape = self.catalog.shape(rung.shape)
            self.say(f"gpu pool: trying {rung.label}")
            try:
                pool_id = self.ensure(
                    rung.step,
                    "node_pool",
                    lambda rung=rung: {  # type: ignore[misc]
                        "name": f"{self.session}-gpu",
                        "cluster_id": cluster_id,
                        "kubernetes_version": cfg.cluster.kubernetes_version,
                        "shape": rung.shape,
                        "image_id": report.gpu_image[0],
                        "boot_volume_gb": cfg.gpu_pool.boot_volume_gb,
                        "size": cfg.gpu_pool.nodes,
                        "availability_domain": rung.availability_domain,
                        "availability_domains": list(rung.availability_domains),
                        "subnet_id": network["subnet/workers"],
                        "preemptible": rung.preemptible,
                        "labels": {"nimble-oke/session": self.session},
                        "user_data_b64": net.cloud_init_b64(),
                        "node_defined_tags": self.node_defined_tags,
                    },
                    timeout_s=self.timeouts.node_pool_s,
                    meters=node_pool_meters(
                        self.catalog,
                        shape,
                        cfg.gpu_pool.nodes,
                        preemptible=rung.preemptible,
                        boot_volume_gb=cfg.gpu_pool.boot_volume_gb,
                    ),
                    while_creating=overlap(rung),
                )
            except CapacityError as exc:
                attempts.append(f"{rung.label}: {exc.message}")
                self.say(f"gpu pool: {rung.label} out of capacity — next rung")
                self.discard_failed_pool(rung.step)
                continue
            attempts.append(f"{rung.label}: ok")
            self._ensure_pool_size(pool_id, cfg.gpu_pool.nodes)
            return pool_id, rung, attempts
        raise CapacityError(
            "every rung of the fallback ladder failed: " + "; ".join(attempts),
            hint="try later, add gpu_pool.fallback_shapes or other availability domains",
        )

    def _ensure_pool_size(self, pool_id: str, size: int) -> None:
        """Converge the pool to the configured size (e.g. after the watchdog scaled it to
        zero when a lease ran out, or the cloud guard stopped its nodes): start stopped
        nodes, scale, and wait for the nodes to be ACTIVE."""
        live = [n for n in self.provider.node_pool_nodes(pool_id) if n["state"] not in _NODE_GONE]
        # a node whose instance the cloud guard stopped may still be ACTIVE in its pool
        stopped = [n for n in live if self.provider.instance_state(n["id"]) == "STOPPED"]
        for node in stopped:
            self.say(f"gpu pool: starting node {node['name']} (stopped by the cloud guard)")
            self.provider.start_instance(node["id"])
        if len(live) == size and not stopped:
            return
        if len(live) == size:
            self._await_pool_size(pool_id, size)
            return
        self.say(f"gpu pool: scaling from {len(live)} to {size} node(s)")
        self.provider.scale_node_pool(pool_id, size)
        self._await_pool_size(pool_id, size)

    def _await_pool_size(self, pool_id: str, size: int) -> None:
        def converged() -> bool | None:
            nodes = [
                n for n in self.provider.node_pool_nodes(pool_id) if n["state"] not in _NODE_GONE
            ]
            active = [n for n in nodes if n["state"] == "ACTIVE"]
            if len(active) == size and len(nodes) == size:
                return True
            errors = [n["error"] for n in nodes if n.get("error")]
            if errors:
                raise CapacityError(f"scaling node pool {pool_id}: {'; '.join(errors)}")
            return None

        poll_until(
            converged,
            timeout_s=self.timeouts.node_pool_s,
            interval_s=self._poll_s,
            on_timeout=lambda: ProviderError(
                f"node pool {pool_id} did not reach {size} ACTIVE node(s)"
            ),
        )

    def discard_failed_pool(self, step: str) -> None:
        entry = self.store.journal_entry(self.session, step)
        if entry and entry.resource_id:
            if ("node_pool", entry.resource_id) in self.created_this_run:
                self.created_this_run.remove(("node_pool", entry.resource_id))
            self.provider.delete("node_pool", entry.resource_id)
            self.provider.await_deleted(
                "node_pool", entry.resource_id, timeout_s=self.timeouts.delete_s
            )
            self.store.record_deleted(self.session, "node_pool", entry.resource_id)
        self.store.journal_update(self.session, step, status="rolled_back")

    def write_kubeconfig(self, cluster_id: str) -> Path:
        text = self.provider.kubeconfig(cluster_id)
        path = self.home / "sessions" / self.session / "kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        return path

    def provision(
        self, report: PreflightReport, *, while_gpu_pool_creates: WhileCreating | None = None
    ) -> ProvisionResult:
        result = ProvisionResult()
        network = self.network()
        result.ids.update(network)
        cluster_id = self.cluster(network)
        result.ids["cluster"] = cluster_id
        result.kubeconfig_path = self.write_kubeconfig(cluster_id)
        pool_id, rung, attempts = self.node_pool(
            cluster_id, network, report, while_creating=while_gpu_pool_creates
        )
        result.ids["node_pool"] = pool_id
        result.placement = rung
        result.ladder_attempts = attempts
        if self.cfg.autoscaling.cluster_autoscaler:
            self.cluster_autoscaler(cluster_id, pool_id, self.catalog.shape(rung.shape))
        return result

    def cluster_autoscaler(self, cluster_id: str, pool_id: str, shape: Shape) -> None:
        """OKE's Cluster Autoscaler add-on, managing the GPU pool (idempotent)."""
        from nimble_oke.domain.node_autoscaling import (
            ADDON_NAME,
            addon_configurations,
            node_bounds,
        )

        bounds = node_bounds(self.cfg)
        changed = self.provider.install_addon(
            cluster_id,
            ADDON_NAME,
            addon_configurations(self.cfg, shape, pool_id),
            timeout_s=self.timeouts.cluster_s,
        )
        state = "installed" if changed else "already installed"
        self.say(
            f"cluster autoscaler: {state}, GPU pool {bounds.min_nodes}-{bounds.max_nodes} nodes"
        )

    # -- rollback -----------------------------------------------------------------------

    def owned(self, kinds: Collection[str] = DELETE_ORDER) -> list[FoundResource]:
        """The live resources of these kinds that this run owns: created by it, or by an
        unsettled run before it (a killed or failed ``up`` it took over)."""
        mine = set(self.created_this_run)
        return [
            FoundResource(r.kind, r.resource_id, r.name or "", "", r.tags)
            for r in self.store.resources(self.session, live_only=True)
            if r.kind in kinds and (r.run in self.lineage or (r.kind, r.resource_id) in mine)
        ]

    def rollback(self, kinds: Collection[str] = DELETE_ORDER) -> tuple[list[str], list[str]]:
        """Delete what this run owns (see :meth:`owned`) of these kinds, in dependency
        order. Returns (removed, failed), each naming resources as the user knows them."""
        targets = self.owned(kinds)
        removed_ids, failed = delete_in_order(
            self.provider, self.store, self.session, targets, self.timeouts, self.say
        )
        for entry in self.store.journal(self.session):
            if entry.resource_id in removed_ids:
                self.store.journal_update(self.session, entry.step, status="rolled_back")
        self.created_this_run = [c for c in self.created_this_run if c[1] not in removed_ids]
        names = {t.resource_id: describe(t) for t in targets}
        return [names[rid] for rid in removed_ids], failed


def describe(resource: FoundResource) -> str:
    """A resource as the user knows it: "node pool try1-gpu", "cluster try1"."""
    return f"{resource.kind.replace('_', ' ')} {resource.name or resource.resource_id}"


def delete_in_order(
    provider: CloudProvider,
    store: StateStore | None,
    session: str | None,
    targets: list[FoundResource],
    timeouts: Timeouts,
    say: Say,
) -> tuple[list[str], list[str]]:
    """Delete resources kind by kind (DELETE_ORDER), waiting for each kind to be gone
    before the next, since OCI refuses to delete what something still depends on."""
    removed: list[str] = []
    failed: list[str] = []
    for kind in DELETE_ORDER:
        batch = [t for t in targets if t.kind == kind]
        started = []
        for target in batch:
            try:
                provider.delete(kind, target.resource_id)
                started.append(target)
            except ProviderError as exc:
                failed.append(f"{describe(target)}: {exc.message}")
        for target in started:
            try:
                provider.await_deleted(kind, target.resource_id, timeout_s=timeouts.delete_s)
            except ProviderError as exc:
                failed.append(f"{describe(target)}: {exc.message}")
                continue
            removed.append(target.resource_id)
            if store is not None and session is not None:
                store.record_deleted(session, kind, target.resource_id)
            say(f"deleted {describe(target)}")
    return removed, failed


@dataclass(frozen=True)
class Keep:
    """What ``down`` keeps for the next ``up`` (everything else of the session goes).

    ``cache``: the model-cache volume (``--keep-cache``); ``cluster``: the network and
    the cluster — standby, a basic control plane is free (``--keep-cluster``);
    ``node_image``: a GPU worker image holding the NIM image (``--keep-node-image``)."""

    cache: bool = False
    cluster: bool = False
    node_image: bool = False

    def status_after(self, result: TeardownResult) -> SessionStatus:
        """The session's status once ``down`` has run with this policy."""
        if self.cluster:
            return SessionStatus.STANDBY
        if result.kept:
            return SessionStatus.DOWN_CACHE_KEPT
        if result.failed or result.remaining:
            return SessionStatus.DOWN_INCOMPLETE
        return SessionStatus.DOWN


@dataclass
class TeardownResult:
    removed: list[str]
    failed: list[str]
    kept: list[str]  # cache volumes (and a GPU node image) kept for the next up
    remaining: list[FoundResource]
    standby: list[str] = field(default_factory=list)  # network + cluster kept (standby)


def teardown(
    session: str,
    provider: CloudProvider,
    store: StateStore,
    *,
    keep: Keep = Keep(),
    timeouts: Timeouts | None = None,
    say: Say = lambda _m: None,
) -> TeardownResult:
    """Delete everything the session owns (journal ∪ tags) but what ``keep`` keeps, then
    verify through the tag search that nothing of the session is left.

    ``keep.cluster`` (standby) keeps the network and the cluster: what bills at GPU rates
    (node pools, load balancers) goes, and the next ``up`` only waits for a node pool."""
    timeouts = timeouts or Timeouts()
    targets = _session_resources(session, provider, store)
    kept = _set_aside_kept(session, store, targets, keep, say)
    standby: list[str] = []
    if keep.cluster:
        standby = [rid for rid, t in targets.items() if t.kind in STANDBY_KINDS]
        for rid in standby:
            del targets[rid]
        say("keeping the network and the cluster (standby)")
    removed, failed = delete_in_order(
        provider, store, session, list(targets.values()), timeouts, say
    )
    remaining = [
        f
        for f in provider.find_tagged({TAG_SESSION: session})
        if f.resource_id not in kept and f.resource_id not in standby
    ]
    if not failed and not keep.cluster:
        # (a standby keeps its journal: the next up finds the network and cluster by it)
        store.clear_journal(session)
    return TeardownResult(removed, failed, kept, remaining, standby)


def _session_resources(
    session: str, provider: CloudProvider, store: StateStore
) -> dict[str, FoundResource]:
    """Everything of the session that still exists: the journal's live records (those the
    cloud no longer has are marked deleted on the way) and whatever carries its tag."""
    targets: dict[str, FoundResource] = {}
    for record in store.resources(session, live_only=True):
        if record.kind not in DELETE_ORDER:
            continue
        if provider.state(record.kind, record.resource_id) is None:
            store.record_deleted(session, record.kind, record.resource_id)
            continue
        targets[record.resource_id] = FoundResource(
            record.kind, record.resource_id, record.name or "", "", record.tags
        )
    for found in provider.find_tagged({TAG_SESSION: session}):
        targets.setdefault(found.resource_id, found)
    return targets


def _set_aside_kept(
    session: str,
    store: StateStore,
    targets: dict[str, FoundResource],
    keep: Keep,
    say: Say,
) -> list[str]:
    """Take what ``keep`` keeps out of ``targets`` and mark it kept in the journal.

    Volumes tagged as the model cache are kept; when none carries the role tag, every
    session volume is a cache (the chart's PVCs are the only volumes a session creates)."""
    kept: list[str] = []
    role_tagged = any(t.tags.get(TAG_ROLE) == ROLE_CACHE for t in targets.values())
    for rid, target in list(targets.items()):
        is_cache = target.kind == "volume" and (
            target.tags.get(TAG_ROLE) == ROLE_CACHE or not role_tagged
        )
        if keep.cache and is_cache:
            store.record_created(session, "volume", rid, name=target.name, tags=dict(target.tags))
            store.mark_kept(session, "volume", rid)
            say(f"keeping the model cache volume {target.name or rid}")
        elif keep.node_image and target.kind == "node_image":
            store.mark_kept(session, "node_image", rid)
        else:
            continue
        kept.append(rid)
        del targets[rid]
    return kept


def sweep_candidates(provider: CloudProvider, session: str | None) -> list[FoundResource]:
    tags = {TAG_CREATOR: CREATOR}
    if session:
        tags[TAG_SESSION] = session
    return provider.find_tagged(tags)


def _route(destination: str, destination_type: str, target: str) -> dict[str, str]:
    return {"destination": destination, "destination_type": destination_type, "target_id": target}


def _dns(name: str) -> str:
    label = "".join(ch for ch in name if ch.isalnum())[:15]
    return label if label and label[0].isalpha() else f"n{label}"[:15]


def _work_request(detail: str | None) -> str | None:
    if detail and detail.startswith("work_request="):
        return detail.split("=", 1)[1]
    return None
