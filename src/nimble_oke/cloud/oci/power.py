"""What hibernate needs from OCI's Compute API: whether a stopped shape is billed, a
node's instance, and its power actions (``ComputeClient.list_shapes``, ``get_instance``,
``instance_action``).

Mixed into :class:`nimble_oke.cloud.oci.provider.OciProvider` (same clients, same error
translation). Facts the code relies on (h22 notes, "Decisions"):

- InstanceAction returns the Instance (STOPPING / STARTING) and no work request: callers
  poll GetInstance (as the SDK's ``instance_action_and_wait_for_state`` does).
- An action on an instance in a transitional state is 409 ``Conflict`` ("currently being
  modified"): retried. A wrong target state is 409 ``IncorrectState``: never retried here
  (the caller reads the state first), unlike the provider's default strategy.
- START without a host is 500 "Out of host capacity.": never retried here (the fallback
  ladder decides), translated to CapacityError.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import oci

from nimble_oke.cloud.oci import errors as oe
from nimble_oke.errors import ProviderError
from nimble_oke.polling import poll_until
from nimble_oke.ports import InstanceInfo

POWER_ACTIONS = ("SOFTSTOP", "STOP", "START")


def power_retry_strategy(*, fast: bool = False) -> Any:
    """Retries throttling and "currently being modified" (409 Conflict), never a wrong
    state nor the 500 of a START without capacity. ``fast``: millisecond sleeps (sim)."""
    return oci.retry.RetryStrategyBuilder(
        max_attempts_check=True,
        max_attempts=6,
        total_elapsed_time_check=True,
        total_elapsed_time_seconds=30 if fast else 300,
        retry_max_wait_between_calls_seconds=0.05 if fast else 30,
        retry_base_sleep_time_seconds=0.01 if fast else 1,
        service_error_check=True,
        service_error_retry_on_any_5xx=False,
        service_error_retry_config={429: [], 409: ["Conflict"], 502: [], 503: []},
    ).get_retry_strategy()


class PowerMixin:
    """Hibernate's Compute calls (mixed into :class:`OciProvider`)."""

    compute: Any
    compartment_id: str
    poll_s: float
    power_retry: Any
    _sleep: Callable[[float], None]

    def _call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def shape_billed_when_stopped(
        self, shape: str, availability_domain: str | None = None
    ) -> bool | None:
        """``Shape.is_billed_for_stopped_instance`` from ListShapes (None: not listed)."""
        kwargs = {"availability_domain": availability_domain} if availability_domain else {}
        shapes = self._call(
            "listing compute shapes",
            oci.pagination.list_call_get_all_results,
            self.compute.list_shapes,
            self.compartment_id,
            **kwargs,
        ).data
        for row in shapes:
            if row.shape == shape:
                flag = getattr(row, "is_billed_for_stopped_instance", None)
                return None if flag is None else bool(flag)
        return None

    def instance_info(self, instance_id: str) -> InstanceInfo | None:
        try:
            data = self.compute.get_instance(instance_id).data
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return None
            oe.translate(exc, "reading a node's instance")
        if str(data.lifecycle_state) == "TERMINATED":
            return None
        return InstanceInfo(
            str(data.id), str(data.lifecycle_state), str(data.shape), str(data.availability_domain)
        )

    def instance_action(self, instance_id: str, action: str, *, retry_token: str) -> str:
        if action not in POWER_ACTIONS:
            raise ValueError(f"power action {action!r}: allowed {', '.join(POWER_ACTIONS)}")
        verb = {"SOFTSTOP": "stopping", "STOP": "powering off", "START": "starting"}[action]
        data = self._call(
            f"{verb} the node's instance {instance_id}",
            self.compute.instance_action,
            instance_id,
            action,
            opc_retry_token=retry_token,
            retry_strategy=self.power_retry,
        ).data
        return str(data.lifecycle_state)

    def await_instance_state(
        self, instance_id: str, states: Collection[str], *, timeout_s: float
    ) -> str:
        last: list[str] = ["unknown"]

        def reached() -> str | None:
            info = self.instance_info(instance_id)
            if info is None:
                raise ProviderError(f"instance {instance_id} is gone (terminated)")
            last[0] = info.state
            return info.state if info.state in states else None

        return poll_until(
            reached,
            timeout_s=timeout_s,
            interval_s=self.poll_s,
            sleep=self._sleep,
            on_timeout=lambda: ProviderError(
                f"instance {instance_id} is still {last[0]} after {timeout_s:.0f} s "
                f"(waiting for {' or '.join(sorted(states))})"
            ),
        )
