"""Warm the model cache off the GPU (issue 10).

While the GPU node pool provisions (10-15 min of billed GPU time before the node is even
usable), a small CPU node pool in the *same* availability domain — a block volume attaches
only within its AD — fills the session's cache PVC: NIM's ``download-to-cache`` (pvc mode),
or, in object-storage mode, the chart's own ``hydrate-cache`` container (nimble's tool image,
the same command, environment and PAR Secret), whose copy in the NIM pod then finds the
manifest matching and exits at once. The Job
is then deleted, which releases the ReadWriteOnce volume; the NIM pod on the GPU node
attaches it and finds the model, so the GPU never waits on a download. Meanwhile a pre-pull
Job puts the NIM image on the GPU node as soon as it registers. The CPU pool is deleted as
soon as the cache is full.

Anything that stops the warm-up — no flexible CPU shape with capacity and core quota in the
AD, the CPU pool failing to launch, the download failing — falls back to the naive path
(NIM downloads on the GPU node), says why, and removes what the warm-up created.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import cpu_pool_meters
from nimble_oke.domain.plan import Plan, WarmUp, cache_fill_phase
from nimble_oke.domain.profiles import list_profiles, parse_profile
from nimble_oke.errors import NimbleError
from nimble_oke.kube.podstate import CONFIG_FAILURES, IMAGE_PULL_FAILURES, stuck_reason
from nimble_oke.polling import PollTimeoutError, poll_until, wait_quietly
from nimble_oke.services.deployment import ensure_model_par, release_name
from nimble_oke.services.preflight import Rung

Say = Callable[[str], None]
WARM_JOB = "cache-warmup"
PREPULL_JOB = "image-prepull"
ROLE_LABEL = "nimble-oke/role"
POOL_LABEL = "oke.oraclecloud.com/pool.name"
STEP = "cache-warmup/cpu-pool"
NIM_CACHE_PATH = "/opt/nim/.cache"
LOW_CAPACITY = ("OUT_OF_HOST_CAPACITY", "HARDWARE_NOT_SUPPORTED")
STUCK_REASONS = IMAGE_PULL_FAILURES | CONFIG_FAILURES  # kube/podstate.py


class WarmUpUnavailableError(NimbleError):
    """The warm-up cannot run here; the session falls back to a download on the GPU node."""


class WarmUpFatalError(NimbleError):
    """The warm-up found a problem the GPU node would hit as well: ``up`` stops."""


@dataclass
class WarmUpOutcome:
    """What the warm-up left for the deployment."""

    warmed: bool = False
    claim: str | None = None
    profile: str | None = None
    shape: str | None = None
    availability_domain: str | None = None
    cpu_pool_id: str | None = None
    par_secret: bool = False  # the model PAR's Secret is in place (object-storage mode)
    fallback_reason: str | None = None
    phases: list[tuple[str, float]] = field(default_factory=list)  # (name, store seconds)


def nim_profile(cfg: NimbleConfig, plan: Plan) -> str:
    """The profile to download and to pin NIM to: the configured one, else the catalog's
    recommendation for the shape. ``download-to-cache`` on a CPU node cannot detect the
    GPU, so the profile must be named — and NIM on the GPU must then use the same one."""
    if cfg.nim.model_profile:
        return cfg.nim.model_profile
    options = list_profiles(load_catalog(), cfg.nim.model, plan.shape.name)
    best = next((o for o in options if o.recommended), None)
    if best is None:
        raise WarmUpUnavailableError(f"no NIM profile of {cfg.nim.model} fits {plan.shape.name}")
    return best.spec.name


def pinned_profile(cfg: NimbleConfig, plan: Plan) -> str | None:
    """:func:`nim_profile`, or None when no profile can be named (NIM then picks)."""
    try:
        return nim_profile(cfg, plan)
    except WarmUpUnavailableError:
        return None


def pick_cpu_shape(provider: Any, warm: WarmUp, ad: str, candidates: list[Any]) -> tuple[str, str]:
    """The first flexible CPU shape with core quota and host capacity in ``ad``
    (shape, reason log). Raises WarmUpUnavailableError naming what each shape lacked."""
    refusals = []
    for shape in candidates:
        found = provider.gpu_availability(shape.name, shape.limit_name, ad)
        if found.limit_available is not None and found.limit_available < warm.ocpus:
            refusals.append(
                f"{shape.name}: {found.limit_available} of {warm.ocpus} OCPUs left in {shape.limit_name}"
            )
            continue
        if found.capacity in LOW_CAPACITY:
            refusals.append(f"{shape.name}: {found.capacity}")
            continue
        return shape.name, f"{shape.name} in {ad.rsplit(':', maxsplit=1)[-1]}"
    raise WarmUpUnavailableError(
        f"no flexible CPU shape can run in {ad.rsplit(':', maxsplit=1)[-1]} ({'; '.join(refusals)})"
    )


def _job(
    name: str,
    *,
    image: str,
    command: list[str],
    node_selector: Mapping[str, str],
    tolerations: list[dict[str, Any]],
    pull_secret: str,
    env: list[dict[str, Any]] | None = None,
    claim: str | None = None,
    session: str,
    resources: Mapping[str, Any],
) -> dict[str, Any]:
    """A one-shot Job with the chart's pod hardening (non-root, no privilege escalation,
    all capabilities dropped, RuntimeDefault seccomp)."""
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": env or [],
        "resources": dict(resources),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 1000,
        },
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": dict(node_selector),
        "tolerations": tolerations,
        "imagePullSecrets": [{"name": pull_secret}],
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 1000},
        "containers": [container],
    }
    if claim:
        container["volumeMounts"] = [{"name": "cache", "mountPath": NIM_CACHE_PATH}]
        pod["volumes"] = [{"name": "cache", "persistentVolumeClaim": {"claimName": claim}}]
    labels = {ROLE_LABEL: name, "nimble-oke/session": session}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 2,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def warm_up_manifests(
    values: Mapping[str, Any],
    *,
    session: str,
    claim: str,
    profile: str,
    cpu_pool_name: str,
    gpu_tolerations: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The download Job (CPU pool) and the image pre-pull Job (GPU pool)."""
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    pull_secret = values["imagePullSecrets"][0]
    key = values["ngc"]["apiKeySecret"]
    download = _job(
        WARM_JOB,
        image=image,
        command=["download-to-cache", "--profile", profile],
        node_selector={POOL_LABEL: cpu_pool_name},
        tolerations=[],
        pull_secret=pull_secret,
        env=[
            {"name": "NIM_CACHE_PATH", "value": NIM_CACHE_PATH},
            {"name": "NIM_MODEL_PROFILE", "value": profile},
            {
                "name": "NGC_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": key["name"], "key": key["key"]}},
            },
        ],
        claim=claim,
        session=session,
        resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "8Gi"}},
    )
    prepull = _job(
        PREPULL_JOB,
        image=image,
        command=["true"],
        node_selector={"nvidia.com/gpu": "true"},
        tolerations=[
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            *gpu_tolerations,
        ],
        pull_secret=pull_secret,
        session=session,
        resources={"requests": {"cpu": "100m", "memory": "64Mi"}},
    )
    return [download, prepull]


def hydrate_job(
    rendered: list[dict[str, Any]], *, session: str, cpu_pool_name: str
) -> dict[str, Any]:
    """The chart's ``hydrate-cache`` init container as a Job on the CPU pool: the same
    image, command, environment (the PAR Secret) and hardening, the same cache claim. Taken
    from the rendered chart so that the NIM pod's copy finds exactly what it would write."""
    spec = next(
        (
            m["spec"]["template"]["spec"]
            for m in rendered
            if m["kind"] in ("Deployment", "StatefulSet")
        ),
        None,
    )
    init = [c for c in (spec or {}).get("initContainers", []) if c["name"] == "hydrate-cache"]
    if spec is None or not init:
        raise WarmUpUnavailableError("the chart renders no hydrate-cache container")
    container = {**init[0], "name": WARM_JOB}
    mounted = {m["name"] for m in container.get("volumeMounts", [])}
    labels = {ROLE_LABEL: WARM_JOB, "nimble-oke/session": session}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": {POOL_LABEL: cpu_pool_name},
        "securityContext": spec.get("securityContext", {}),
        "containers": [container],
        "volumes": [v for v in spec.get("volumes", []) if v["name"] in mounted],
    }
    for key in ("serviceAccountName", "automountServiceAccountToken", "imagePullSecrets"):
        if key in spec:
            pod[key] = spec[key]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": WARM_JOB, "labels": labels},
        "spec": {"backoffLimit": 2, "template": {"metadata": {"labels": labels}, "spec": pod}},
    }


def delete_warm_up_jobs(client: Any, namespace: str) -> None:
    """Delete the warm-up's Jobs and their pods (a Job's pod holds the cache claim)."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.batch_v1 import Job
    from lightkube.types import CascadeType

    for name in (WARM_JOB, PREPULL_JOB):
        try:
            client.delete(Job, name, namespace=namespace, cascade=CascadeType.FOREGROUND)
        except ApiError as exc:
            if exc.status.code != 404:
                raise


def gpu_node_fill(cfg: NimbleConfig) -> str:
    """What the GPU node does instead when the warm-up falls back."""
    if cfg.cache.mode == "object-storage":
        return "the GPU node's init container hydrates the cache"
    return "NIM downloads the model on the GPU node"


class CacheWarmUp:
    """Runs the warm-up inside ``Provisioner.provision`` while the GPU pool's create is in
    flight (see ``while_gpu_pool_creates``)."""

    def __init__(
        self,
        cfg: NimbleConfig,
        plan: Plan,
        target: Any,
        store: Any,
        provisioner: Any,
        *,
        values: dict[str, Any],
        say: Say,
    ) -> None:
        assert plan.warm_up is not None
        self.cfg, self.plan, self.target, self.store = cfg, plan, target, store
        self.provisioner = provisioner
        self.values = values
        self.say = say
        self.session = cfg.session_name
        self.outcome = WarmUpOutcome()
        self.client: Any = None

    # -- the hook ----------------------------------------------------------------------

    def __call__(self, rung: Rung, cluster_id: str, network: Mapping[str, str]) -> None:
        try:
            self._run(rung, cluster_id, network)
        except WarmUpFatalError:
            self._clean_up_after_failure()
            raise
        except NimbleError as exc:
            self.outcome.fallback_reason = exc.message
            self.say(
                f"cache warm-up: {self.outcome.fallback_reason} — falling back: "
                f"{gpu_node_fill(self.cfg)}"
            )
            self.store.event(
                self.session, "WARNING", f"cache warm-up fell back: {self.outcome.fallback_reason}"
            )
            self._clean_up_after_failure()

    def _run(self, rung: Rung, cluster_id: str, network: Mapping[str, str]) -> None:
        from nimble_oke.kube.connect import client_for

        warm = self.plan.warm_up
        assert warm is not None
        catalog = load_catalog()
        configured = self.cfg.cache.warm_up_shape
        candidates = [c for c in catalog.cpu_shapes if configured in ("auto", c.name)] or list(
            catalog.cpu_shapes
        )
        provider = self.target.provider
        shape, where = pick_cpu_shape(provider, warm, rung.availability_domain, candidates)
        profile = None
        if self.cfg.cache.mode == "pvc":
            profile = nim_profile(self.cfg, self.plan)
            parse_profile(profile)  # a hash id cannot be checked; a name is validated
        self.outcome.profile = profile
        self.outcome.shape = shape
        self.outcome.availability_domain = rung.availability_domain
        self.say(f"cache warm-up: CPU pool {warm.ocpus} OCPU {where} beside the GPU pool")
        image_id, _ = provider.node_image(self.cfg.cluster.kubernetes_version, gpu=False)
        pool_name = f"{self.session}-cache-warmup"
        started = self.store.now()
        from nimble_oke.errors import CapacityError, ProviderError

        try:
            pool_id = self.provisioner.ensure(
                STEP,
                "node_pool",
                lambda: {
                    "name": pool_name,
                    "cluster_id": cluster_id,
                    "kubernetes_version": self.cfg.cluster.kubernetes_version,
                    "shape": shape,
                    "shape_config": {"ocpus": warm.ocpus, "memory_gb": warm.memory_gb},
                    "image_id": image_id,
                    "boot_volume_gb": 50,
                    "size": 1,
                    "availability_domain": rung.availability_domain,
                    "subnet_id": network["subnet/workers"],
                    "preemptible": False,
                    "labels": {ROLE_LABEL: WARM_JOB},
                    "node_defined_tags": self.provisioner.node_defined_tags,
                },
                timeout_s=self.provisioner.timeouts.node_pool_s,
                meters=cpu_pool_meters(catalog, warm.ocpus, warm.memory_gb, 1),
                name=pool_name,
            )
        except (CapacityError, ProviderError) as exc:
            self.provisioner.discard_failed_pool(STEP)
            raise WarmUpUnavailableError(f"the CPU pool did not come up ({exc.message})") from None
        self.outcome.cpu_pool_id = pool_id
        self.outcome.phases.append(("cpu node pool", self.store.now() - started))
        kubeconfig = self.provisioner.write_kubeconfig(cluster_id)
        self.client = client_for(kubeconfig, self.target.token(cluster_id), self.cfg.nim.namespace)
        self._fill(profile, pool_name)
        self.outcome.warmed = True
        self._release_cpu_pool()

    def _fill(self, profile: str | None, pool_name: str) -> str:
        """Apply the chart's StorageClass and cache claim, the two Jobs; wait for the
        fill; delete its Job so the volume is released. Returns the claim name."""
        from nimble_oke.kube.deploy import apply_manifests, ensure_namespace, ensure_ngc_secrets
        from nimble_oke.kube.render import render_chart

        cfg, session = self.cfg, self.session
        ensure_namespace(self.client, cfg.nim.namespace, session)
        ensure_ngc_secrets(self.client, cfg.nim.namespace, self.target.ngc_key, session=session)
        values = self.values
        rendered = render_chart(values, release=release_name(session), namespace=cfg.nim.namespace)
        storage = [m for m in rendered if m["kind"] in ("StorageClass", "PersistentVolumeClaim")]
        claims = [m["metadata"]["name"] for m in storage if m["kind"] == "PersistentVolumeClaim"]
        if not claims:
            raise WarmUpUnavailableError("the chart renders no cache claim for this configuration")
        claim = str(claims[0])
        self.outcome.claim = claim
        jobs = warm_up_manifests(
            values,
            session=session,
            claim=claim,
            profile=profile or "",
            cpu_pool_name=pool_name,
            gpu_tolerations=list(values["scheduling"].get("extraTolerations") or []),
        )
        if cfg.cache.mode == "object-storage":
            if values["cache"]["objectStorage"]["auth"] == "par":
                ensure_model_par(self.client, cfg, self.target, session, values)
                self.outcome.par_secret = True
            service_accounts = [m for m in rendered if m["kind"] == "ServiceAccount"]
            storage = [*storage, *service_accounts]
            jobs[0] = hydrate_job(rendered, session=session, cpu_pool_name=pool_name)
        apply_manifests(
            self.client,
            [*storage, *jobs],
            session=session,
            namespace=cfg.nim.namespace,
            prune=False,
        )
        started = self.store.now()
        self._wait_job(WARM_JOB)
        self.outcome.phases.append((cache_fill_phase(cfg), self.store.now() - started))
        # A finished pod no longer holds the volume: the attach/detach controller detaches
        # volumes of terminated pods, so the GPU node need not wait for the deletion.
        self._delete_job(WARM_JOB, wait=False)
        self.say("cache warm-up: model in the cache volume; volume released for the GPU node")
        return claim

    def _wait_job(self, name: str) -> None:
        budget = self.plan.startup.budget_s + 3600
        try:
            poll_until(
                lambda: self._job_done(name),
                timeout_s=self.target.real_seconds(budget) + 30,
                interval_s=self.target.poll_s,
            )
        except PollTimeoutError:
            raise WarmUpUnavailableError(
                f"the cache fill Job did not finish within {budget:.0f} s"
            ) from None

    def _job_done(self, name: str) -> bool | None:
        """True once the Job succeeded; None while it runs; raises when it cannot finish."""
        from lightkube.resources.batch_v1 import Job

        status = self.client.get(Job, name, namespace=self.cfg.nim.namespace).status
        if status is not None and (status.succeeded or 0) >= 1:
            return True
        for condition in (status.conditions or []) if status else []:
            if condition.type == "Failed" and condition.status == "True":
                raise WarmUpUnavailableError(
                    f"the cache fill Job failed ({condition.reason}: {condition.message}); "
                    f"see: kubectl -n {self.cfg.nim.namespace} logs job/{name}"
                )
        stuck = self._stuck_pod(name)
        if stuck and "ImagePull" in stuck:
            # the GPU node pulls the same image with the same key: stop before it bills
            what = "nimble tool" if self.cfg.cache.mode == "object-storage" else "NIM"
            raise WarmUpFatalError(
                f"the {what} image could not be pulled on the warm-up node ({stuck}); the "
                "GPU node would fail the same way",
                hint="check the NGC API key's access to nvcr.io (nimble doctor)"
                if what == "NIM"
                else "check cache.toolsImage in the chart values and its registry",
            )
        if stuck:
            raise WarmUpUnavailableError(f"the cache fill Job's pod is stuck ({stuck})")
        return None

    def _stuck_pod(self, job: str) -> str | None:
        """A reason the Job's pod will not get anywhere by waiting (the registry refuses
        the key, a missing Secret), or None."""
        from lightkube.resources.core_v1 import Pod

        ns = self.cfg.nim.namespace
        for pod in self.client.list(Pod, namespace=ns, labels={ROLE_LABEL: job}):
            stuck = stuck_reason(pod.to_dict(), init=False)
            if stuck is not None:
                return stuck
        return None

    def _delete_job(self, name: str, *, wait: bool) -> None:
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.batch_v1 import Job
        from lightkube.resources.core_v1 import Pod
        from lightkube.types import CascadeType

        ns = self.cfg.nim.namespace
        try:
            self.client.delete(Job, name, namespace=ns, cascade=CascadeType.FOREGROUND)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        if not wait:
            return
        wait_quietly(
            lambda: (
                None
                if list(self.client.list(Pod, namespace=ns, labels={ROLE_LABEL: name}))
                else True
            ),
            timeout_s=self.target.real_seconds(600) + 30,
            interval_s=self.target.poll_s,
        )

    def _release_cpu_pool(self) -> None:
        """Start deleting the CPU pool; :meth:`finish` waits for it later, off the path."""
        if self.outcome.cpu_pool_id:
            self.target.provider.delete("node_pool", self.outcome.cpu_pool_id)
            self.say("cache warm-up: deleting the CPU pool")

    def _clean_up_after_failure(self) -> None:
        try:
            # A half-filled cache stays: NIM checks the cache and downloads what is missing.
            if self.client is not None:
                self._delete_job(WARM_JOB, wait=True)
            self._release_cpu_pool()
        except Exception as exc:  # noqa: BLE001 - the fallback must go on; down cleans up
            self.say(f"cache warm-up: clean-up incomplete ({exc}); nimble down removes the rest")

    def discard_claim(self) -> None:
        """Delete the warmed claim (its volume is in another AD than the GPU pool) and wait
        until it is gone, so the chart creates a fresh one where the GPU node is."""
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import PersistentVolumeClaim

        if self.client is None or not self.outcome.claim:
            return
        ns = self.cfg.nim.namespace
        try:
            self.client.delete(PersistentVolumeClaim, self.outcome.claim, namespace=ns)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            return

        def gone() -> bool | None:
            try:
                self.client.get(PersistentVolumeClaim, self.outcome.claim, namespace=ns)
            except ApiError:
                return True
            return None

        wait_quietly(
            gone, timeout_s=self.target.real_seconds(300) + 30, interval_s=self.target.poll_s
        )

    def finish(self) -> None:
        """After the endpoint is ready: the CPU pool's deletion has finished by now (or is
        waited for here), the pre-pull Job is removed, the client closed."""
        pool = self.outcome.cpu_pool_id
        try:
            if pool:
                self.target.provider.await_deleted(
                    "node_pool", pool, timeout_s=self.provisioner.timeouts.delete_s
                )
                self.store.record_deleted(self.session, "node_pool", pool)
            if self.client is not None:
                self._delete_job(PREPULL_JOB, wait=False)
        finally:
            self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
