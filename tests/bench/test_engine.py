"""Load modes, request shapes and failures as data, against the exact SSE server."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from nimble_oke.bench import BenchConfig, analyze, run_async, summarize
from nimble_oke.bench.engine import closed_loop
from nimble_oke.bench.http1 import Load, Origin, request_bytes
from nimble_oke.bench.records import RequestStore
from nimble_oke.errors import ConfigError, EndpointError

from .conftest import arun
from .truth_server import TruthServer, TruthSettings


def test_model_defaults_to_first_listed_and_fallback_to_max_tokens() -> None:
    async def scenario() -> None:
        settings = TruthSettings(ttft_s=0.001, itl_s=0.0005, reject_max_completion_tokens=True)
        async with TruthServer(settings) as srv:
            result = await run_async(BenchConfig(endpoint=srv.url, requests=5, output_tokens=4))
            assert result.model == "truth/model-a"
            assert result.token_param == "max_tokens"
            assert set(srv.truth.params_seen) == {"max_tokens"}
            assert summarize(result)["errors"]["count"] == 0
            assert srv.truth.bodies[0]["stream_options"] == {"include_usage": True}
            # vLLM's sampling parameters (NIM 2.x ignores nvext)
            assert srv.truth.bodies[0]["ignore_eos"] is True
            assert srv.truth.bodies[0]["min_tokens"] == 4
            assert "nvext" not in srv.truth.bodies[0]

    arun(scenario())


def test_nvext_when_the_server_refuses_top_level_ignore_eos() -> None:
    """A NIM 1.x-like server that refuses vLLM's top-level fields gets them under nvext."""

    async def scenario() -> None:
        settings = TruthSettings(ttft_s=0.001, itl_s=0.0005, reject_top_level_sampling=True)
        async with TruthServer(settings) as srv:
            result = await run_async(BenchConfig(endpoint=srv.url, requests=3, output_tokens=4))
            assert summarize(result)["errors"]["count"] == 0
            assert srv.truth.bodies[0]["nvext"] == {"ignore_eos": True, "min_tokens": 4}
            assert "ignore_eos" not in srv.truth.bodies[0]

    arun(scenario())


def test_max_completion_tokens_used_when_accepted() -> None:
    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.001, itl_s=0.0005)) as srv:
            result = await run_async(BenchConfig(endpoint=srv.url, requests=3, output_tokens=2))
            assert result.token_param == "max_completion_tokens"
            assert set(srv.truth.params_seen) == {"max_completion_tokens"}

    arun(scenario())


def test_http_5xx_counted_by_type() -> None:
    async def scenario() -> None:
        settings = TruthSettings(ttft_s=0.001, itl_s=0.0005, fail_every=4, fail_status=503)
        async with TruthServer(settings) as srv:
            result = await run_async(
                BenchConfig(endpoint=srv.url, concurrency=2, requests=20, output_tokens=3)
            )
            errors = summarize(result)["errors"]
            assert errors["by_type"] == {"http_5xx": 5}
            assert errors["rate"] == pytest.approx(0.25)
            assert "503" in errors["examples"]["http_5xx"]

    arun(scenario())


def test_timeouts_counted_by_type() -> None:
    async def scenario() -> None:
        settings = TruthSettings(ttft_s=0.001, itl_s=0.0005, hang_every=3)
        async with TruthServer(settings) as srv:
            result = await run_async(
                BenchConfig(
                    endpoint=srv.url, concurrency=3, requests=6, output_tokens=2, timeout_s=0.3
                )
            )
            s = summarize(result)
            assert s["errors"]["by_type"] == {"timeout": 2}
            assert s["request_count"]["avg"] == 4

    arun(scenario())


def test_connection_refused_is_data_not_exception() -> None:
    async def scenario() -> None:
        # a free port nobody listens on: every measured request is refused
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        origin = Origin.from_url(f"http://127.0.0.1:{dead}/v1/chat/completions")
        load = Load(origin, [request_bytes(origin, {}, b"{}")], RequestStore(4), timeout_s=5)
        closed_loop(load, 2, 4, None)
        await load.drained()
        assert [int(e) for e in load.store.error[:4]] == [4, 4, 4, 4]
        assert load.failed == 4
        assert f"connection refused at 127.0.0.1:{dead}" in load.store.messages[0]

    arun(scenario())


def test_unreachable_endpoint_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with pytest.raises(EndpointError, match="cannot reach"):
        arun(run_async(BenchConfig(endpoint=f"http://127.0.0.1:{dead}", requests=1)))


def test_duration_bounds_the_closed_loop() -> None:
    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.005, itl_s=0.001)) as srv:
            t0 = time.monotonic()
            result = await run_async(
                BenchConfig(
                    endpoint=srv.url, concurrency=2, requests=None, duration_s=0.4, output_tokens=4
                )
            )
            elapsed = time.monotonic() - t0
            assert elapsed < 1.5
            assert 20 < result.count < 200
            assert summarize(result)["errors"]["count"] == 0

    arun(scenario())


def test_open_loop_poisson_records_intended_send_times() -> None:
    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.01, itl_s=0.001)) as srv:
            result = await run_async(
                BenchConfig(
                    endpoint=srv.url,
                    rate=100.0,
                    arrival="poisson",
                    requests=60,
                    output_tokens=4,
                    seed=3,
                )
            )
            t = analyze(result)
            lag = t.send_ms - t.intended_ms
            assert np.all(lag >= 0)
            assert float(np.median(lag)) < 3.0
            # latency from the intended send is never shorter than from the actual send
            assert np.all(t.ttft_intended_ms >= t.ttft_ms)
            s = summarize(result)
            assert s["validity"]["measurements"]["target_rate"] == 100.0
            assert s["errors"]["count"] == 0

    arun(scenario())


def test_completions_api_and_warmup_excluded() -> None:
    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.002, itl_s=0.001)) as srv:
            result = await run_async(
                BenchConfig(
                    endpoint=srv.url + "/v1",
                    api="completions",
                    requests=5,
                    warmup=3,
                    output_tokens=3,
                )
            )
            assert result.count == 5
            assert len(srv.truth.received_ns) == 8  # 3 warm-up + 5 measured
            assert summarize(result)["output_sequence_length"]["avg"] == 3

    arun(scenario())


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"concurrency": 0}, "--concurrency"),
        ({"rate": -1.0}, "--rate"),
        ({"requests": None}, "--requests"),
        ({"endpoint": "localhost:8000"}, "--endpoint"),
        ({"arrival": "bursty"}, "--arrival"),
        ({"output_tokens": 0}, "--output-tokens"),
    ],
)
def test_bad_config_names_the_flag(kwargs: dict[str, object], flag: str) -> None:
    base: dict[str, object] = {"endpoint": "http://127.0.0.1:1"}
    base.update(kwargs)
    with pytest.raises(ConfigError, match=flag):
        BenchConfig(**base)  # type: ignore[arg-type]


def test_sse_error_event_is_a_stream_error() -> None:
    async def scenario() -> None:
        settings = TruthSettings(ttft_s=0.001, itl_s=0.0005, error_event_every=3)
        async with TruthServer(settings) as srv:
            result = await run_async(BenchConfig(endpoint=srv.url, requests=9, output_tokens=4))
            errors = summarize(result)["errors"]
            assert errors["by_type"] == {"stream_error": 3}
            assert "engine died" in errors["examples"]["stream_error"]

    arun(scenario())


def test_without_usage_tokens_come_from_chunks() -> None:
    async def scenario() -> None:
        settings = TruthSettings(ttft_s=0.001, itl_s=0.0005, usage=False)
        async with TruthServer(settings) as srv:
            result = await run_async(BenchConfig(endpoint=srv.url, requests=4, output_tokens=5))
            s = summarize(result)
            assert s["token_accounting"]["source"] == "chunks"
            assert s["output_sequence_length"]["avg"] == 5
            assert s["input_sequence_length"]["avg"] is None  # unknown without usage

    arun(scenario())


def test_long_sse_line_beyond_64k_and_bearer_token() -> None:
    """One 300 KB SSE event (aiohttp's default line buffer is 64 KiB) and an API key that
    reaches the server as a bearer token."""

    async def scenario() -> None:
        settings = TruthSettings(ttft_s=0.001, itl_s=0.0005, first_chunk_padding=300_000)
        async with TruthServer(settings) as srv:
            result = await run_async(
                BenchConfig(endpoint=srv.url, requests=3, output_tokens=4, api_key="sk-test-123")
            )
            s = summarize(result)
            assert s["errors"]["count"] == 0
            assert s["output_sequence_length"]["avg"] == 4
            assert set(srv.truth.authorization) == {"Bearer sk-test-123"}
            assert "sk-test-123" not in repr(result.config)
            assert "api_key" not in s["config"]

    arun(scenario())
