"""The Prometheus text parser and NIM/vLLM metric-name detection."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nimble_oke.nim.prometheus import MetricSet, PrometheusParseError, parse_prometheus

VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta/llama-3.1-8b-instruct"} 3.0
vllm:num_requests_waiting{engine="0",model_name="meta/llama-3.1-8b-instruct"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="meta/llama-3.1-8b-instruct"} 0.125
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 2.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 4.0
vllm:time_to_first_token_seconds_count{model_name="m"} 4.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 0.5
vllm:request_success_total{finished_reason="stop",model_name="m"} 7.0 1712345678000
"""


def test_vllm_spellings_are_detected() -> None:
    metrics = MetricSet.parse(VLLM_TEXT)
    assert metrics.flavour == "vllm"
    assert metrics.missing() == []
    assert metrics.resolve("gpu_cache_usage_perc") == "vllm:kv_cache_usage_perc"
    assert metrics.value("gpu_cache_usage_perc") == 0.125
    assert metrics.value("num_requests_running") == 3
    assert metrics.count("time_to_first_token_seconds") == 4
    assert metrics.value("time_to_first_token_seconds") == 0.5
    assert metrics.value("request_finish_total", finished_reason="stop") == 7
    assert metrics.value("prompt_tokens_total") is None


def test_labels_with_escapes_and_special_values() -> None:
    text = 'a{path="C:\\\\x",msg="say \\"hi\\"\\n",le="+Inf"} +Inf\nb NaN\nc -Inf\n'
    samples = parse_prometheus(text)
    assert samples[0].labels == {"path": "C:\\x", "msg": 'say "hi"\n', "le": "+Inf"}
    assert samples[0].value == math.inf
    assert math.isnan(samples[1].value) and samples[2].value == -math.inf


@pytest.mark.parametrize(
    "bad", ["metric{le=1} 2", "metric 1 2 3", "1metric 4", 'm{a="x"} notanumber']
)
def test_malformed_lines_raise(bad: str) -> None:
    with pytest.raises(PrometheusParseError):
        parse_prometheus(bad)


_label_values = st.text(st.characters(codec="utf-8"), max_size=12)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), _label_values, max_size=4
    ),
    st.floats(allow_nan=False),
)
def test_round_trip_of_rendered_samples(labels: dict[str, str], value: float) -> None:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    shown = {math.inf: "+Inf", -math.inf: "-Inf"}.get(value, repr(value))
    rendered = ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())
    text = f"metric_name{{{rendered}}} {shown}\n" if labels else f"metric_name {shown}\n"
    [sample] = parse_prometheus(text)
    assert sample.labels == labels and sample.value == value
