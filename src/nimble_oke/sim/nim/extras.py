"""NIM 2.x's other vLLM endpoints: tokenizer, render, Anthropic messages, Responses API.

Shapes (vLLM OpenAI-compatible server; NIM LLM 2.x API reference):

- ``POST /tokenize`` ``{prompt | messages}`` → ``{"count", "max_model_len", "tokens",
  "token_strs"}``; ``POST /detokenize`` ``{"tokens": [ids]}`` → ``{"prompt": text}`` (an
  id the tokenizer never produced is a 400);
- ``POST /v1/chat/completions/render`` and ``/v1/completions/render`` → the prompt the
  model would see, without inference (assumed shape: ``{"prompt", "prompt_token_ids"}``;
  the emulator's chat template is one ``<|role|>`` line per message);
- ``POST /v1/messages`` (Anthropic Messages: ``max_tokens`` required; ``content`` blocks,
  ``stop_reason`` end_turn / max_tokens / stop_sequence / tool_use, ``usage``
  input_tokens / output_tokens; errors ``{"type": "error", "error": {"type", "message"}}``)
  and ``POST /v1/messages/count_tokens`` → ``{"input_tokens"}``;
- ``POST /v1/responses`` (``input`` a string or messages, ``instructions``,
  ``max_output_tokens``, ``background``), ``GET /v1/responses/{id}`` and
  ``POST /v1/responses/{id}/cancel`` (only a background response can be cancelled).

Generation goes through the same planner and scheduler as chat completions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nimble_oke.sim.nim.protocol import ApiError, parse_body
from nimble_oke.sim.nim.text import count_chat_tokens

if TYPE_CHECKING:
    from nimble_oke.sim.nim.server import NimEmulator

_MAX_STORED_RESPONSES = 1000
_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def render_chat(messages: list[tuple[str, str]]) -> str:
    """The emulator's chat template (one line per message, then the assistant primer)."""
    return "".join(f"<|{role}|>\n{content}\n" for role, content in messages) + "<|assistant|>\n"


class NimExtras:
    """Handlers of the endpoints above, bound to one emulator."""

    def __init__(self, emulator: NimEmulator) -> None:
        self.emu = emulator
        self.responses: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._background: dict[str, tuple[asyncio.Task[None], list[Any]]] = {}

    def add_routes(self, app: web.Application) -> None:
        post = app.router.add_post
        post("/tokenize", self.tokenize)
        post("/detokenize", self.detokenize)
        post("/v1/chat/completions/render", self.render_chat)
        post("/v1/completions/render", self.render_completion)
        post("/v1/messages", self.messages)
        post("/v1/messages/count_tokens", self.count_tokens)
        post("/v1/responses", self.create_response)
        app.router.add_get("/v1/responses/{response_id}", self.get_response)
        post("/v1/responses/{response_id}/cancel", self.cancel_response)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if err := self.emu.not_ready():
            raise err
        body = parse_body(await request.read())
        model = body.get("model")
        if model is not None and model != self.emu.settings.served_model_name:
            raise ApiError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        return body

    # -- tokenizer and render ----------------------------------------------------------------
    def _prompt_text(self, body: dict[str, Any]) -> str:
        from nimble_oke.sim.nim.protocol import parse_messages

        if "messages" in body:
            return render_chat(parse_messages(body))
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise ApiError(400, "prompt: a string is required", param="prompt")
        return prompt

    async def tokenize(self, request: web.Request) -> web.Response:
        try:
            text = self._prompt_text(await self._body(request))
        except ApiError as exc:
            return self.emu.error(exc)
        ids = self.emu.tokens.ids(text)
        return web.json_response(
            {
                "count": len(ids),
                "max_model_len": self.emu.max_model_len,
                "tokens": ids,
                "token_strs": None,
            }
        )

    async def detokenize(self, request: web.Request) -> web.Response:
        try:
            ids = (await self._body(request)).get("tokens")
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                raise ApiError(400, "tokens: a list of token ids is required", param="tokens")
            pieces = [self.emu.tokens.piece(i) for i in ids]
            unknown = [i for i, p in zip(ids, pieces, strict=True) if p is None]
            if unknown:
                raise ApiError(400, f"Token id {unknown[0]} is out of vocabulary", param="tokens")
        except ApiError as exc:
            return self.emu.error(exc)
        return web.json_response({"prompt": "".join(p or "" for p in pieces)})

    async def _render(self, request: web.Request, kind: str) -> web.Response:
        try:
            body = await self._body(request)
            params = self.emu.parse(body, kind)
        except ApiError as exc:
            return self.emu.error(exc)
        text = render_chat(params.messages) if kind == "chat" else params.prompt_text
        return web.json_response({"prompt": text, "prompt_token_ids": self.emu.tokens.ids(text)})

    async def render_chat(self, request: web.Request) -> web.Response:
        return await self._render(request, "chat")

    async def render_completion(self, request: web.Request) -> web.Response:
        return await self._render(request, "completion")

    # -- Anthropic messages -------------------------------------------------------------------
    @staticmethod
    def _anthropic_error(status: int, message: str) -> web.Response:
        kind = {404: "not_found_error", 503: "overloaded_error"}.get(status)
        body = {
            "type": "error",
            "error": {"type": kind or "invalid_request_error", "message": message},
        }
        return web.json_response(body, status=status)

    @staticmethod
    def _anthropic_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages: Field required")
        out: list[dict[str, Any]] = []
        system = body.get("system")
        if isinstance(system, str) and system:
            out.append({"role": "system", "content": system})
        elif isinstance(system, list):
            text = "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
            out.append({"role": "system", "content": text})
        for message in messages:
            if not isinstance(message, dict):
                raise ApiError(400, "messages: each message must be an object")
            content = message.get("content")
            if isinstance(content, list):
                content = [
                    {"type": "text", "text": b.get("text", "")}
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "text"
                ]
            out.append({"role": message.get("role"), "content": content})
        return out

    def _anthropic_chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ApiError(400, "max_tokens: Field required (an integer >= 1)")
        chat: dict[str, Any] = {
            "model": body.get("model") or self.emu.settings.served_model_name,
            "messages": self._anthropic_messages(body),
            "max_tokens": max_tokens,
        }
        for src, dst in (("stop_sequences", "stop"), ("temperature", "temperature")):
            if body.get(src) is not None:
                chat[dst] = body[src]
        return chat

    async def messages(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            if body.get("stream"):
                raise ApiError(400, "the NIM emulator answers /v1/messages without streaming")
            params = self.emu.parse(self._anthropic_chat_body(body), "chat")
            gens = self.emu.plan(params, time.perf_counter_ns())
        except ApiError as exc:
            return self._anthropic_error(exc.status, exc.message)
        try:
            if not await self.emu.wait_complete(gens):
                return self._anthropic_error(503, "The server is shutting down")
        finally:
            for gen in gens:
                if not gen.complete:
                    self.emu.scheduler.cancel(gen)
        plan = gens[0].plan
        self.emu.finish(gens, params, plan.finish_reason)
        stop_reason = _ANTHROPIC_STOP.get(plan.finish_reason, "end_turn")
        if isinstance(plan.stop_reason, str):
            stop_reason = "stop_sequence"
        return web.json_response(
            {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": params.model,
                "content": [{"type": "text", "text": plan.text}],
                "stop_reason": stop_reason,
                "stop_sequence": plan.stop_reason if isinstance(plan.stop_reason, str) else None,
                "usage": {"input_tokens": params.prompt_tokens, "output_tokens": len(plan.tokens)},
            }
        )

    async def count_tokens(self, request: web.Request) -> web.Response:
        from nimble_oke.sim.nim.protocol import parse_messages

        try:
            body = await self._body(request)
            pairs = parse_messages({"messages": self._anthropic_messages(body)})
        except ApiError as exc:
            return self._anthropic_error(exc.status, exc.message)
        return web.json_response({"input_tokens": count_chat_tokens(pairs)})

    # -- Responses API ------------------------------------------------------------------------
    def _response_chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        source = body.get("input")
        messages: list[dict[str, Any]] = []
        if isinstance(body.get("instructions"), str):
            messages.append({"role": "system", "content": body["instructions"]})
        if isinstance(source, str):
            messages.append({"role": "user", "content": source})
        elif isinstance(source, list) and source:
            messages += [m for m in source if isinstance(m, dict) and "role" in m]
        if not messages or messages[-1]["role"] == "system":
            raise ApiError(400, "input: a string or a list of messages is required", param="input")
        chat: dict[str, Any] = {
            "model": body.get("model") or self.emu.settings.served_model_name,
            "messages": messages,
        }
        if body.get("max_output_tokens") is not None:
            chat["max_tokens"] = body["max_output_tokens"]
        if body.get("temperature") is not None:
            chat["temperature"] = body["temperature"]
        return chat

    def _response_object(self, response_id: str, params: Any, status: str) -> dict[str, Any]:
        return {
            "id": response_id,
            "object": "response",
            "created_at": int(self.emu.clock.wall()),
            "status": status,
            "model": params.model,
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": None,
        }

    def _complete_response(self, stored: dict[str, Any], gens: list[Any], params: Any) -> None:
        plan = gens[0].plan
        stored["status"] = "completed" if plan.finish_reason != "length" else "incomplete"
        if plan.finish_reason == "length":
            stored["incomplete_details"] = {"reason": "max_output_tokens"}
        stored["output"] = [
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": plan.text, "annotations": []}],
            }
        ]
        out = len(plan.tokens)
        stored["usage"] = {
            "input_tokens": params.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": params.prompt_tokens + out,
        }
        self.emu.finish(gens, params, plan.finish_reason)

    def _store(self, response_id: str, stored: dict[str, Any]) -> None:
        self.responses[response_id] = stored
        while len(self.responses) > _MAX_STORED_RESPONSES:
            self.responses.popitem(last=False)

    async def create_response(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            if body.get("stream"):
                raise ApiError(400, "the NIM emulator answers /v1/responses without streaming")
            params = self.emu.parse(self._response_chat_body(body), "chat")
            gens = self.emu.plan(params, time.perf_counter_ns())
        except ApiError as exc:
            return self.emu.error(exc)
        response_id = f"resp_{uuid.uuid4().hex}"
        background = bool(body.get("background"))
        stored = self._response_object(
            response_id, params, "queued" if background else "in_progress"
        )
        if body.get("store", True):
            self._store(response_id, stored)
        if background:
            task = asyncio.create_task(self._finish_later(stored, gens, params))
            self._background[response_id] = (task, gens)
            return web.json_response(stored)
        try:
            if not await self.emu.wait_complete(gens):
                return self.emu.error(
                    ApiError(503, "The server is shutting down", "ServiceUnavailableError")
                )
        finally:
            for gen in gens:
                if not gen.complete:
                    self.emu.scheduler.cancel(gen)
        self._complete_response(stored, gens, params)
        return web.json_response(stored)

    async def _finish_later(self, stored: dict[str, Any], gens: list[Any], params: Any) -> None:
        stored["status"] = "in_progress"
        try:
            if await self.emu.wait_complete(gens):
                self._complete_response(stored, gens, params)
        finally:
            self._background.pop(stored["id"], None)

    async def get_response(self, request: web.Request) -> web.Response:
        stored = self.responses.get(request.match_info["response_id"])
        if stored is None:
            message = f"Response with id '{request.match_info['response_id']}' not found."
            return self.emu.error(ApiError(404, message, "NotFoundError"))
        return web.json_response(stored)

    async def cancel_response(self, request: web.Request) -> web.Response:
        response_id = request.match_info["response_id"]
        stored = self.responses.get(response_id)
        if stored is None:
            message = f"Response with id '{response_id}' not found."
            return self.emu.error(ApiError(404, message, "NotFoundError"))
        running = self._background.pop(response_id, None)
        if running is None:
            return self.emu.error(ApiError(400, "Cannot cancel a synchronous response."))
        task, gens = running
        for gen in gens:
            self.emu.scheduler.cancel(gen)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        stored["status"] = "cancelled"
        return web.json_response(stored)
