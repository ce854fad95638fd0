"""The test helper that reads metric names out of PromQL must itself be right."""

from __future__ import annotations

import pytest

from .promql import metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum(num_requests_waiting)", {"num_requests_waiting"}),
        (
            'histogram_quantile(0.95, sum by (le, service) (rate(time_to_first_token_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])))',
            {"time_to_first_token_seconds_bucket"},
        ),
        (
            "sum(nimble_oke:gpu_cost_usd_per_hour) / clamp_min(x_total * 3600, 1) * 1e6",
            {"nimble_oke:gpu_cost_usd_per_hour", "x_total"},
        ),
        ('a{l="b or c"} and on (pod) group_left (x) b', {"a", "b"}),
        ("deriv(sum(q)[10m:1m]) > 0 offset 5m", {"q"}),
        (
            "avg by (Hostname) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[30m])) < 5",
            {"DCGM_FI_DEV_GPU_UTIL"},
        ),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
