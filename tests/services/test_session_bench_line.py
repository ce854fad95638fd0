"""The one line `up` prints for its built-in benchmark names a FAILED outcome (too many
errors), not only the validity verdict, so a run whose endpoint died mid-way never reads as
a clean VALID."""

from __future__ import annotations

from nimble_oke.services.session_bench import bench_line


def _summary(outcome: str, validity: str, errors: int) -> dict[str, object]:
    return {
        "config": {"concurrency": 8},
        "time_to_first_token": {"p50": 41.6},
        "inter_token_latency": {"p50": 9.04},
        "output_token_throughput": {"avg": 812.0},
        "errors": {"count": errors},
        "error_count": errors,
        "validity": {"status": validity},
        "outcome": {"status": outcome},
    }


def test_a_passed_run_shows_its_figures_and_validity() -> None:
    line = bench_line(_summary("PASSED", "VALID", 0))
    assert line == "concurrency 8: TTFT p50 42 ms · ITL p50 9.0 ms · 812 tok/s · 0 errors · VALID"


def test_a_failed_run_says_failed_before_its_validity() -> None:
    line = bench_line(_summary("FAILED", "VALID", 168))
    assert line.endswith("168 errors · FAILED · VALID")
