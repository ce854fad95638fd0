"""A small OpenAI-compatible server that can be broken on purpose, one way at a time."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

MODEL = "broken/model"
_counter = itertools.count()


def build_app(breaks: frozenset[str]) -> web.Application:
    async def live(request: web.Request) -> web.Response:
        return web.json_response({"object": "health.response", "message": "live"})

    async def ready(request: web.Request) -> web.Response:
        if "not_ready" in breaks:
            return web.json_response(
                {"object": "health.response", "message": "loading"}, status=503
            )
        return web.json_response({"object": "health.response", "message": "Service is ready."})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def answer() -> str:
        return f"answer number {next(_counter)}" if "random" in breaks else "a fixed answer"

    async def chat(request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            if "error_200" in breaks:
                return web.Response(text="ok")
            return web.json_response(
                {"error": {"message": "bad json", "type": "invalid_request_error"}}, status=400
            )
        if not body.get("stream"):
            return whole_chat(body)
        if "no_stream_options" in breaks and "stream_options" in body:
            error = {"error": {"message": "Unrecognized request argument: stream_options"}}
            return web.json_response(error, status=400)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        events: list[dict[str, object]] = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        ]
        events += [{"choices": [{"index": 0, "delta": {"content": f" w{i}"}}]} for i in range(3)]
        completion = 1 if "usage_mismatch" in breaks else 3
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 5, "completion_tokens": completion}
            usage["total_tokens"] = 5 + completion
            events.append({"choices": [], "usage": usage})
        for event in events:
            await resp.write(f"data: {json.dumps(event)}\n\n".encode())
        if "no_done" not in breaks:
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def whole_chat(body: dict[str, Any]) -> web.Response:
        """Honours stop, response_format, a forced tool and logprobs unless broken."""
        if body.get("tools") and "reject_tools" in breaks:
            message = "tool calling is not supported by this model"
            return web.json_response({"error": {"message": message}}, status=400)
        text, finish = answer() + " and more words here", "stop"
        stop = body.get("stop") or []
        if stop and "ignore_stop" not in breaks:
            text = text[: min(text.find(s) if s in text else len(text) for s in stop)]
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if body.get("response_format") and "prose_json" not in breaks:
            message["content"] = json.dumps({"answer": "yes", "score": 7})
        forced = body.get("tool_choice")
        if isinstance(forced, dict) and "no_tool_call" not in breaks:
            args = json.dumps({"city": "Paris"})
            call = {
                "id": "c1",
                "type": "function",
                "function": {"name": forced["function"]["name"], "arguments": args},
            }
            message = {"role": "assistant", "content": "", "tool_calls": [call]}
        logprobs = None
        if body.get("logprobs") and "no_logprobs" not in breaks:
            logprobs = {"content": [{"token": "a", "logprob": -0.1, "top_logprobs": []}]}
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}
        return web.json_response({"object": "chat.completion", "choices": [choice], "usage": usage})

    async def completions(request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "text_completion", "choices": [{"index": 0, "text": " Paris."}]}
        )

    async def metrics(request: web.Request) -> web.Response:
        if "no_metrics" in breaks:
            return web.Response(status=404, text="404: Not Found")
        text = (
            "# TYPE vllm:num_requests_running gauge\n"
            'vllm:num_requests_running{model_name="m"} 0\n'
            'vllm:num_requests_waiting{model_name="m"} 0\n'
            'vllm:kv_cache_usage_perc{model_name="m"} 0.25\n'
        )
        return web.Response(text=text)

    app = web.Application()
    app.router.add_get("/v1/health/live", live)
    app.router.add_get("/v1/health/ready", ready)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/metrics", metrics)
    return app


@contextlib.asynccontextmanager
async def serve(breaks: frozenset[str] = frozenset()) -> AsyncIterator[str]:
    runner = web.AppRunner(build_app(breaks), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
