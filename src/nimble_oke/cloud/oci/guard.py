"""What the cloud guard needs from OCI: a defined tag to select a session's instances by,
a Resource Scheduler schedule that stops them, and starting them again.

Mixed into :class:`nimble_oke.cloud.oci.provider.OciProvider` (same clients, same error
translation). The SDK is imported here only, as in provider.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import oci

from nimble_oke.cloud.oci import errors as oe
from nimble_oke.ports import Created


def _schedule_details(spec: Mapping[str, Any], *, create: bool, compartment_id: str) -> Any:
    m = oci.resource_scheduler.models
    filters = [
        m.CompartmentIdResourceFilter(
            value=compartment_id, should_include_child_compartments=False
        ),
        m.ResourceTypeResourceFilter(value=["instance"]),
        m.DefinedTagsResourceFilter(
            value=[
                m.DefinedTagFilterValue(namespace=ns, tag_key=key, value=value)
                for ns, keys in spec["select_defined_tags"].items()
                for key, value in keys.items()
            ]
        ),
    ]
    fields = {
        "display_name": spec["name"],
        "description": spec.get("description"),
        "action": spec["action"],
        "recurrence_type": "CRON",
        "recurrence_details": spec["cron"],
        "resource_filters": filters,
        "time_starts": spec["starts"],
        "freeform_tags": dict(spec.get("tags", {})),
    }
    if create:
        return m.CreateScheduleDetails(compartment_id=compartment_id, **fields)
    return m.UpdateScheduleDetails(**fields)


class CloudGuardMixin:
    """What the cloud guard needs from OCI (mixed into :class:`OciProvider`)."""

    scheduler: Any
    identity: Any
    compute: Any
    tenancy_id: str
    compartment_id: str

    def _call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def ensure_defined_tag(self, namespace: str, key: str) -> None:
        """Make sure the tenancy has the defined tag ``namespace.key`` (created once;
        needs "manage tag-namespaces in tenancy"). ProviderError when it cannot."""
        m = oci.identity.models
        found = self._call(
            "listing tag namespaces",
            oci.pagination.list_call_get_all_results,
            self.identity.list_tag_namespaces,
            self.tenancy_id,
        ).data
        ns = next((n for n in found if str(n.name).lower() == namespace.lower()), None)
        if ns is None:
            ns = self._call(
                f"creating the tag namespace {namespace}",
                self.identity.create_tag_namespace,
                m.CreateTagNamespaceDetails(
                    compartment_id=self.tenancy_id,
                    name=namespace,
                    description="nimble-oke: which session a resource belongs to",
                ),
            ).data
        tags = self._call(
            "listing tags",
            oci.pagination.list_call_get_all_results,
            self.identity.list_tags,
            ns.id,
        ).data
        if not any(str(t.name).lower() == key.lower() for t in tags):
            self._call(
                f"creating the tag {namespace}.{key}",
                self.identity.create_tag,
                ns.id,
                m.CreateTagDetails(name=key, description="the nimble-oke session"),
            )

    def _create_schedule(self, spec: Mapping[str, Any], token: str) -> Created:
        details = _schedule_details(spec, create=True, compartment_id=self.compartment_id)
        response = self._call(
            "creating the cloud guard's schedule",
            self.scheduler.create_schedule,
            details,
            opc_retry_token=token,
        )
        return Created(str(response.data.id), None, response.headers.get("opc-request-id"))

    def update_schedule(self, schedule_id: str, spec: Mapping[str, Any]) -> None:
        details = _schedule_details(spec, create=False, compartment_id=self.compartment_id)
        self._call(
            "updating the cloud guard's schedule",
            self.scheduler.update_schedule,
            schedule_id,
            details,
        )

    def schedule_runs(self, schedule_id: str) -> dict[str, Any] | None:
        """When the schedule starts, last ran and how that went (None when it is gone)."""
        try:
            data = self.scheduler.get_schedule(schedule_id).data
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return None
            oe.translate(exc, "reading the cloud guard's schedule")
        return {
            "state": str(data.lifecycle_state),
            "starts": data.time_starts.timestamp() if data.time_starts else None,
            "last_run": data.time_last_run.timestamp() if data.time_last_run else None,
            "last_status": data.last_run_status,
        }

    def instance_state(self, instance_id: str) -> str | None:
        """The Compute instance's lifecycle state (RUNNING, STOPPED, ...), None if gone.
        An OKE node whose instance is stopped stays ACTIVE in its pool: ask Compute."""
        try:
            data = self.compute.get_instance(instance_id).data
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return None
            oe.translate(exc, "reading a node's instance")
        return str(data.lifecycle_state)

    def start_instance(self, instance_id: str) -> None:
        """Start a stopped instance (a GPU node the cloud guard stopped)."""
        self._call("starting a stopped node", self.compute.instance_action, instance_id, "START")
