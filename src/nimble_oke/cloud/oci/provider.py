"""CloudProvider over the real OCI SDK.

The SDK is imported inside this module only (never at CLI start-up). Decisions:
- Retries: one explicit strategy for every call (exponential backoff with full jitter on
  429, 5xx, 409 IncorrectState and connection errors), injectable so tests run fast.
  POSTs carry our deterministic ``opc-retry-token``, so a retried create never duplicates.
- Circuit breaker: off. A CLI run wants the real error of the call that failed, not a
  ``CircuitBreakerError`` raised without calling; our retries already bound the load.
- Every ServiceError is translated at this boundary (``errors.translate``).
- Waiting polls work requests / lifecycle states every ``poll_s`` real seconds (small for
  the simulator, a few seconds against OCI).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import oci

from nimble_oke.cloud.oci import errors as oe
from nimble_oke.cloud.oci.guard import CloudGuardMixin
from nimble_oke.cloud.oci.power import PowerMixin, power_retry_strategy
from nimble_oke.domain.network import OSN, Rule
from nimble_oke.errors import CapacityError, ProviderError
from nimble_oke.polling import poll_until
from nimble_oke.ports import Created, FoundResource, GpuAvailability

SEARCH_TYPES = {
    "Vcn": "vcn",
    "Subnet": "subnet",
    "InternetGateway": "internet_gateway",
    "NatGateway": "nat_gateway",
    "ServiceGateway": "service_gateway",
    "RouteTable": "route_table",
    "SecurityList": "security_list",
    "ClustersCluster": "cluster",
    "Cluster": "cluster",
    "ClustersNodePool": "node_pool",
    "NodePool": "node_pool",
    "Volume": "volume",
    "LoadBalancer": "load_balancer",
    "Image": "node_image",
}
GONE = {"TERMINATED", "DELETED", "TERMINATING_DONE"}
DELETING = ("DELETING", "TERMINATING")
BROKEN = ("FAILED", "NEEDS_ATTENTION")
READY = {"AVAILABLE", "ACTIVE", "SUCCEEDED"}


def default_retry_strategy() -> Any:
    return oci.retry.RetryStrategyBuilder(
        max_attempts_check=True,
        max_attempts=8,
        total_elapsed_time_check=True,
        total_elapsed_time_seconds=600,
        retry_max_wait_between_calls_seconds=30,
        retry_base_sleep_time_seconds=1,
        service_error_check=True,
        service_error_retry_on_any_5xx=True,
        service_error_retry_config={429: [], 409: ["IncorrectState"]},
    ).get_retry_strategy()


def fast_retry_strategy(attempts: int = 6) -> Any:
    """For tests against the simulator: same policy, millisecond sleeps."""
    return oci.retry.RetryStrategyBuilder(
        max_attempts_check=True,
        max_attempts=attempts,
        total_elapsed_time_check=True,
        total_elapsed_time_seconds=30,
        retry_max_wait_between_calls_seconds=0.05,
        retry_base_sleep_time_seconds=0.01,
        service_error_check=True,
        service_error_retry_on_any_5xx=True,
        service_error_retry_config={429: [], 409: ["IncorrectState"]},
    ).get_retry_strategy()


class OciProvider(CloudGuardMixin, PowerMixin):
    """Implements :class:`nimble_oke.ports.CloudProvider`."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        compartment_id: str | None = None,
        service_endpoint: str | None = None,
        retry_strategy: Any = None,
        poll_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        signer: Any = None,
    ) -> None:
        """``signer``: an instance/resource-principal or workload-identity signer for code
        running inside OCI (the watchdog); ``config`` then only needs ``region``."""
        self.config = dict(config)
        self.region = str(self.config.get("region", ""))
        self.compartment_id = compartment_id or str(self.config.get("tenancy", ""))
        self.tenancy_id = str(self.config.get("tenancy", ""))
        self.poll_s = poll_s
        self._sleep = sleep
        # power actions: their own retries (never IncorrectState, never a START's 500)
        self.power_retry = power_retry_strategy(fast=retry_strategy is not None)
        kwargs: dict[str, Any] = {
            "retry_strategy": retry_strategy or default_retry_strategy(),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        }
        if service_endpoint:
            kwargs["service_endpoint"] = service_endpoint
        if signer is not None:
            self.tenancy_id = self.tenancy_id or str(getattr(signer, "tenancy_id", "") or "")
        elif "key_file" in self.config or "key_content" in self.config:
            # One signer for all clients: each client would otherwise load and parse the
            # private key itself (8 times, ~1 s per command on this machine).
            from nimble_oke.cloud.oci.token import signer_from_config

            try:
                signer = signer_from_config(self.config)
            except (OSError, ValueError, KeyError) as exc:
                raise ProviderError(
                    f"OCI API key: {exc}", hint="check key_file in the OCI config"
                ) from None
        if signer is not None:
            kwargs["signer"] = signer
        config_errors: tuple[type[BaseException], ...] = (
            *oe.service_error_types(),
            ValueError,
            KeyError,
        )
        try:
            self.ce = oci.container_engine.ContainerEngineClient(self.config, **kwargs)
            self.vn = oci.core.VirtualNetworkClient(self.config, **kwargs)
            self.compute = oci.core.ComputeClient(self.config, **kwargs)
            self.blocks = oci.core.BlockstorageClient(self.config, **kwargs)
            self.identity = oci.identity.IdentityClient(self.config, **kwargs)
            self.limits = oci.limits.LimitsClient(self.config, **kwargs)
            self.search = oci.resource_search.ResourceSearchClient(self.config, **kwargs)
            self.lb = oci.load_balancer.LoadBalancerClient(self.config, **kwargs)
            self.scheduler = oci.resource_scheduler.ScheduleClient(self.config, **kwargs)
        except config_errors as exc:
            oe.translate(exc, "configuring the OCI SDK")

    def close(self) -> None:
        """Close the SDK clients' HTTP connection pools."""
        for client in (
            self.ce,
            self.vn,
            self.compute,
            self.blocks,
            self.identity,
            self.limits,
            self.search,
            self.lb,
            self.scheduler,
        ):
            session = getattr(getattr(client, "base_client", None), "session", None)
            if session is not None:
                session.close()

    def _call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except oe.service_error_types() as exc:
            oe.translate(exc, action)

    # -- preflight ---------------------------------------------------------------------

    def check_credentials(self) -> str:
        tenancy = self._call("checking credentials", self.identity.get_tenancy, self.tenancy_id)
        return str(tenancy.data.name)

    def compartment_name(self, compartment_id: str) -> str:
        if compartment_id == self.tenancy_id:
            return "(root compartment)"
        data = self._call(
            f"reading compartment {compartment_id}", self.identity.get_compartment, compartment_id
        ).data
        if data.lifecycle_state != "ACTIVE":
            raise ProviderError(f"compartment {compartment_id} is {data.lifecycle_state}")
        return str(data.name)

    def availability_domains(self) -> list[str]:
        ads = self._call(
            "listing availability domains",
            self.identity.list_availability_domains,
            self.tenancy_id,
        ).data
        return [str(ad.name) for ad in ads]

    def gpu_availability(
        self, shape: str, limit_name: str, availability_domain: str
    ) -> GpuAvailability:
        available: int | None
        try:
            limit = self.limits.get_resource_availability(
                "compute",
                limit_name,
                self.compartment_id,
                availability_domain=availability_domain,
            ).data
            available = None if limit.available is None else int(limit.available)
        except oe.service_error_types():
            available = None
        capacity = "UNKNOWN"
        try:
            details = oci.core.models.CreateComputeCapacityReportDetails(
                compartment_id=self.tenancy_id,
                availability_domain=availability_domain,
                shape_availabilities=[
                    oci.core.models.CreateCapacityReportShapeAvailabilityDetails(
                        instance_shape=shape
                    )
                ],
            )
            report = self.compute.create_compute_capacity_report(details).data
            statuses = [s.availability_status for s in report.shape_availabilities or []]
            if statuses:
                capacity = str(statuses[0])
        except oe.service_error_types():
            capacity = "UNKNOWN"
        return GpuAvailability(availability_domain, available, capacity)

    def _node_pool_options(self) -> Any:
        return self._call(
            "reading node pool options",
            self.ce.get_node_pool_options,
            "all",
            compartment_id=self.compartment_id,
        ).data

    def kubernetes_versions(self) -> list[str]:
        return [str(v).lstrip("v") for v in self._node_pool_options().kubernetes_versions or []]

    def node_image(self, kubernetes_version: str, *, gpu: bool) -> tuple[str, str]:
        wanted = f"OKE-{kubernetes_version.lstrip('v')}-"
        candidates = []
        for source in self._node_pool_options().sources or []:
            name = str(source.source_name)
            if wanted not in name or "aarch64" in name or ("GPU" in name) != gpu:
                continue
            if not name.startswith("Oracle-Linux-8"):
                continue
            candidates.append((name, str(source.image_id)))
        if not candidates:
            raise ProviderError(
                f"no {'GPU ' if gpu else ''}OKE node image for Kubernetes {kubernetes_version}",
                hint="pick a Kubernetes version OKE currently supports (nimble doctor lists them)",
            )
        name, image_id = max(candidates)  # names sort by date then build
        return image_id, name

    def oracle_services(self) -> tuple[str, str] | None:
        services = self._call("listing Oracle services", self.vn.list_services).data
        for service in services:
            if str(service.name).startswith(
                "All "
            ) and "Services In Oracle Services Network" in str(service.name).title().replace(
                "In Oracle", "In Oracle"
            ):
                return str(service.id), str(service.cidr_block)
        for service in services:
            if "Oracle Services Network" in str(service.name):
                return str(service.id), str(service.cidr_block)
        return None

    # -- create --------------------------------------------------------------------------

    def create(self, kind: str, spec: Mapping[str, Any], *, retry_token: str) -> Created:
        builder = getattr(self, f"_create_{kind}", None)
        if builder is None:
            raise ProviderError(f"cannot create a {kind}")
        created: Created = builder(spec, retry_token)
        return created

    def _base(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "compartment_id": self.compartment_id,
            "display_name": spec["name"],
            "freeform_tags": dict(spec.get("tags", {})),
        }

    def _sync(self, action: str, fn: Callable[..., Any], details: Any, token: str) -> Created:
        response = self._call(action, fn, details, opc_retry_token=token)
        return Created(str(response.data.id), None, response.headers.get("opc-request-id"))

    def _create_vcn(self, spec: Mapping[str, Any], token: str) -> Created:
        details = oci.core.models.CreateVcnDetails(
            cidr_blocks=[spec["cidr"]], dns_label=spec.get("dns_label"), **self._base(spec)
        )
        return self._sync("creating the VCN", self.vn.create_vcn, details, token)

    def _create_internet_gateway(self, spec: Mapping[str, Any], token: str) -> Created:
        details = oci.core.models.CreateInternetGatewayDetails(
            vcn_id=spec["vcn_id"], is_enabled=True, **self._base(spec)
        )
        return self._sync(
            "creating the internet gateway", self.vn.create_internet_gateway, details, token
        )

    def _create_nat_gateway(self, spec: Mapping[str, Any], token: str) -> Created:
        details = oci.core.models.CreateNatGatewayDetails(vcn_id=spec["vcn_id"], **self._base(spec))
        return self._sync("creating the NAT gateway", self.vn.create_nat_gateway, details, token)

    def _create_service_gateway(self, spec: Mapping[str, Any], token: str) -> Created:
        details = oci.core.models.CreateServiceGatewayDetails(
            vcn_id=spec["vcn_id"],
            services=[oci.core.models.ServiceIdRequestDetails(service_id=spec["service_id"])],
            **self._base(spec),
        )
        return self._sync(
            "creating the service gateway", self.vn.create_service_gateway, details, token
        )

    def _create_route_table(self, spec: Mapping[str, Any], token: str) -> Created:
        rules = [
            oci.core.models.RouteRule(
                destination=r["destination"],
                destination_type=r["destination_type"],
                network_entity_id=r["target_id"],
            )
            for r in spec["rules"]
        ]
        details = oci.core.models.CreateRouteTableDetails(
            vcn_id=spec["vcn_id"], route_rules=rules, **self._base(spec)
        )
        return self._sync("creating a route table", self.vn.create_route_table, details, token)

    def _create_security_list(self, spec: Mapping[str, Any], token: str) -> Created:
        osn_cidr = spec.get("osn_cidr", "")
        ingress, egress = [], []
        for rule in spec["rules"]:
            peer = osn_cidr if rule.peer == OSN else rule.peer
            opts = _rule_options(rule)
            if rule.direction == "ingress":
                ingress.append(
                    oci.core.models.IngressSecurityRule(
                        protocol=rule.protocol,
                        source=peer,
                        source_type=rule.peer_type,
                        description=rule.why,
                        **opts,
                    )
                )
            else:
                egress.append(
                    oci.core.models.EgressSecurityRule(
                        protocol=rule.protocol,
                        destination=peer,
                        destination_type=rule.peer_type,
                        description=rule.why,
                        **opts,
                    )
                )
        details = oci.core.models.CreateSecurityListDetails(
            vcn_id=spec["vcn_id"],
            ingress_security_rules=ingress,
            egress_security_rules=egress,
            **self._base(spec),
        )
        return self._sync("creating a security list", self.vn.create_security_list, details, token)

    def _create_subnet(self, spec: Mapping[str, Any], token: str) -> Created:
        details = oci.core.models.CreateSubnetDetails(
            vcn_id=spec["vcn_id"],
            cidr_block=spec["cidr"],
            dns_label=spec.get("dns_label"),
            prohibit_public_ip_on_vnic=not spec["public"],
            route_table_id=spec["route_table_id"],
            security_list_ids=list(spec["security_list_ids"]),
            **self._base(spec),
        )
        return self._sync("creating a subnet", self.vn.create_subnet, details, token)

    def _work_request_resource(self, action: str, wr_id: str, entity: str) -> str:
        for _ in range(50):
            wr = self._call(action, self.ce.get_work_request, wr_id).data
            for res in wr.resources or []:
                if str(res.entity_type).lower().replace("_", "") == entity and res.identifier:
                    return str(res.identifier)
            self._sleep(self.poll_s / 5)
        raise ProviderError(f"{action}: work request {wr_id} names no {entity}")

    def _create_cluster(self, spec: Mapping[str, Any], token: str) -> Created:
        m = oci.container_engine.models
        details = m.CreateClusterDetails(
            name=spec["name"],
            compartment_id=self.compartment_id,
            vcn_id=spec["vcn_id"],
            kubernetes_version="v" + spec["kubernetes_version"].lstrip("v"),
            type="ENHANCED_CLUSTER" if spec["type"] == "enhanced" else "BASIC_CLUSTER",
            freeform_tags=dict(spec.get("tags", {})),
            endpoint_config=m.CreateClusterEndpointConfigDetails(
                subnet_id=spec["endpoint_subnet_id"], is_public_ip_enabled=True
            ),
            options=m.ClusterCreateOptions(
                service_lb_subnet_ids=list(spec["lb_subnet_ids"]),
                kubernetes_network_config=m.KubernetesNetworkConfig(
                    pods_cidr=spec["pods_cidr"], services_cidr=spec["services_cidr"]
                ),
            ),
        )
        response = self._call(
            "creating the OKE cluster", self.ce.create_cluster, details, opc_retry_token=token
        )
        wr_id = str(response.headers["opc-work-request-id"])
        cluster_id = self._work_request_resource("creating the OKE cluster", wr_id, "cluster")
        return Created(cluster_id, wr_id, response.headers.get("opc-request-id"))

    def _create_node_pool(self, spec: Mapping[str, Any], token: str) -> Created:
        m = oci.container_engine.models
        placements = [
            m.NodePoolPlacementConfigDetails(availability_domain=ad, subnet_id=spec["subnet_id"])
            for ad in spec.get("availability_domains") or [spec["availability_domain"]]
        ]
        for placement in placements:
            if spec.get("preemptible"):
                placement.preemptible_node_config = m.PreemptibleNodeConfigDetails(
                    preemption_action=m.TerminatePreemptionAction(
                        type="TERMINATE", is_preserve_boot_volume=False
                    )
                )
        details = m.CreateNodePoolDetails(
            compartment_id=self.compartment_id,
            cluster_id=spec["cluster_id"],
            name=spec["name"],
            kubernetes_version="v" + spec["kubernetes_version"].lstrip("v"),
            node_shape=spec["shape"],
            node_source_details=m.NodeSourceViaImageDetails(
                source_type="IMAGE",
                image_id=spec["image_id"],
                boot_volume_size_in_gbs=spec["boot_volume_gb"],
            ),
            node_shape_config=m.CreateNodeShapeConfigDetails(
                ocpus=float(spec["shape_config"]["ocpus"]),
                memory_in_gbs=float(spec["shape_config"]["memory_gb"]),
            )
            if spec.get("shape_config")
            else None,
            node_config_details=m.CreateNodePoolNodeConfigDetails(
                size=spec["size"],
                placement_configs=placements,
                # OKE puts these on every instance it launches (the cloud guard's selector)
                defined_tags=spec.get("node_defined_tags") or None,
            ),
            initial_node_labels=[
                m.KeyValue(key=k, value=v) for k, v in spec.get("labels", {}).items()
            ],
            node_metadata={"user_data": spec["user_data_b64"]}
            if spec.get("user_data_b64")
            else None,
            node_eviction_node_pool_settings=m.NodeEvictionNodePoolSettings(
                eviction_grace_duration="PT0M", is_force_delete_after_grace_duration=True
            ),
            freeform_tags=dict(spec.get("tags", {})),
        )
        what = f"creating the node pool {spec['name']}"
        response = self._call(what, self.ce.create_node_pool, details, opc_retry_token=token)
        wr_id = str(response.headers["opc-work-request-id"])
        pool_id = self._work_request_resource(what, wr_id, "nodepool")
        return Created(pool_id, wr_id, response.headers.get("opc-request-id"))

    # -- wait ------------------------------------------------------------------------------

    def await_ready(self, kind: str, created: Created, *, timeout_s: float) -> None:
        if created.work_request_id:
            self._await_work_request(kind, created, timeout_s)
            return

        def ready() -> bool | None:
            state = self.state(kind, created.resource_id)
            if state in READY:
                return True
            if kind == "node_pool" and state in BROKEN:
                self._raise_pool_failure(created.resource_id, str(state))
            if state is None or state in ("FAILED", *DELETING):
                raise ProviderError(f"{kind} {created.resource_id} ended in state {state}")
            last[0] = state
            return None

        last: list[str | None] = [None]
        poll_until(
            ready,
            timeout_s=timeout_s,
            interval_s=self.poll_s,
            sleep=self._sleep,
            on_timeout=lambda: ProviderError(
                f"timed out waiting for {kind} {created.resource_id} ({last[0]})"
            ),
        )

    def _raise_pool_failure(self, pool_id: str, state: str) -> None:
        errors = [n["error"] for n in self.node_pool_nodes(pool_id) if n["error"]]
        message = "; ".join(errors) or f"node pool {state}"
        if oe.is_capacity_message(message):
            raise CapacityError(f"node_pool {pool_id}: {message}")
        raise ProviderError(f"node_pool {pool_id} is {state}: {message}")

    def _await_work_request(self, kind: str, created: Created, timeout_s: float) -> None:
        wr_id = str(created.work_request_id)
        seen: list[Any] = [None]

        def finished() -> bool | None:
            wr = self._call(f"waiting for the {kind}", self.ce.get_work_request, wr_id).data
            seen[0] = wr
            if wr.status == "SUCCEEDED":
                return True
            if wr.status in ("FAILED", "CANCELED"):
                errors = self._call(
                    f"reading errors of work request {wr_id}",
                    self.ce.list_work_request_errors,
                    self.compartment_id,
                    wr_id,
                ).data
                message = oe.work_request_failure(errors) or f"work request {wr_id} {wr.status}"
                if oe.is_capacity_message(message):
                    raise CapacityError(f"{kind} {created.resource_id}: {message}")
                raise ProviderError(f"{kind} {created.resource_id} failed: {message}")
            return None

        poll_until(
            finished,
            timeout_s=timeout_s,
            interval_s=self.poll_s,
            sleep=self._sleep,
            on_timeout=lambda: ProviderError(
                f"timed out waiting for {kind} {created.resource_id} "
                f"(work request {wr_id} {seen[0].status}, {seen[0].percent_complete}%)"
            ),
        )

    # -- state and delete --------------------------------------------------------------------

    _GETTERS: ClassVar[dict[str, tuple[str, str]]] = {
        "vcn": ("vn", "get_vcn"),
        "internet_gateway": ("vn", "get_internet_gateway"),
        "nat_gateway": ("vn", "get_nat_gateway"),
        "service_gateway": ("vn", "get_service_gateway"),
        "route_table": ("vn", "get_route_table"),
        "security_list": ("vn", "get_security_list"),
        "subnet": ("vn", "get_subnet"),
        "cluster": ("ce", "get_cluster"),
        "node_pool": ("ce", "get_node_pool"),
        "volume": ("blocks", "get_volume"),
        "load_balancer": ("lb", "get_load_balancer"),
        "node_image": ("compute", "get_image"),
        "schedule": ("scheduler", "get_schedule"),
    }
    _DELETERS: ClassVar[dict[str, tuple[str, str]]] = {
        kind: (client, "delete_" + getter[4:]) for kind, (client, getter) in _GETTERS.items()
    }

    def addon(self, cluster_id: str, name: str) -> dict[str, Any] | None:
        """An installed cluster add-on (state, version, configurations), None if absent."""
        try:
            data = self.ce.get_addon(cluster_id, name).data
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return None
            oe.translate(exc, f"reading the {name} add-on")
        except oe.service_error_types() as exc:
            oe.translate(exc, f"reading the {name} add-on")
        return {
            "state": str(data.lifecycle_state),
            "version": data.current_installed_version or data.version,
            "configurations": {c.key: c.value for c in data.configurations or []},
        }

    def install_addon(
        self, cluster_id: str, name: str, configurations: Mapping[str, str], *, timeout_s: float
    ) -> bool:
        """Install (or re-configure) a cluster add-on and wait until it is ACTIVE. Returns
        False when it was already installed exactly so (idempotent re-runs)."""
        m = oci.container_engine.models
        existing = self.addon(cluster_id, name)
        wanted = dict(configurations)
        if existing and existing["state"] == "ACTIVE" and existing["configurations"] == wanted:
            return False
        details = m.InstallAddonDetails(
            addon_name=name,
            configurations=[m.AddonConfiguration(key=k, value=v) for k, v in wanted.items()],
            is_override_existing=existing is not None and existing["state"] != "DELETED",
        )
        response = self._call(
            f"installing the {name} add-on", self.ce.install_addon, cluster_id, details
        )
        wr_id = str(response.headers["opc-work-request-id"])
        self._await_work_request(f"{name} add-on", Created(cluster_id, wr_id), timeout_s)
        return True

    def _read(self, kind: str, resource_id: str) -> Any:
        """The resource's model from its get call, or None when OCI says 404."""
        client, method = self._GETTERS[kind]
        try:
            return getattr(getattr(self, client), method)(resource_id).data
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return None
            oe.translate(exc, f"reading {kind} {resource_id}")
        except oe.service_error_types() as exc:
            oe.translate(exc, f"reading {kind} {resource_id}")

    def state(self, kind: str, resource_id: str) -> str | None:
        data = self._read(kind, resource_id)
        if data is None:
            return None
        state = str(getattr(data, "lifecycle_state", "") or "")
        return None if state in GONE else state

    def delete(self, kind: str, resource_id: str) -> str | None:
        client, method = self._DELETERS[kind]
        kwargs: dict[str, Any] = {}
        if kind == "node_pool":
            kwargs = {
                "override_eviction_grace_duration": "PT0M",
                "is_force_deletion_after_override_grace_duration": True,
            }
        try:
            response = getattr(getattr(self, client), method)(resource_id, **kwargs)
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return None
            if exc.status == 409 and self.state(kind, resource_id) in (None, *DELETING):
                return None  # already being deleted (e.g. by an interrupted down): fine
            oe.translate(exc, f"deleting {kind} {resource_id}")
        except oe.service_error_types() as exc:
            oe.translate(exc, f"deleting {kind} {resource_id}")
        wr = response.headers.get("opc-work-request-id")
        return str(wr) if wr else None

    def await_deleted(self, kind: str, resource_id: str, *, timeout_s: float) -> None:
        poll_until(
            lambda: True if self.state(kind, resource_id) is None else None,
            timeout_s=timeout_s,
            interval_s=self.poll_s,
            sleep=self._sleep,
            on_timeout=lambda: ProviderError(
                f"timed out waiting for {kind} {resource_id} to be deleted"
            ),
        )

    # -- search, kubeconfig, scaling ----------------------------------------------------------

    def find_tagged(self, tags: Mapping[str, str]) -> list[FoundResource]:
        """Resource Search on the first tag, then an exact client-side match on all tags.

        A structured query ``freeformTags.key = a && freeformTags.value = b`` may match a
        key of one tag and the value of another, so the search narrows and we decide.
        """
        if not tags:
            raise ValueError("find_tagged needs at least one tag")
        key, value = next(iter(tags.items()))
        details = oci.resource_search.models.StructuredSearchDetails(
            query=(
                "query all resources where "
                f"(freeformTags.key = '{key}' && freeformTags.value = '{value}')"
            ),
            type="Structured",
        )
        items = self._call(
            "searching resources by tag",
            oci.pagination.list_call_get_all_results,
            self.search.search_resources,
            details,
        ).data
        out = []
        for item in items:
            kind = SEARCH_TYPES.get(str(item.resource_type))
            state = str(item.lifecycle_state or "")
            found_tags = dict(item.freeform_tags or {})
            if kind is None or state in GONE or state == "TERMINATING":
                continue
            if any(found_tags.get(k) != v for k, v in tags.items()):
                continue
            created = item.time_created.timestamp() if item.time_created else None
            out.append(
                FoundResource(
                    kind,
                    str(item.identifier),
                    str(item.display_name or ""),
                    state,
                    found_tags,
                    created,
                )
            )
        return out + self._tagged_schedules(tags)

    def _tagged_schedules(self, tags: Mapping[str, str]) -> list[FoundResource]:
        """Resource Scheduler schedules carrying the tags (Resource Search does not index
        them): listed in the compartment and matched here."""
        items = self._call(
            "listing schedules",
            oci.pagination.list_call_get_all_results,
            self.scheduler.list_schedules,
            compartment_id=self.compartment_id,
        ).data
        return [
            FoundResource(
                "schedule",
                str(item.id),
                str(item.display_name or ""),
                str(item.lifecycle_state),
                dict(item.freeform_tags or {}),
                item.time_created.timestamp() if item.time_created else None,
            )
            for item in items
            if str(item.lifecycle_state) not in GONE
            and all((item.freeform_tags or {}).get(k) == v for k, v in tags.items())
        ]

    def kubeconfig(self, cluster_id: str) -> str:
        details = oci.container_engine.models.CreateClusterKubeconfigContentDetails(
            token_version="2.0.0",  # noqa: S106 - a format version, not a secret
            endpoint="PUBLIC_ENDPOINT",
        )
        response = self._call(
            "creating the kubeconfig",
            self.ce.create_kubeconfig,
            cluster_id,
            create_cluster_kubeconfig_content_details=details,
        )
        data = response.data
        text = data.text if hasattr(data, "text") else data
        return text.decode() if isinstance(text, bytes) else str(text)

    def scale_node_pool(self, node_pool_id: str, size: int) -> None:
        m = oci.container_engine.models
        details = m.UpdateNodePoolDetails(
            node_config_details=m.UpdateNodePoolNodeConfigDetails(size=size)
        )
        self._call(f"scaling node pool to {size}", self.ce.update_node_pool, node_pool_id, details)

    def volume_availability_domain(self, volume_id: str) -> str | None:
        data = self._read("volume", volume_id)
        return str(data.availability_domain) if data and data.availability_domain else None

    def volume_performance(self, volume_id: str) -> tuple[int, int] | None:
        data = self._read("volume", volume_id)
        if data is None or data.lifecycle_state in ("TERMINATING", "TERMINATED"):
            return None
        return int(data.size_in_gbs or 0), int(data.vpus_per_gb or 0)

    def _create_node_image(self, spec: Mapping[str, Any], token: str) -> Created:
        details = oci.core.models.CreateImageDetails(
            instance_id=spec["instance_id"], **self._base(spec)
        )
        return self._sync("capturing the node image", self.compute.create_image, details, token)

    def node_image_size_gb(self, image_id: str) -> float | None:
        data = self._read("node_image", image_id)
        if data is None:
            return None
        size = data.billable_size_in_gbs or (data.size_in_mbs or 0) / 1024
        return float(size)

    def set_volume_performance(self, volume_id: str, vpus_per_gb: int) -> None:
        details = oci.core.models.UpdateVolumeDetails(vpus_per_gb=vpus_per_gb)
        self._call(
            "changing the volume's performance", self.blocks.update_volume, volume_id, details
        )

    def node_pool_nodes(self, node_pool_id: str) -> list[dict[str, Any]]:
        pool = self._call("reading the node pool", self.ce.get_node_pool, node_pool_id).data
        return [
            {
                "id": n.id,
                "name": n.name,
                "state": n.lifecycle_state,
                "availability_domain": n.availability_domain,
                "error": getattr(n.node_error, "message", None) if n.node_error else None,
            }
            for n in pool.nodes or []
        ]


def _rule_options(rule: Rule) -> dict[str, Any]:
    m = oci.core.models
    if rule.icmp is not None:
        return {"icmp_options": m.IcmpOptions(type=rule.icmp[0], code=rule.icmp[1])}
    if rule.ports is None:
        return {}
    port_range = m.PortRange(min=rule.ports[0], max=rule.ports[1])
    if rule.protocol == "6":
        return {"tcp_options": m.TcpOptions(destination_port_range=port_range)}
    if rule.protocol == "17":
        return {"udp_options": m.UdpOptions(destination_port_range=port_range)}
    return {}
