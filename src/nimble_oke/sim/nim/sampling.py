"""What the emulated model generates for one choice, decided before any GPU time is spent.

The scheduler then releases the planned tokens step by step. Decisions follow vLLM:

- the output is bounded by ``max_tokens`` or, without it, by the context left
  (``max_model_len − prompt``) — also with ``ignore_eos``, so no request runs forever;
- ``min_tokens`` suppresses EOS, stop strings and stop token ids until reached;
- a stop string ends the text before it (``include_stop_str_in_output`` keeps it),
  ``finish_reason`` "stop" and ``stop_reason`` the string; a stop token id ends the output
  after that token (``stop_reason`` the id); the tokens generated are still counted;
- structured output (a JSON schema, ``json_object``, a choice) produces text that parses and
  validates; cut by ``max_tokens`` it is truncated with ``finish_reason`` "length";
- tools: a named ``tool_choice`` makes the model emit the function's arguments (content "",
  finish "stop"); ``required`` a JSON list of calls (finish "tool_calls"); ``auto`` calls the
  first tool whose name the last user message mentions (llama3_json parser output: content
  None, finish "tool_calls"), else answers in text;
- ``seed`` (or temperature 0) makes the output a function of the prompt; choice ``i`` of
  ``n`` is sampled with its own stream unless decoding is greedy.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from nimble_oke.sim.nim.protocol import ApiError, GenerationParams
from nimble_oke.sim.nim.schema_gen import UnsupportedSchemaError, generate
from nimble_oke.sim.nim.text import (
    VOCABULARY,
    TokenTable,
    generate_tokens,
    natural_length,
    request_rng,
    split_tokens,
)


@dataclass
class TokenLogprob:
    """One generated token's log-probability and the most likely alternatives."""

    token: str
    token_id: int
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class ChoicePlan:
    """The output of one choice: token texts (the last may be cut by a stop string) and ids."""

    index: int
    tokens: list[str]
    token_ids: list[int]
    finish_reason: str
    stop_reason: int | str | None = None
    logprobs: list[TokenLogprob] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_mode: str | None = None  # "named" | "required" | "auto" when the output is a call

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def context_limit(params: GenerationParams, max_model_len: int) -> int:
    """The most tokens the request may generate; a 400 as vLLM words it when none fit."""
    room = max_model_len - params.prompt_tokens
    asked = params.max_tokens or 0
    if room < 1 or asked > room:
        raise ApiError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {params.prompt_tokens + asked} tokens ({params.prompt_tokens} in the "
            f"messages, {asked} in the completion). Please reduce the length of the messages "
            "or completion.",
            param="max_tokens" if asked else "messages",
        )
    return params.max_tokens or room


def plan_choices(
    params: GenerationParams, *, seed: int, max_model_len: int, table: TokenTable
) -> list[ChoicePlan]:
    limit = context_limit(params, max_model_len)
    plans = []
    for index in range(params.n):
        key = params.prompt_key if params.temperature == 0 else f"{params.prompt_key}#{index}"
        rng = request_rng(seed, key, params.temperature, params.seed)
        plans.append(_plan_one(params, index, rng, limit, table))
    return plans


def _plan_one(
    params: GenerationParams, index: int, rng: random.Random, limit: int, table: TokenTable
) -> ChoicePlan:
    mode, text, calls = _tool_output(params, rng)
    if text is None:
        text = _structured_text(params, rng)
    if text is not None:
        tokens = split_tokens(text)
        natural = len(tokens)
        if params.ignore_eos or params.min_tokens > natural:
            extra = max(params.min_tokens, limit if params.ignore_eos else 0) - natural
            tokens += generate_tokens(rng, max(0, extra))
    else:
        wanted = max(natural_length(rng), params.min_tokens)
        count = limit if params.ignore_eos else min(wanted, limit)
        tokens = generate_tokens(rng, count)
        natural = wanted
    finish = (
        "length" if len(tokens) >= limit and (params.ignore_eos or natural >= limit) else "stop"
    )
    tokens = tokens[:limit]
    ids = [table.id_of(t) for t in tokens]
    plan = ChoicePlan(index, tokens, ids, finish)
    _apply_stops(plan, params)
    if calls is not None and plan.finish_reason == "stop" and plan.stop_reason is None:
        plan.tool_calls, plan.tool_mode = calls, mode
        if mode in ("required", "auto"):
            plan.finish_reason = "tool_calls"
    elif mode == "named":
        plan.tool_mode = mode  # cut by max_tokens: no parsable call, the raw text is content
    if params.logprobs is not None:
        plan.logprobs = _logprobs(plan, params.logprobs, rng)
    return plan


def _structured_text(params: GenerationParams, rng: random.Random) -> str | None:
    spec = params.structured
    if spec is None:
        return None
    if spec.kind == "choice":
        return spec.choices[rng.randrange(len(spec.choices))]
    try:
        return json.dumps(generate(spec.schema, rng))
    except UnsupportedSchemaError as exc:
        raise ApiError(400, f"structured output: {exc}", param="response_format") from None


def _tool_output(
    params: GenerationParams, rng: random.Random
) -> tuple[str | None, str | None, list[dict[str, Any]] | None]:
    """(mode, the text the model emits, the parsed tool calls) — (None, None, None) for text."""
    choice = params.tool_choice
    tools = {t["function"]["name"]: t["function"] for t in params.tools}
    if isinstance(choice, dict):
        args = _arguments(tools[choice["name"]], rng)
        return "named", json.dumps(args), [_call(choice["name"], args)]
    if choice == "required":
        name = next(iter(tools))
        args = _arguments(tools[name], rng)
        text = json.dumps([{"name": name, "parameters": args}])
        return "required", text, [_call(name, args)]
    if choice == "auto":
        said = params.messages[-1][1].lower() if params.messages else ""
        for name, function in tools.items():
            if name.lower() in said or name.lower().replace("_", " ") in said:
                args = _arguments(function, rng)
                text = json.dumps({"name": name, "parameters": args})
                return "auto", text, [_call(name, args)]
    return None, None, None


def _arguments(function: dict[str, Any], rng: random.Random) -> Any:
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    try:
        return generate(schema, rng)
    except UnsupportedSchemaError as exc:
        raise ApiError(400, f"tool {function.get('name')!r}: {exc}", param="tools") from None


def _call(name: str, args: Any) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-tool-{uuid.uuid4().hex}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


def _apply_stops(plan: ChoicePlan, params: GenerationParams) -> None:
    """Cut the output at the first stop token id or stop string past ``min_tokens``."""
    first = params.min_tokens
    stop_ids = set(params.stop_token_ids)
    for i in range(first, len(plan.token_ids)):
        if plan.token_ids[i] in stop_ids:
            plan.tokens, plan.token_ids = plan.tokens[: i + 1], plan.token_ids[: i + 1]
            plan.finish_reason, plan.stop_reason = "stop", plan.token_ids[i]
            break
    if not params.stop:
        return
    text = plan.text
    floor = len("".join(plan.tokens[:first]))
    best: tuple[int, str] | None = None
    for stop in params.stop:
        at = text.find(stop, max(0, floor - len(stop) + 1))
        while at != -1 and at + len(stop) <= floor:
            at = text.find(stop, at + 1)
        if at != -1 and (best is None or at < best[0]):
            best = (at, stop)
    if best is None:
        return
    at, stop = best
    end = at + len(stop) if params.include_stop_str else at
    keep, pos = [], 0
    for token in plan.tokens:
        if pos >= at + len(stop):
            break
        keep.append(token[: max(0, end - pos)])
        pos += len(token)
    plan.token_ids = plan.token_ids[: len(keep)]
    plan.tokens = keep
    plan.finish_reason, plan.stop_reason = "stop", stop


def _logprobs(plan: ChoicePlan, top: int, rng: random.Random) -> list[TokenLogprob]:
    """Deterministic log-probabilities: the sampled token is the most likely one."""
    out = []
    for token, token_id in zip(plan.tokens, plan.token_ids, strict=True):
        best = -round(rng.uniform(0.0005, 1.5), 4)
        alternatives = [(token, best)]
        value = best
        for word in rng.sample(VOCABULARY, k=min(len(VOCABULARY), max(0, top))):
            value = round(value - rng.uniform(0.05, 1.5), 4)
            if len(alternatives) < top:
                alternatives.append((" " + word, value))
        out.append(TokenLogprob(token, token_id, best, alternatives[:top]))
    return out
