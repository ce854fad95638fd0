"""Response bodies and stream chunks of chat and text completions, in vLLM's shapes.

Chat logprobs: ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}``;
completion logprobs: ``{"text_offset", "token_logprobs", "tokens", "top_logprobs":
[{token: logprob}]}``. vLLM adds ``stop_reason`` to every choice (the stop string or token
id that ended it, else null). A tool call made by a named ``tool_choice`` or ``required``
comes with content ``""``; one found by the auto parser with content null.
"""

from __future__ import annotations

import json
from typing import Any

from nimble_oke.sim.nim.protocol import GenerationParams, usage
from nimble_oke.sim.nim.sampling import ChoicePlan, TokenLogprob


def chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": e.token,
                "logprob": e.logprob,
                "bytes": list(e.token.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in e.top
                ],
            }
            for e in entries
        ]
    }


def completion_logprobs(entries: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    offsets, pos = [], offset
    for e in entries:
        offsets.append(pos)
        pos += len(e.token)
    return {
        "text_offset": offsets,
        "token_logprobs": [e.logprob for e in entries],
        "tokens": [e.token for e in entries],
        "top_logprobs": [dict(e.top) for e in entries],
    }


def _message(params: GenerationParams, plan: ChoicePlan) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": plan.text}
    if plan.tool_calls:
        message["content"] = None if plan.tool_mode == "auto" else ""
        message["tool_calls"] = plan.tool_calls
    elif params.echo and params.messages and params.messages[-1][0] == "assistant":
        message["content"] = params.messages[-1][1] + plan.text
    return message


def full_response(
    params: GenerationParams,
    plans: list[ChoicePlan],
    *,
    request_id: str,
    created: int,
    api_version: int = 2,
) -> dict[str, Any]:
    choices = []
    for plan in plans:
        if params.kind == "chat":
            logprobs = chat_logprobs(plan.logprobs) if plan.logprobs is not None else None
            choice: dict[str, Any] = {
                "index": plan.index,
                "message": _message(params, plan),
                "logprobs": logprobs,
                "finish_reason": plan.finish_reason,
            }
        else:
            prefix = params.prompt_text if params.echo else ""
            logprobs = None
            if plan.logprobs is not None:
                logprobs = completion_logprobs(plan.logprobs, len(prefix))
            choice = {
                "index": plan.index,
                "text": prefix + plan.text,
                "logprobs": logprobs,
                "finish_reason": plan.finish_reason,
            }
        if api_version >= 2:
            choice["stop_reason"] = plan.stop_reason
        choices.append(choice)
    completion = sum(len(p.token_ids) for p in plans)
    return {
        "id": request_id,
        "object": "chat.completion" if params.kind == "chat" else "text_completion",
        "created": created,
        "model": params.model,
        "choices": choices,
        "usage": usage(params.prompt_tokens, completion),
    }


class StreamChunks:
    """SSE chunks for the general case (several choices, logprobs, tool calls, echo)."""

    def __init__(
        self, params: GenerationParams, request_id: str, created: int, api_version: int
    ) -> None:
        self.params = params
        self.api_version = api_version
        self.head = {
            "id": request_id,
            "object": "chat.completion.chunk" if params.kind == "chat" else "text_completion",
            "created": created,
            "model": params.model,
        }

    def _line(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + json.dumps({**self.head, "choices": choices, **extra}).encode() + b"\n\n"

    def opening(self, plan: ChoicePlan) -> bytes:
        """The first chunk of a choice: the role (chat), or the echoed prompt (completion)."""
        if self.params.kind == "chat":
            delta: dict[str, Any] = {"role": "assistant", "content": ""}
            if self.params.echo and self.params.messages[-1][0] == "assistant":
                delta["content"] = self.params.messages[-1][1]
            return self._line([self._choice(plan.index, delta, None, None)])
        if self.params.echo and self.params.prompt_text:
            choice = {"index": plan.index, "text": self.params.prompt_text, "logprobs": None}
            return self._line([{**choice, "finish_reason": None}])
        return b""

    def tokens(self, plan: ChoicePlan, start: int, end: int, last: bool) -> bytes:
        """One chunk carrying tokens ``start:end`` of the choice (``last``: with its finish)."""
        text = "".join(plan.tokens[start:end])
        entries = plan.logprobs[start:end] if plan.logprobs is not None else None
        finish = plan.finish_reason if last else None
        stop = plan.stop_reason if last else None
        if self.params.kind == "chat":
            delta = self._chat_delta(plan, text, start)
            logprobs = chat_logprobs(entries) if entries is not None else None
            return self._line([self._choice(plan.index, delta, logprobs, finish, stop)])
        offset = len(self.params.prompt_text) if self.params.echo else 0
        offset += len("".join(plan.tokens[:start]))
        choice = {
            "index": plan.index,
            "text": text,
            "logprobs": completion_logprobs(entries, offset) if entries is not None else None,
            "finish_reason": finish,
        }
        if self.api_version >= 2:
            choice["stop_reason"] = stop
        return self._line([choice])

    def _chat_delta(self, plan: ChoicePlan, text: str, start: int) -> dict[str, Any]:
        if plan.tool_calls is None:
            return {"content": text}
        call = plan.tool_calls[0]
        arguments = text if plan.tool_mode == "named" else ""
        if start == 0:
            return {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call["id"],
                        "type": "function",
                        "function": {
                            "name": call["function"]["name"],
                            "arguments": call["function"]["arguments"]
                            if plan.tool_mode != "named"
                            else arguments,
                        },
                    }
                ]
            }
        return {"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}

    def _choice(
        self,
        index: int,
        delta: dict[str, Any],
        logprobs: Any,
        finish: str | None,
        stop: int | str | None = None,
    ) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        if self.api_version >= 2 and finish is not None:
            choice["stop_reason"] = stop
        return choice

    def usage(self, completion_tokens: int) -> bytes:
        return self._line([], usage=usage(self.params.prompt_tokens, completion_tokens))
