"""The NIM 2.x request surface of the emulator, driven by the official openai client."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import jsonschema
import openai
import pytest
from helpers_nim import base_url, running, settings_for, with_openai

from nimble_oke.sim.nim.text import count_tokens

pytestmark = pytest.mark.anyio
MODEL = "nimble/smollm2-135m-instruct"
ASK = [{"role": "user", "content": "Tell me about the cluster"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
        },
    },
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city"],
        },
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


async def test_stop_sequences_end_the_text(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):
        reply = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=60, stop=[" "], temperature=0
        )
        choice = reply.choices[0]
        assert " " not in (choice.message.content or "")
        assert choice.finish_reason == "stop"
        assert choice.model_dump()["stop_reason"] == " "
        free = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=60, temperature=0
        )
        assert (free.choices[0].message.content or "").startswith(choice.message.content or "")
        # The stop string kept with include_stop_str_in_output, counted tokens include it.
        kept = await client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=60,
            stop=[" "],
            temperature=0,
            extra_body={"include_stop_str_in_output": True},
        )
        assert (kept.choices[0].message.content or "").endswith(" ")
        assert reply.usage is not None and reply.usage.completion_tokens >= 1


async def test_stop_token_ids_and_min_tokens(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (emu, client):
        base = await client.completions.create(
            model=MODEL, prompt="hello", max_tokens=30, temperature=0, extra_body={"min_tokens": 30}
        )
        assert base.usage is not None and base.usage.completion_tokens == 30
        ids = emu.tokens.ids(base.choices[0].text)
        stopper = ids[5]
        cut = await client.completions.create(
            model=MODEL,
            prompt="hello",
            max_tokens=30,
            temperature=0,
            extra_body={"min_tokens": 3, "stop_token_ids": [stopper]},
        )
        first = ids.index(stopper, 3)
        assert cut.usage is not None and cut.usage.completion_tokens == first + 1
        assert cut.choices[0].finish_reason == "stop"
        assert cut.choices[0].model_dump()["stop_reason"] == stopper
        capped = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_completion_tokens=5, extra_body={"ignore_eos": True}
        )
        assert capped.usage is not None and capped.usage.completion_tokens == 5
        assert capped.choices[0].finish_reason == "length"


async def test_json_object_and_json_schema_parse_and_validate(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):
        obj = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=200, response_format={"type": "json_object"}
        )
        assert isinstance(json.loads(obj.choices[0].message.content or ""), dict)
        schema = await client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=300,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": PERSON, "strict": True},
            },
        )
        jsonschema.validate(json.loads(schema.choices[0].message.content or ""), PERSON)
        via_vllm = await client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=300,
            extra_body={"structured_outputs": {"json": PERSON}},
        )
        jsonschema.validate(json.loads(via_vllm.choices[0].message.content or ""), PERSON)
        choice = await client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=10,
            extra_body={"structured_outputs": {"choice": ["yes", "no"]}},
        )
        assert choice.choices[0].message.content in ("yes", "no")
        # Cut by max_tokens the JSON is truncated, as with vLLM.
        short = await client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=3,
            response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}},
        )
        assert short.choices[0].finish_reason == "length"
        with pytest.raises(json.JSONDecodeError):
            json.loads(short.choices[0].message.content or "")


async def test_guided_json_is_ignored_by_2x_and_honoured_by_1x(tmp_path: Path) -> None:
    legacy = {"guided_json": PERSON, "nvext": {"guided_json": PERSON}}
    async with with_openai(settings_for(tmp_path / "v2", zero_delay=True)) as (emu, client):
        reply = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=40, extra_body=legacy
        )
        with pytest.raises(json.JSONDecodeError):
            json.loads(reply.choices[0].message.content or "")
        assert any("ignored" in line and "guided_json" in line for line in emu.log_lines)
    image = "nvcr.io/nim/nimble/smollm2-135m-instruct:1.8.0"
    v1 = settings_for(tmp_path / "v1", zero_delay=True, image=image)
    async with with_openai(v1) as (_emu, client):
        reply = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=300, extra_body={"nvext": {"guided_json": PERSON}}
        )
        jsonschema.validate(json.loads(reply.choices[0].message.content or ""), PERSON)
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=5, n=2)


async def test_forced_required_and_auto_tool_calls(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):
        named = await client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=200,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        calls = named.choices[0].message.tool_calls or []
        assert len(calls) == 1 and calls[0].function.name == "get_weather"
        jsonschema.validate(
            json.loads(calls[0].function.arguments), WEATHER["function"]["parameters"]
        )
        assert named.choices[0].finish_reason == "stop"  # vLLM: a named choice ends with "stop"
        required = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=200, tools=[WEATHER], tool_choice="required"
        )
        assert required.choices[0].finish_reason == "tool_calls"
        assert (required.choices[0].message.tool_calls or [])[0].function.name == "get_weather"
        auto = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Use get_weather for Paris"}],
            max_tokens=200,
            tools=[WEATHER],
        )
        assert auto.choices[0].finish_reason == "tool_calls"
        assert auto.choices[0].message.content is None
        text = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=20, tools=[WEATHER]
        )
        assert not text.choices[0].message.tool_calls and text.choices[0].message.content
        with pytest.raises(openai.BadRequestError, match="does not match any"):
            await client.chat.completions.create(
                model=MODEL,
                messages=ASK,
                tools=[WEATHER],
                tool_choice={"type": "function", "function": {"name": "nope"}},
            )
        with pytest.raises(openai.BadRequestError, match="`tools` must be set"):
            await client.chat.completions.create(model=MODEL, messages=ASK, tool_choice="required")


async def test_streamed_tool_call_and_logprobs(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path)) as (_emu, client):
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=200,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
        deltas = [d for c in chunks for ch in c.choices for d in ch.delta.tool_calls or []]
        assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
        arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
        jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == count_tokens(
            arguments
        )


async def test_logprobs_chat_and_completions(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):
        chat = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=8, logprobs=True, top_logprobs=3
        )
        content = chat.choices[0].logprobs.content if chat.choices[0].logprobs else None
        assert content is not None and len(content) == chat.usage.completion_tokens  # type: ignore[union-attr]
        assert "".join(e.token for e in content) == chat.choices[0].message.content
        for entry in content:
            assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
            assert entry.top_logprobs[0].token == entry.token
            assert [t.logprob for t in entry.top_logprobs] == sorted(
                (t.logprob for t in entry.top_logprobs), reverse=True
            )
        comp = await client.completions.create(
            model=MODEL, prompt="Once upon", max_tokens=6, logprobs=2, echo=True
        )
        text = comp.choices[0].text
        assert text.startswith("Once upon")
        lp = comp.choices[0].logprobs
        assert lp is not None and len(lp.tokens or []) == 6 and len(lp.top_logprobs or []) == 6
        assert (lp.text_offset or [])[0] == len("Once upon")
        with pytest.raises(openai.BadRequestError, match="greater than max allowed: 20"):
            await client.chat.completions.create(
                model=MODEL, messages=ASK, logprobs=True, top_logprobs=21
            )
        with pytest.raises(openai.BadRequestError, match="`logprobs` must be set"):
            await client.chat.completions.create(model=MODEL, messages=ASK, top_logprobs=2)
        streamed = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=5, logprobs=True, stream=True
        )
        entries = [
            e
            for c in [x async for x in streamed]
            for ch in c.choices
            if ch.logprobs
            for e in ch.logprobs.content or []
        ]
        assert len(entries) == 5


async def test_n_choices_and_seed(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):
        three = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=12, n=3, seed=11, temperature=1.0
        )
        assert [c.index for c in three.choices] == [0, 1, 2]
        texts = [c.message.content for c in three.choices]
        assert len(set(texts)) == 3
        again = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=12, n=3, seed=11, temperature=1.0
        )
        assert [c.message.content for c in again.choices] == texts
        other = await client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=12, seed=12, temperature=1.0
        )
        assert other.choices[0].message.content != texts[0]
        total = sum(count_tokens(t or "") for t in texts)
        assert three.usage is not None and three.usage.completion_tokens == total


async def test_models_retrieve_is_not_served_as_by_nim(tmp_path: Path) -> None:
    """NIM 2.x lists GET /v1/models only (vLLM has no retrieve route; NIM's proxy answers 404
    for unlisted paths), so the openai client's models.retrieve raises NotFoundError."""
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (_emu, client):
        listed = await client.models.list()
        assert [m.id for m in listed.data] == [MODEL]
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve(MODEL)


@pytest.mark.parametrize("tag", ["2.0.12", "1.8.0"])
async def test_version_metadata_and_license(tmp_path: Path, tag: str) -> None:
    image = f"nvcr.io/nim/nimble/smollm2-135m-instruct:{tag}"
    settings = settings_for(tmp_path, image=image, env={"NIM_MODEL_PROFILE": "vllm-bf16-tp1-pp1"})
    async with running(settings) as emu, aiohttp.ClientSession() as http:
        async with http.get(base_url(emu) + "/v1/version") as r:
            assert r.status == 200 and (await r.json()) == {"release": tag, "api": "1.0.0"}
        async with http.get(base_url(emu) + "/v1/metadata") as r:
            meta = await r.json()
        async with http.get(base_url(emu) + "/v1/license") as r:
            lic = await r.json()
        async with http.post(base_url(emu) + "/tokenize", json={"prompt": "hi"}) as r:
            tokenize_status = r.status
    assert meta["version"] == tag and meta["modelInfo"][0]["shortName"] == MODEL
    assert lic["type"] == "file" and lic["size"] == len(lic["content"]) and len(lic["sha"]) == 40
    if tag.startswith("2"):
        assert meta["profile_name"] == "vllm-bf16-tp1-pp1" and len(meta["profile_id"]) == 64
        assert tokenize_status == 200
    else:
        assert len(meta["selectedModelProfileId"]) == 64 and "profile_name" not in meta
        assert tokenize_status == 404


async def test_tokenizer_messages_and_responses(tmp_path: Path) -> None:
    async with with_openai(settings_for(tmp_path, zero_delay=True)) as (emu, client):
        url = base_url(emu)
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/tokenize", json={"prompt": "the GPU node is ready."}) as r:
                tok = await r.json()
            assert tok["count"] == len(tok["tokens"]) == count_tokens("the GPU node is ready.")
            async with http.post(url + "/detokenize", json={"tokens": tok["tokens"]}) as r:
                assert (await r.json())["prompt"] == "the GPU node is ready."
            msg = {"model": MODEL, "max_tokens": 7, "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(url + "/v1/messages", json={**msg, "stop_sequences": ["zz"]}) as r:
                reply = await r.json()
            assert reply["type"] == "message" and reply["content"][0]["type"] == "text"
            assert reply["usage"]["output_tokens"] <= 7 and reply["stop_reason"] in (
                "end_turn",
                "max_tokens",
            )
            async with http.post(url + "/v1/messages", json={"model": MODEL, "messages": []}) as r:
                assert r.status == 400 and (await r.json())["type"] == "error"
            async with http.post(url + "/v1/messages/count_tokens", json=msg) as r:
                assert (await r.json())["input_tokens"] > 0
            async with http.post(url + "/v1/chat/completions/render", json=msg) as r:
                rendered = await r.json()
            assert "hi" in rendered["prompt"] and rendered["prompt_token_ids"]
        response = await client.responses.create(model=MODEL, input="Say hi", max_output_tokens=9)
        assert response.status in ("completed", "incomplete") and response.output_text
        fetched = await client.responses.retrieve(response.id)
        assert fetched.output_text == response.output_text
        with pytest.raises(openai.BadRequestError):
            await client.responses.cancel(response.id)


async def test_ignore_eos_without_max_tokens_is_bounded_by_the_context(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, zero_delay=True, env={"NIM_MAX_MODEL_LEN": "64"})
    async with with_openai(settings) as (_emu, client):
        reply = await client.completions.create(
            model=MODEL, prompt="one two three", max_tokens=None, extra_body={"ignore_eos": True}
        )
        chat = await client.chat.completions.create(
            model=MODEL, messages=ASK, extra_body={"ignore_eos": True}
        )
    assert reply.usage is not None and reply.usage.completion_tokens == 16  # vLLM default
    assert chat.usage is not None and chat.usage.total_tokens == 64
    assert chat.choices[0].finish_reason == "length"


async def test_short_request_is_served_while_a_long_ignore_eos_request_runs(tmp_path: Path) -> None:
    """#16.8: a request that runs to the context limit shares every decode step."""
    settings = settings_for(
        tmp_path, model="meta/llama-3.1-8b-instruct", file_scale=1e-9, time_scale=1e5
    )
    async with running(settings) as emu, aiohttp.ClientSession() as http:
        url = base_url(emu)
        long_body = {
            "model": "meta/llama-3.1-8b-instruct",
            "messages": [{"role": "user", "content": "go on forever"}],
            "ignore_eos": True,
            "stream": True,
        }
        long_request = asyncio.create_task(http.post(url + "/v1/chat/completions", json=long_body))
        await asyncio.sleep(0.3)  # the long one is decoding
        assert emu.scheduler.running
        short = {
            "model": "meta/llama-3.1-8b-instruct",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4,
        }
        start = time.perf_counter()
        async with http.post(url + "/v1/chat/completions", json=short) as r:
            body = await r.json()
        elapsed = time.perf_counter() - start
        async with http.get(url + "/v1/health/ready") as r:
            assert r.status == 200
        resp = await long_request
        resp.close()
    assert body["usage"]["completion_tokens"] == 4
    assert elapsed < 1.0, f"the short request took {elapsed:.2f} s"


def test_passthrough_args_set_vllm_engine_limits(tmp_path: Path) -> None:
    args = "--max-num-seqs 3 --max-num-batched-tokens=512 --max-model-len 1024 --enforce-eager"
    settings = settings_for(tmp_path, env={"NIM_PASSTHROUGH_ARGS": args})
    assert (settings.max_running, settings.max_batched_tokens) == (3, 512)
    assert settings.effective_max_model_len == 1024
    v1 = settings_for(
        tmp_path / "v1",
        image="nvcr.io/nim/nimble/smollm2-135m-instruct:1.8.0",
        env={"NIM_PASSTHROUGH_ARGS": args},
    )
    assert v1.max_running != 3  # NIM 1.x does not read NIM_PASSTHROUGH_ARGS
