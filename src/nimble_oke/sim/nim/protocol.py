"""OpenAI request validation and response/chunk shapes, as NIM (vLLM backend) emits them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nimble_oke.sim.nim.text import count_chat_tokens, count_tokens

_ROLES = {"system", "user", "assistant", "tool", "developer"}
# vLLM's default max_tokens for /v1/completions when the request gives none.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16


class ApiError(Exception):
    """An error answered as NIM's OpenAI-compatible error JSON."""

    def __init__(
        self, status: int, message: str, err_type: str = "BadRequestError", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "object": "error",
            "message": self.message,
            "type": self.err_type,
            "param": self.param,
            "code": self.status,
        }


@dataclass
class GenerationParams:
    """What a chat or text completion request asks for, validated."""

    kind: str  # "chat" | "completion"
    model: str
    prompt_tokens: int
    prompt_key: str
    max_tokens: int | None
    min_tokens: int
    ignore_eos: bool
    temperature: float
    seed: int | None
    stream: bool
    include_usage: bool


def _int_field(body: dict[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ApiError(400, f"{name} must be an integer >= {minimum}, got {value!r}", param=name)
    return value


def _message_text(message: Any, index: int) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise ApiError(400, f"messages[{index}] must be an object", param="messages")
    role = message.get("role")
    if role not in _ROLES:
        raise ApiError(
            400, f"messages[{index}].role must be one of {sorted(_ROLES)}", param="messages"
        )
    content = message.get("content")
    if content is None:
        return role, ""
    if isinstance(content, str):
        return role, content
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                parts.append(part["text"])
            else:
                raise ApiError(
                    400,
                    f"messages[{index}].content: only text parts are supported",
                    param="messages",
                )
        return role, "\n".join(parts)
    raise ApiError(
        400, f"messages[{index}].content must be a string or a list of parts", param="messages"
    )


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Invalid JSON in request body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def parse_generation(
    body: dict[str, Any], kind: str, *, reject_max_completion_tokens: bool
) -> GenerationParams:
    """Validate a /v1/chat/completions (``kind="chat"``) or /v1/completions body."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model: Field required", param="model")
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages: Field required (a non-empty list)", param="messages")
        pairs = [_message_text(m, i) for i, m in enumerate(messages)]
        prompt_tokens = count_chat_tokens(pairs)
        prompt_key = json.dumps(pairs)
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if isinstance(prompt, str):
            prompt_tokens, prompt_key = max(1, count_tokens(prompt)), prompt
        elif isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            prompt_tokens, prompt_key = len(prompt), json.dumps(prompt)
        else:
            raise ApiError(
                400,
                "prompt: a string, a list of one string, or a list of token ids",
                param="prompt",
            )
    if "max_completion_tokens" in body and body["max_completion_tokens"] is not None:
        if reject_max_completion_tokens:
            raise ApiError(
                400,
                "Unsupported parameter: 'max_completion_tokens'. Use 'max_tokens' instead.",
                param="max_completion_tokens",
            )
        max_tokens = _int_field(body, "max_completion_tokens", 1)
    else:
        max_tokens = _int_field(body, "max_tokens", 1)
    if max_tokens is None and kind == "completion":
        max_tokens = COMPLETIONS_DEFAULT_MAX_TOKENS
    raw_nvext = body.get("nvext")
    nvext: dict[str, Any] = raw_nvext if isinstance(raw_nvext, dict) else {}
    min_tokens = _int_field(nvext, "min_tokens", 0) or _int_field(body, "min_tokens", 0) or 0
    ignore_eos = bool(nvext.get("ignore_eos", body.get("ignore_eos", False)))
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not 0 <= temperature <= 2
    ):
        raise ApiError(
            400, f"temperature must be a number in [0, 2], got {temperature!r}", param="temperature"
        )
    n = body.get("n", 1)
    if n not in (1, None):
        raise ApiError(400, "n > 1 is not supported by this model", param="n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "stream must be a boolean", param="stream")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise ApiError(
            400, "stream_options is only allowed when stream is true", param="stream_options"
        )
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    seed = _int_field(body, "seed", -(2**63))
    return GenerationParams(
        kind=kind,
        model=model,
        prompt_tokens=prompt_tokens,
        prompt_key=prompt_key,
        max_tokens=max_tokens,
        min_tokens=min_tokens,
        ignore_eos=ignore_eos,
        temperature=float(temperature),
        seed=seed,
        stream=stream,
        include_usage=include_usage,
    )


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def full_response(
    kind: str,
    *,
    request_id: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str,
    usage_: dict[str, int],
) -> dict[str, Any]:
    if kind == "chat":
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        obj = "text_completion"
    return {
        "id": request_id,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage_,
    }


class ChunkEncoder:
    """Builds SSE ``data:`` lines quickly: the JSON around the token text is precomputed."""

    def __init__(self, kind: str, request_id: str, created: int, model: str) -> None:
        self.kind = kind
        obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
        head = json.dumps({"id": request_id, "object": obj, "created": created, "model": model})[
            :-1
        ]
        self._head = "data: " + head + ', "choices": [{"index": 0, '
        self._field = '"delta": {"content": ' if kind == "chat" else '"text": '
        self._close = "}" if kind == "chat" else ""
        self._head_bare = "data: " + head

    def role(self) -> bytes:
        return (
            self._head
            + '"delta": {"role": "assistant", "content": ""}, '
            + '"logprobs": null, "finish_reason": null}]}\n\n'
        ).encode()

    def token(self, text: str, finish_reason: str | None = None) -> str:
        reason = "null" if finish_reason is None else json.dumps(finish_reason)
        return (
            self._head
            + self._field
            + json.dumps(text)
            + self._close
            + ', "logprobs": null, "finish_reason": '
            + reason
            + "}]}\n\n"
        )

    def usage(self, usage_: dict[str, int]) -> bytes:
        return (
            self._head_bare + ', "choices": [], "usage": ' + json.dumps(usage_) + "}\n\n"
        ).encode()

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"
