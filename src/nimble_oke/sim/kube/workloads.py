"""All workload controllers, run in dependency order on every controller pass."""

from __future__ import annotations

from .cluster import Cluster
from .deployments import DeploymentController, ReplicaSetController
from .isolation import Isolated
from .jobs import CronJobController, JobController
from .statefulsets import DaemonSetController, StatefulSetController
from .workload_base import WorkloadController, is_ready, template_hash


class Workloads:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.controllers: list[WorkloadController] = [
            DeploymentController(cluster),
            ReplicaSetController(cluster),
            StatefulSetController(cluster),
            DaemonSetController(cluster),
            CronJobController(cluster),
            JobController(cluster),
        ]
        self.isolated = {c: Isolated(type(c).__name__) for c in self.controllers}

    def reconcile(self) -> None:
        for controller in self.controllers:
            for obj in self.c.store.list(controller.kind):
                if not obj["metadata"].get("deletionTimestamp"):
                    self.isolated[controller].run(obj, controller.sync)


__all__ = ["Workloads", "is_ready", "template_hash"]
