"""Run the chart's Helm test scripts (models, completion, streaming) with the real `sh`
and `curl` against a local OpenAI-compatible server, as the test pods would in-cluster.

The server speaks NIM's wire format (reference/nim.md): `/v1/models` list, chat
completions, and SSE streaming ending in `data: [DONE]`; a broken variant checks that
the scripts really fail when the API misbehaves.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from typing import Any

import pytest
from aiohttp import web

from .checks import by_kind
from .conftest import Render

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("sh") is None, reason="needs sh and curl"
)

MODEL = "meta/llama-3.1-8b-instruct"


def nim_app(*, broken: str | None) -> web.Application:
    """``broken``: None, "no-models" (empty model list) or "no-done" (stream never ends)."""

    async def models(_: web.Request) -> web.Response:
        data = (
            []
            if broken == "no-models"
            else [{"id": MODEL, "object": "model", "owned_by": "system"}]
        )
        return web.json_response({"object": "list", "data": data})

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("model") != MODEL:
            return web.json_response(
                {"error": {"message": "model not found", "type": "NotFound", "code": 404}},
                status=404,
            )
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": MODEL,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Hello!"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for delta in ({"role": "assistant"}, {"content": "One"}, {"content": " two"}):
            chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if broken != "no-done":
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def run_scripts(pods: list[dict[str, Any]], *, broken: str | None) -> dict[str, int]:
    runner = web.AppRunner(nim_app(broken=broken))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    results: dict[str, int] = {}
    try:
        for pod in pods:
            container = pod["spec"]["containers"][0]
            env = {e["name"]: e["value"] for e in container["env"]}
            env["NIM_URL"] = f"http://127.0.0.1:{port}"
            process = await asyncio.create_subprocess_exec(
                *container["command"],
                *container["args"],
                env={"PATH": os.environ["PATH"], **env},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                results[container["name"]] = await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise
    finally:
        await runner.cleanup()
    return results


def test_helm_test_scripts_pass_against_an_openai_compatible_server(render: Render) -> None:
    pods = by_kind(render(include_tests=True), "Pod")
    assert asyncio.run(run_scripts(pods, broken=None)) == {
        "models": 0,
        "completion": 0,
        "streaming": 0,
    }


def test_every_script_fails_when_no_model_is_served(render: Render) -> None:
    pods = by_kind(render(include_tests=True), "Pod")
    results = asyncio.run(run_scripts(pods, broken="no-models"))
    assert all(code != 0 for code in results.values()), results


def test_streaming_script_fails_when_the_stream_does_not_finish(render: Render) -> None:
    pods = by_kind(render(include_tests=True), "Pod")
    results = asyncio.run(run_scripts(pods, broken="no-done"))
    assert results["models"] == 0 and results["completion"] == 0
    assert results["streaming"] != 0
