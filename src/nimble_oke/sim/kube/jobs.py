"""Jobs (pods to completion, back-off limit, deadline, TTL) and CronJobs (schedules)."""

from __future__ import annotations

import copy

from .cluster import CRONJOBS, JOBS, PODS, Cluster
from .cron import CronSchedule
from .store import Obj, parse_rfc3339, rfc3339
from .workload_base import WorkloadController, is_active, is_ready


class JobController(WorkloadController):
    kind = JOBS

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._job_failures: dict[str, tuple[int, float]] = {}

    def sync(self, job: Obj) -> None:
        meta, spec = job["metadata"], job["spec"]
        status = job.get("status") or {}
        conditions = status.get("conditions") or []
        finished = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in conditions
        )
        pods = self.owned(PODS, job)
        active = [p for p in pods if is_active(p)]
        if finished:
            for p in active:
                self.delete_pod(job, p)
            self._ttl(job, status)
            return
        if spec.get("suspend"):
            return
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        failed += sum(
            int(cs.get("restartCount", 0))
            for p in pods
            for cs in (p.get("status") or {}).get("containerStatuses") or []
        )
        completions = int(spec.get("completions", 1))
        now_iso = self.c.store.now_iso()
        start = status.get("startTime") or now_iso
        update: Obj = {"startTime": start}
        deadline = spec.get("activeDeadlineSeconds")
        if failed > int(spec.get("backoffLimit", 6)):
            self._finish_job(
                job,
                active,
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                update,
            )
        elif succeeded >= completions:
            update["completionTime"] = now_iso
            self._finish_job(job, active, "Complete", "", "", update)
        elif deadline is not None and self._past(
            job, "deadline", parse_rfc3339(start) + float(deadline)
        ):
            self._finish_job(
                job,
                active,
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                update,
            )
        else:
            want = min(int(spec.get("parallelism", 1)), completions - succeeded)
            if len(active) < want and self._job_backoff_over(job, failed):
                for _ in range(want - len(active)):
                    active.append(
                        self.new_pod(
                            job,
                            spec["template"],
                            extra_labels={
                                "batch.kubernetes.io/controller-uid": meta["uid"],
                                "batch.kubernetes.io/job-name": meta["name"],
                                "controller-uid": meta["uid"],
                                "job-name": meta["name"],
                            },
                        )
                    )
        update.update(
            {
                "active": len(active) or None,
                "succeeded": succeeded or None,
                "failed": failed or None,
                "ready": sum(1 for p in active if is_ready(p)),
            }
        )
        self.write_status(JOBS, job, update)

    def _past(self, job: Obj, what: str, wall: float) -> bool:
        """Has simulated Unix time ``wall`` come? If not, wake the controllers then."""
        if self.c.clock.wall() >= wall:
            return True
        self.c.wake_at(f"job/{job['metadata']['uid']}/{what}", self.c.sim_time_of(wall))
        return False

    def _job_backoff_over(self, job: Obj, failed: int) -> bool:
        """Replacement pods after failures wait 10 s, 20 s, ... up to 6 min (Job back-off)."""
        uid = job["metadata"]["uid"]
        now = self.c.clock.now()
        seen = self._job_failures.get(uid)
        if failed == 0:
            return True
        if seen is None or seen[0] != failed:
            self._job_failures[uid] = (failed, now)
            seen = (failed, now)
        delay = min(10.0 * 2.0 ** (failed - 1), 360.0)
        if now - seen[1] >= delay:
            return True
        self.c.wake_at(f"job/{uid}/backoff", seen[1] + delay)
        return False

    def _finish_job(
        self, job: Obj, active: list[Obj], kind: str, reason: str, message: str, update: Obj
    ) -> None:
        for p in active:
            self.delete_pod(job, p)
        now = self.c.store.now_iso()
        conds = []
        if kind == "Complete":
            for t in ("SuccessCriteriaMet", "Complete"):
                conds.append(
                    {
                        "type": t,
                        "status": "True",
                        "lastProbeTime": now,
                        "lastTransitionTime": now,
                        **(
                            {
                                "reason": "CompletionsReached",
                                "message": "Reached expected number of succeeded pods",
                            }
                        ),
                    }
                )
            self.c.events.record(job, "Completed", "Job completed", component="job-controller")
        else:
            for t in ("FailureTarget", "Failed"):
                conds.append(
                    {
                        "type": t,
                        "status": "True",
                        "lastProbeTime": now,
                        "lastTransitionTime": now,
                        "reason": reason,
                        "message": message,
                    }
                )
            self.c.events.record(job, reason, message, type_="Warning", component="job-controller")
        update["conditions"] = conds
        update["active"] = None
        self.write_status(JOBS, job, update)

    def _ttl(self, job: Obj, status: Obj) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        done = status.get("completionTime") or next(
            (
                c["lastTransitionTime"]
                for c in status.get("conditions") or []
                if c.get("type") == "Failed"
            ),
            None,
        )
        if done and self._past(job, "ttl", parse_rfc3339(done) + float(ttl)):
            self.c.api.delete(
                JOBS,
                job["metadata"]["namespace"],
                job["metadata"]["name"],
                propagation="Background",
            )


class CronJobController(WorkloadController):
    kind = CRONJOBS

    def sync(self, cj: Obj) -> None:
        meta, spec = cj["metadata"], cj["spec"]
        ns = meta["namespace"]
        status = cj.get("status") or {}
        jobs = sorted(self.owned(JOBS, cj), key=lambda j: j["metadata"]["creationTimestamp"])
        active = [j for j in jobs if not _job_finished(j)]
        self._trim_history(cj, jobs)
        key = f"cronjob/{meta['uid']}"
        if spec.get("suspend"):
            self.c.wake_at(key, None)
            return
        try:
            schedule = CronSchedule(spec["schedule"])
        except ValueError as exc:
            self.c.wake_at(key, None)
            self.c.events.record(
                cj, "UnparseableSchedule", str(exc), type_="Warning", component="cronjob-controller"
            )
            return
        policy = spec.get("concurrencyPolicy", "Allow")
        last = status.get("lastScheduleTime") or meta["creationTimestamp"]
        now = self.c.clock.wall()
        self._next_run(key, schedule, now, blocked=bool(active) and policy == "Forbid")
        due = schedule.latest_between(parse_rfc3339(last), now)
        if due is None:
            return
        if active and policy == "Forbid":
            return
        if active and policy == "Replace":
            for j in active:
                self.c.api.delete(JOBS, ns, j["metadata"]["name"], propagation="Background")
        job_name = f"{meta['name']}-{int(due // 60)}"
        template = copy.deepcopy(spec.get("jobTemplate") or {})
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name,
                "namespace": ns,
                "labels": (template.get("metadata") or {}).get("labels") or {},
                "ownerReferences": [self.c.owner_ref(cj)],
            },
            "spec": template.get("spec") or {},
        }
        if self.c.store.get(JOBS, ns, job_name) is None:
            self.c.api.create(JOBS, ns, job, manager="cronjob-controller")
            self.c.events.record(
                cj, "SuccessfulCreate", f"Created job {job_name}", component="cronjob-controller"
            )
        self.write_status(CRONJOBS, cj, {"lastScheduleTime": rfc3339(due)})

    def _next_run(self, key: str, schedule: CronSchedule, now: float, *, blocked: bool) -> None:
        """Wake the controllers at the next scheduled minute, so that every run happens at
        its time even when the clock jumps (``nimble sim advance`` stops at each). With
        ``Forbid`` and a Job still running there is nothing to wake for: the Job's end
        wakes the controllers, and a run missed meanwhile starts then."""
        if blocked:
            self.c.wake_at(key, None)
            return
        upcoming = schedule.next_after(now)
        self.c.wake_at(key, None if upcoming is None else self.c.sim_time_of(upcoming))

    def _trim_history(self, cj: Obj, jobs: list[Obj]) -> None:
        spec = cj["spec"]
        for kind, limit in (
            ("Complete", spec.get("successfulJobsHistoryLimit", 3)),
            ("Failed", spec.get("failedJobsHistoryLimit", 1)),
        ):
            done = [j for j in jobs if _job_finished(j) == kind]
            for j in done[: max(0, len(done) - int(limit))]:
                self.c.api.delete(
                    JOBS,
                    j["metadata"]["namespace"],
                    j["metadata"]["name"],
                    propagation="Background",
                )
        successes = [j for j in jobs if _job_finished(j) == "Complete"]
        if successes:
            last = (successes[-1].get("status") or {}).get("completionTime")
            if last:
                self.write_status(CRONJOBS, cj, {"lastSuccessfulTime": last})


def _job_finished(job: Obj) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None
