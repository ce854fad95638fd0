"""OpenAI request validation and error bodies, as NIM 2.x (vLLM) and NIM 1.x answer them.

NIM 2.x runs vLLM: request fields are vLLM's (``stop``, ``stop_token_ids``,
``max_completion_tokens``, ``min_tokens``, ``ignore_eos``, ``n``, ``seed``, ``logprobs``,
``echo``, ``response_format``, ``structured_outputs``, ``tools``/``tool_choice``); the
``nvext`` object is gone (the NIM 1.x→2.0 migration guide: "move sampling parameters from
nvext to top level") and vLLM ≥ 0.12 ignores the removed ``guided_*`` fields — both are
accepted and ignored, as vLLM's ``extra="allow"`` models do. Errors are vLLM's nested
``{"error": {"message", "type", "param", "code"}}`` (vLLM ≥ 0.10.1). NIM 1.x answers the
flat ``{"object": "error", ...}`` body, honours ``nvext`` and ``guided_json``, and refuses
``n > 1`` (assumption: its TensorRT-LLM profiles sample one sequence).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nimble_oke.sim.nim.text import count_chat_tokens, count_tokens

_ROLES = {"system", "user", "assistant", "tool", "developer"}
# vLLM's default max_tokens for /v1/completions when the request gives none.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16
# vLLM's default --max-logprobs.
MAX_LOGPROBS = 20
# Above this many choices the emulator refuses (assumption: vLLM has no hard cap; a bound
# keeps one request from flooding the scheduler).
MAX_N = 128
_INT64 = 2**63


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

    def body(self, api_version: int = 2) -> dict[str, Any]:
        info = {"message": self.message, "type": self.err_type, "param": self.param}
        if api_version >= 2:
            return {"error": {**info, "code": self.status}}
        return {"object": "error", **info, "code": self.status}


@dataclass
class Structured:
    """A structured-output constraint: ``json`` (a schema; ``{}`` for any JSON object) or
    ``choice`` (one of the strings)."""

    kind: str
    schema: Any = None
    choices: list[str] = field(default_factory=list)


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
    n: int = 1
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    include_stop_str: bool = False
    logprobs: int | None = None  # None: off; k: the k most likely alternatives per token
    echo: bool = False
    prompt_text: str = ""
    messages: list[tuple[str, str]] = field(default_factory=list)
    structured: Structured | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "none"
    ignored: list[str] = field(default_factory=list)  # fields accepted but without effect

    @property
    def plain(self) -> bool:
        """Nothing beyond free text for one choice (the emulator's fast streaming path)."""
        return (
            self.n == 1
            and self.logprobs is None
            and not self.echo
            and self.structured is None
            and self.tool_choice == "none"
            and not self.stop
            and not self.stop_token_ids
        )


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
        calls = message.get("tool_calls")
        return role, json.dumps(calls) if calls else ""
    if isinstance(content, str):
        return role, content
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                isinstance(part, dict)
                and part.get("type") in ("text", "input_text", "output_text")
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
    """The request body as a JSON object; malformed or too deeply nested JSON is a 400."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise ApiError(400, "Invalid JSON in request body: recursion limit exceeded") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Invalid JSON in request body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def parse_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages: Field required (a non-empty list)", param="messages")
    return [_message_text(m, i) for i, m in enumerate(messages)]


def _prompt(body: dict[str, Any], kind: str, params: dict[str, Any]) -> None:
    if kind == "chat":
        pairs = parse_messages(body)
        params["messages"] = pairs
        params["prompt_tokens"] = count_chat_tokens(pairs)
        params["prompt_key"] = json.dumps(pairs)
        params["prompt_text"] = pairs[-1][1]
        return
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        params.update(prompt_tokens=max(1, count_tokens(prompt)), prompt_key=prompt)
        params["prompt_text"] = prompt
    elif (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt)
    ):
        params.update(prompt_tokens=len(prompt), prompt_key=json.dumps(prompt))
    else:
        raise ApiError(
            400,
            "prompt: a string, a list of one string, or a list of token ids",
            param="prompt",
        )


def _max_tokens(body: dict[str, Any], kind: str, reject_mct: bool) -> int | None:
    if body.get("max_completion_tokens") is not None:
        if reject_mct:
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
    return max_tokens


def _stop(body: dict[str, Any]) -> tuple[list[str], list[int]]:
    stop = body.get("stop")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = list(stop)
    else:
        raise ApiError(400, "stop must be a string or a list of strings", param="stop")
    if any(s == "" for s in stops):
        raise ApiError(400, "stop strings must not be empty", param="stop")
    ids = body.get("stop_token_ids") or []
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise ApiError(400, "stop_token_ids must be a list of integers", param="stop_token_ids")
    return stops, ids


def _logprobs(body: dict[str, Any], kind: str) -> int | None:
    if kind == "completion":
        value = body.get("logprobs")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError(400, "logprobs must be a non-negative integer", param="logprobs")
        top = value
    else:
        top_raw = body.get("top_logprobs")
        if top_raw is not None and (isinstance(top_raw, bool) or not isinstance(top_raw, int)):
            raise ApiError(400, "`top_logprobs` must be an integer.", param="top_logprobs")
        top = top_raw or 0
        if top < 0:
            raise ApiError(
                400, "`top_logprobs` must be a positive value or -1.", param="top_logprobs"
            )
        if not body.get("logprobs"):
            if top > 0:
                raise ApiError(
                    400,
                    "when using `top_logprobs`, `logprobs` must be set to true.",
                    param="top_logprobs",
                )
            return None
    if top > MAX_LOGPROBS:
        raise ApiError(
            400,
            f"Requested sample logprobs of {top}, which is greater than max allowed: "
            f"{MAX_LOGPROBS}",
            param="logprobs" if kind == "completion" else "top_logprobs",
        )
    return top


def _schema_arg(value: Any, param: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(400, f"{param}: not a valid JSON schema string", param=param) from None
    if isinstance(value, dict | bool):
        return value
    raise ApiError(400, f"{param} must be a JSON schema", param=param)


def _response_format(body: dict[str, Any]) -> Structured | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise ApiError(
            400,
            "response_format.type must be one of 'text', 'json_object', 'json_schema'",
            param="response_format",
        )
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return Structured("json", {"type": "object"})
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise ApiError(
            400,
            "When response_format type is 'json_schema', the 'json_schema' field must be provided.",
            param="response_format",
        )
    schema = spec.get("schema", spec.get("json_schema", {}))
    return Structured("json", _schema_arg(schema, "response_format.json_schema.schema"))


def _structured_v2(body: dict[str, Any]) -> Structured | None:
    spec = body.get("structured_outputs")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ApiError(400, "structured_outputs must be an object", param="structured_outputs")
    kinds = [k for k in ("json", "regex", "choice") if spec.get(k) is not None]
    if len(kinds) > 1:
        raise ApiError(
            400,
            "You can only use one kind of constraints for structured outputs "
            "('json', 'regex' or 'choice').",
        )
    if spec.get("regex") is not None or spec.get("grammar") is not None:
        raise ApiError(
            400,
            "the NIM emulator does not generate text for structured_outputs.regex/grammar "
            "(json, json_object and choice are supported)",
            param="structured_outputs",
        )
    if spec.get("json") is not None:
        return Structured("json", _schema_arg(spec["json"], "structured_outputs.json"))
    if spec.get("choice") is not None:
        return _choice(spec["choice"], "structured_outputs.choice")
    if spec.get("json_object"):
        return Structured("json", {"type": "object"})
    return None


def _choice(value: Any, param: str) -> Structured:
    if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
        raise ApiError(400, f"{param} must be a non-empty list of strings", param=param)
    return Structured("choice", choices=list(value))


def _structured_v1(body: dict[str, Any], nvext: dict[str, Any]) -> Structured | None:
    for source in (nvext, body):
        if source.get("guided_json") is not None:
            return Structured("json", _schema_arg(source["guided_json"], "guided_json"))
        if source.get("guided_choice") is not None:
            return _choice(source["guided_choice"], "guided_choice")
    return None


def _tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str | dict[str, Any]]:
    """vLLM's ChatCompletionRequest.check_tool_usage, with its messages."""
    tools = body.get("tools")
    if tools == []:
        raise ApiError(
            400,
            "`tools` must not be an empty array. Either provide at least one tool or omit "
            "the field entirely.",
            param="tools",
        )
    if tools is not None and (
        not isinstance(tools, list)
        or not all(
            isinstance(t, dict)
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
            for t in tools
        )
    ):
        raise ApiError(400, "tools: each tool needs a function with a name", param="tools")
    choice = body.get("tool_choice", "auto" if tools else "none")
    if choice is None or choice == "none":
        return tools or [], "none"
    if not tools:
        raise ApiError(400, "When using `tool_choice`, `tools` must be set.", param="tool_choice")
    if choice in ("auto", "required"):
        return tools, choice
    usage = 'Correct usage: `{"type": "function", "function": {"name": "my_function"}}`'
    if not isinstance(choice, dict):
        raise ApiError(
            400,
            f'Invalid value for `tool_choice`: {choice}! Only named tools, "none", "auto" '
            'or "required" are supported.',
            param="tool_choice",
        )
    function = choice.get("function")
    if not isinstance(function, dict):
        raise ApiError(
            400,
            f"Invalid value for `function`: `{function}` in `tool_choice`! {usage}",
            param="tool_choice.function",
        )
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(
            400,
            f"Invalid `name` in `function`: `{name}` in `tool_choice`! {usage}",
            param="tool_choice.function.name",
        )
    if not any(t["function"]["name"] == name for t in tools):
        raise ApiError(
            400,
            "The tool specified in `tool_choice` does not match any of the specified `tools`",
            param="tool_choice",
        )
    return tools, {"name": name}


def _temperature(body: dict[str, Any]) -> float:
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        return 1.0
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise ApiError(400, "temperature must be a number", param="temperature")
    if temperature < 0:
        raise ApiError(
            400, f"temperature must be non-negative, got {temperature}.", param="temperature"
        )
    return float(temperature)


def _stream(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise ApiError(400, "stream must be a boolean", param="stream")
    options = body.get("stream_options")
    if options and not stream:
        raise ApiError(
            400,
            "Stream options can only be defined when `stream=True`.",
            param="stream_options",
        )
    return stream, bool(isinstance(options, dict) and options.get("include_usage"))


def parse_generation(
    body: dict[str, Any],
    kind: str,
    *,
    reject_max_completion_tokens: bool,
    api_version: int = 2,
    default_model: str = "",
) -> GenerationParams:
    """Validate a /v1/chat/completions (``kind="chat"``) or /v1/completions body."""
    model = body.get("model")
    if model is None and api_version >= 2 and default_model:
        model = default_model  # vLLM: the model field is optional (the served model)
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model: Field required", param="model")
    params: dict[str, Any] = {"kind": kind, "model": model}
    _prompt(body, kind, params)
    raw_nvext = body.get("nvext")
    nvext: dict[str, Any] = raw_nvext if isinstance(raw_nvext, dict) else {}
    ignored: list[str] = []
    if api_version >= 2:
        ignored += [k for k in ("nvext", "guided_json", "guided_choice") if k in body]
        nvext = {}
    min_tokens = _int_field(nvext, "min_tokens", 0) or _int_field(body, "min_tokens", 0) or 0
    max_tokens = _max_tokens(body, kind, reject_max_completion_tokens)
    if max_tokens is not None and min_tokens > max_tokens:
        raise ApiError(
            400,
            f"min_tokens must be less than or equal to max_tokens={max_tokens}, got {min_tokens}.",
            param="min_tokens",
        )
    n = _int_field(body, "n", 1) or 1
    if n > 1 and api_version < 2:
        raise ApiError(400, "n > 1 is not supported by this model", param="n")
    if n > MAX_N:
        raise ApiError(400, f"n must be at most {MAX_N}, got {n}", param="n")
    stream, include_usage = _stream(body)
    stops, stop_ids = _stop(body)
    echo = body.get("echo", False)
    if not isinstance(echo, bool):
        raise ApiError(400, "echo must be a boolean", param="echo")
    structured = _response_format(body)
    if api_version >= 2:
        structured = _structured_v2(body) or structured
    else:
        structured = _structured_v1(body, nvext) or structured
    tools, tool_choice = _tools(body) if kind == "chat" else ([], "none")
    if structured is not None and isinstance(tool_choice, dict):
        raise ApiError(
            400, "You can only either use constraints for structured outputs or tools, not both."
        )
    seed = _int_field(body, "seed", -_INT64)
    if seed is not None and seed >= _INT64:
        raise ApiError(400, "seed must fit in a signed 64-bit integer", param="seed")
    return GenerationParams(
        **params,
        max_tokens=max_tokens,
        min_tokens=min_tokens,
        ignore_eos=bool(nvext.get("ignore_eos", body.get("ignore_eos", False))),
        temperature=_temperature(body),
        seed=seed,
        stream=stream,
        include_usage=include_usage,
        n=n,
        stop=stops,
        stop_token_ids=stop_ids,
        include_stop_str=bool(body.get("include_stop_str_in_output", False)),
        logprobs=_logprobs(body, kind),
        echo=echo,
        structured=structured,
        tools=tools,
        tool_choice=tool_choice,
        ignored=ignored,
    )


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class ChunkEncoder:
    """Builds SSE ``data:`` lines quickly for the plain case (one choice, no logprobs, no
    tools): the JSON around the token text is precomputed."""

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
