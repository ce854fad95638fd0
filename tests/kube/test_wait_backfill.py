"""How `wait` names a pod's phases (kube/wait.py): init containers that fill the cache, and
phases a poll steps over, rebuilt from NIM's log (``backfill``) — the
cold-start ledger and ``downloaded`` must not depend on how often the wait polls."""

from __future__ import annotations

import pytest
from lightkube.resources.core_v1 import Pod

from nimble_oke.kube.wait import (
    backfill,
    classify,
    container_phase,
    log_marks,
    log_time,
    wait_ready,
)

from .conftest import NAMESPACE, SELECTOR, Deployer

COLD_LOG = [
    "INFO 2026-11-27 13:00:00.000 nimutils.py:42] NIM emulator starting: model m",
    "INFO 2026-11-27 13:00:01.000 ngc_injector.py:152] Selected profile: vllm-bf16-tp1",
    "INFO 2026-11-27 13:00:02.500 ngc_download.py:61] Downloading 6 files (14.96 GB) to /c",
    "INFO 2026-11-27 13:00:30.000 ngc_download.py:88] Downloading model files:  50% (7 GB)",
    "INFO 2026-11-27 13:01:02.500 ngc_download.py:120] Model download complete",
    "INFO 2026-11-27 13:01:02.600 model_runner.py:1008] Loading model weights (14.96 GB)",
    "INFO 2026-11-27 13:01:12.500 server.py:82] Application startup complete.",
    "a line some library printed without the prefix",
    "INFO 2026-11-27 13:01:12.600 server.py:214] Uvicorn running on http://0.0.0.0:8000",
]


def test_log_lines_carry_utc_times_and_phase_marks() -> None:
    assert log_time(COLD_LOG[0]) == 1_795_784_400.0  # 2026-11-27T13:00:00Z
    assert log_time("no prefix here") is None
    marks, last = log_marks(COLD_LOG)
    start = log_time(COLD_LOG[0]) or 0.0
    assert {p: round(t - start, 1) for p, t in marks.items()} == {
        "model download": 2.5,
        "model load": 62.5,
        "ready": 72.5,
    }
    assert last is not None and round(last - start, 1) == 72.6


def test_a_download_and_load_between_two_polls_are_rebuilt_from_the_log() -> None:
    spent, stepped_over, already = backfill("image pull", "ready", 200.0, COLD_LOG)
    assert [(p, round(s, 1)) for p, s in stepped_over] == [
        ("model download", 60.0),
        ("model load", 10.0),
    ]
    assert round(already, 1) == 0.1
    assert round(spent, 1) == 129.9  # what is left of the interval stays with the pull


def test_a_warm_start_is_not_given_a_download_it_never_logged() -> None:
    warm = [line for line in COLD_LOG if "ownload" not in line]
    spent, stepped_over, already = backfill("volume attach", "ready", 40.0, warm)
    assert [p for p, _s in stepped_over] == ["model load"]
    assert round(sum(s for _p, s in stepped_over) + already + spent, 6) == 40.0


def test_phases_seen_by_the_polls_are_left_alone() -> None:
    assert backfill("image pull", "model download", 90.0, COLD_LOG) == (90.0, [], 0.0)
    assert backfill("model download", "model load", 60.0, COLD_LOG) == (60.0, [], 0.0)


def test_a_log_clock_ahead_of_ours_never_books_more_than_the_interval() -> None:
    spent, stepped_over, already = backfill("image pull", "ready", 5.0, COLD_LOG)
    assert spent >= 0.0
    assert round(sum(s for _p, s in stepped_over) + already + spent, 6) == 5.0


def test_a_wait_that_polls_past_the_whole_container_start_still_books_the_download(
    deployer: Deployer,
) -> None:
    deployer.deploy()
    # one poll before the pod starts, the next long after NIM is ready (600× time scale:
    # 4 real seconds are 40 simulated minutes)
    result = wait_ready(deployer.client, NAMESPACE, SELECTOR, timeout_s=60, poll_s=4.0)
    names = [p for p, _s in result.phases]
    assert names[-3:] == ["model download", "model load", "ready"], result.phases
    assert result.downloaded
    seconds = dict(result.phases)
    assert seconds["model download"] > 0 and seconds["model load"] > 0


def test_a_wait_whose_first_poll_finds_the_pod_ready_still_books_download_and_load(
    deployer: Deployer,
) -> None:
    """A loaded machine (or a fast simulated start) may let the pod become Ready before
    wait_ready's first poll: the phases NIM's log shows are booked all the same."""
    deployer.deploy()
    wait_ready(deployer.client, NAMESPACE, SELECTOR, timeout_s=60, poll_s=0.2)
    again = wait_ready(deployer.client, NAMESPACE, SELECTOR, timeout_s=60, poll_s=0.2)
    assert [p for p, _s in again.phases] == ["model download", "model load", "ready"]
    assert again.downloaded


def _pod_with_init_running(init_name: str) -> Pod:
    return Pod.from_dict(
        {
            "metadata": {"name": "nim-0"},
            "status": {
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "initContainerStatuses": [
                    {
                        "name": init_name,
                        "image": "x",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": "2026-11-27T13:00:00Z"}},
                    }
                ],
                "containerStatuses": [
                    {
                        "name": "nim",
                        "image": "y",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "PodInitializing"}},
                    }
                ],
            },
        }
    )


@pytest.mark.parametrize(
    ("init_name", "phase"),
    [("hydrate-cache", "model hydrate"), ("download-to-cache", "model download")],
)
def test_a_running_init_container_is_the_cache_fill(init_name: str, phase: str) -> None:
    """The object-storage hydrate (or ngc mode's download) runs before NIM's container:
    the ledger books it as such, not as image pull."""
    view = classify(None, NAMESPACE, _pod_with_init_running(init_name))
    assert (view.phase, view.detail) == (phase, f"init container {init_name}")


def test_a_download_still_running_is_not_booked_as_stepped_over() -> None:
    """The poll saw the container start before NIM's first progress line: nothing of the
    download is over yet, so nothing is inserted (the next poll sees it running)."""
    started = COLD_LOG[:3]  # "Downloading 6 files …", no progress, no load yet
    assert backfill("image pull", "model load", 30.0, started) == (30.0, [], 0.0)


def test_the_download_begins_at_its_first_line() -> None:
    assert container_phase(COLD_LOG[:3]) == ("model download", "0%")
    assert container_phase(COLD_LOG[:4]) == ("model download", "50%")
    assert container_phase(COLD_LOG[:2]) == ("model load", "starting")
    assert container_phase(COLD_LOG[:6]) == ("model load", "loading weights")
