"""The emulator through the official openai client and raw HTTP (aiohttp)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import openai
import pytest
from helpers_nim import base_url, running, settings_for, with_openai
from openai import AsyncOpenAI

from nimble_oke.sim.nim.text import count_tokens

pytestmark = pytest.mark.anyio
MODEL = "nimble/smollm2-135m-instruct"


async def test_models_chat_and_completions_non_streaming(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path)) as (_emu, client):
        models = await client.models.list()
        assert [m.id for m in models.data] == [MODEL]
        chat = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello"}], max_tokens=12
        )
        text = chat.choices[0].message.content or ""
        assert chat.choices[0].message.role == "assistant"
        assert chat.usage is not None
        assert chat.usage.completion_tokens == count_tokens(text) <= 12
        assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens
        comp = await client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=7)
        assert comp.usage is not None and comp.usage.prompt_tokens == 4
        assert comp.usage.completion_tokens == count_tokens(comp.choices[0].text) == 7
        assert comp.choices[0].finish_reason == "length"


async def test_chat_streaming_role_chunk_content_usage_and_done(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path)) as (emu, client):
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Count"}],
            max_tokens=9,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"nvext": {"ignore_eos": True}},
        )
        chunks = [c async for c in stream]
        assert chunks[0].choices[0].delta.role == "assistant"
        assert not chunks[0].choices[0].delta.content
        contents = [c.choices[0].delta.content for c in chunks[1:] if c.choices]
        assert len(contents) == 9
        assert chunks[-2].choices[0].finish_reason == "length"
        usage = chunks[-1].usage
        assert usage is not None and chunks[-1].choices == []
        assert usage.completion_tokens == 9 == count_tokens("".join(c or "" for c in contents))
        # The raw stream ends with [DONE]; the server's ground truth records the first token.
        record = emu.records[-1]
        assert record.stream and record.completion_tokens == 9
        assert record.ttft_ns is not None and record.ttft_ns > 0


async def test_raw_sse_completion_stream_ends_with_done(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path)) as emu, aiohttp.ClientSession() as http:
        body = {"model": MODEL, "prompt": "Hi", "max_tokens": 3, "stream": True}
        async with http.post(base_url(emu) + "/v1/completions", json=body) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            raw = (await resp.read()).decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert len(events) == 4  # three tokens (completions have no role chunk) + [DONE]


async def test_temperature_zero_is_deterministic_and_sampling_is_not(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):

        async def ask(temperature: float, content: str = "Explain KV caches") -> str:
            r = await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": content}],
                max_tokens=30,
                temperature=temperature,
            )
            return r.choices[0].message.content or ""

        assert await ask(0) == await ask(0)
        assert await ask(0) != await ask(0, "Explain something else")
        samples = {await ask(1.0) for _ in range(4)}
        assert len(samples) > 1


async def test_max_tokens_and_exact_lengths_with_min_tokens(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):
        r = await client.completions.create(
            model=MODEL, prompt="x", max_tokens=200, extra_body={"min_tokens": 200}
        )
        assert r.usage is not None and r.usage.completion_tokens == 200
        lengths = set()
        for i in range(8):
            r = await client.completions.create(model=MODEL, prompt=f"p{i}", max_tokens=500)
            assert r.usage is not None
            lengths.add(r.usage.completion_tokens)
            assert r.choices[0].finish_reason == "stop"
        assert len(lengths) > 1  # natural (EOS) lengths vary with the prompt


async def test_max_completion_tokens_accepted_or_rejected_by_flag(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):
        r = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            max_completion_tokens=5,
            extra_body={"ignore_eos": True},
        )
        assert r.usage is not None and r.usage.completion_tokens == 5
    strict = settings_for(tmp_path, zero_delay=True, reject_max_completion_tokens=True)
    async with with_openai(strict) as (_emu, client):
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                max_completion_tokens=5,
            )
        assert info.value.status_code == 400
        assert "max_tokens" in str(info.value)
        ok = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
        assert ok.choices[0].message.content


@pytest.mark.parametrize("image_tag", ["2.0.12", "1.8.0"])
async def test_openai_shaped_errors(tmp_path: Path, image_tag: str) -> None:
    """NIM 2.x (vLLM >= 0.10.1) nests the error; NIM 1.x answers the flat vLLM body."""
    image = f"nvcr.io/nim/nimble/smollm2-135m-instruct:{image_tag}"
    v2 = image_tag.startswith("2")

    def error_of(body: dict) -> dict:
        if v2:
            assert set(body) == {"error"}
            return body["error"]
        assert body["object"] == "error"
        return body

    async with (
        running(settings_for(tmp_path, zero_delay=True, image=image)) as emu,
        aiohttp.ClientSession() as http,
    ):
        url = base_url(emu) + "/v1/chat/completions"
        async with http.post(
            url, data=b"{not json", headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400
            err = error_of(await r.json())
            assert err["code"] == 400 and err["message"] and err["type"] == "BadRequestError"
        async with http.post(url, json={"model": MODEL, "messages": "nope"}) as r:
            assert r.status == 400 and error_of(await r.json())["param"] == "messages"
        async with http.post(
            url, json={"model": "other/model", "messages": [{"role": "user", "content": "x"}]}
        ) as r:
            assert r.status == 404 and error_of(await r.json())["type"] == "NotFoundError"
        big = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6}
        async with http.post(url, json=big) as r:
            assert (
                r.status == 400 and "maximum context length" in error_of(await r.json())["message"]
            )
        # Deeply nested JSON is a client error, never a 500.
        deep = b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        async with http.post(url, data=deep, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400, await r.text()
            assert "recursion" in error_of(await r.json())["message"]
    async with AsyncOpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="none", max_retries=0
    ) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.models.list()
