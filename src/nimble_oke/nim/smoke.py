"""The smoke suite: does a NIM endpoint answer what applications call, as NIM should?

Sixteen checks, each recorded with its name, result, duration and a one-line detail: live,
ready, models, version, metadata (names the selected profile, and it is the planned one
when a profile was planned), chat,
completion, streaming, usage (counts consistent with the text), stop (a stop sequence ends
the text), structured_output (``response_format`` json_schema parses and validates),
tool_call (a forced ``tool_choice`` returns that call), logprobs, deterministic,
error_shape, metrics.

A check is *skipped*, with the reason, when the endpoint does not offer what it tests (it
answers 400/404/422 for it) or when a prerequisite failed (no reachable endpoint, no model). Skips are shown, never counted as
passes; the report passes when no check failed. Renderers: :func:`to_rows` (a table),
:func:`to_dict` (JSON) and :func:`to_junit_xml` (JUnit XML for CI systems).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from nimble_oke.errors import EndpointError
from nimble_oke.nim.client import HttpResult, NimApiError, NimClient

CHECK_NAMES = (
    "live",
    "ready",
    "models",
    "version",
    "metadata",
    "chat",
    "completion",
    "streaming",
    "usage",
    "stop",
    "structured_output",
    "tool_call",
    "logprobs",
    "deterministic",
    "error_shape",
    "metrics",
)
# Checks that need no model (they run even when the models check failed).
_MODEL_FREE = ("live", "ready", "models", "version", "metadata", "error_shape", "metrics")
_MAX_TOKENS = 24
_PROMPT = "In one sentence, what is an inference endpoint?"


_PROFILE_ID = re.compile(r"^[0-9a-f]{64}$")


class CheckFailedError(Exception):
    """A smoke check did not pass; the message is the check's detail."""


class CheckSkippedError(Exception):
    """The endpoint does not offer what the check tests; the message says why."""


@dataclass
class SmokeCheck:
    name: str
    passed: bool
    seconds: float
    detail: str
    skipped: bool = False

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else "passed" if self.passed else "failed"


@dataclass
class SmokeReport:
    endpoint: str
    model: str | None
    started_at: float
    checks: list[SmokeCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No check failed (skips are reported, not passes) and at least one passed."""
        return any(c.passed for c in self.checks) and not self.failed

    @property
    def failed(self) -> list[SmokeCheck]:
        """Checks that ran and failed, and checks skipped because a prerequisite failed."""
        return [c for c in self.checks if not c.passed and not self.unsupported(c)]

    @property
    def skipped(self) -> list[SmokeCheck]:
        return [c for c in self.checks if c.skipped]

    @staticmethod
    def unsupported(check: SmokeCheck) -> bool:
        """Skipped because the endpoint does not offer the feature (not for a failure)."""
        return check.skipped and not check.detail.startswith("skipped:")

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.checks)

    @property
    def summary(self) -> str:
        ok = sum(c.passed for c in self.checks)
        text = f"{ok}/{len(self.checks)} passed"
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        return text


_TOOL_NAME = "get_weather"
_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": _TOOL_NAME,
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}},
            "required": ["city"],
        },
    },
}
_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 40},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["answer", "score"],
}
_UNOFFERED = (400, 404, 405, 422, 501)


def _offered(result: HttpResult, what: str) -> Any:
    """The JSON body of a 2xx answer; a skip when the endpoint refuses the feature."""
    if result.status in _UNOFFERED:
        reason = result.error_message() or result.body[:120].decode(errors="replace")
        raise CheckSkippedError(f"{what} not offered (HTTP {result.status}: {reason[:160]})")
    if not result.ok:
        raise CheckFailedError(f"{what} answered HTTP {result.status}")
    body = result.json()
    if not isinstance(body, dict):
        raise CheckFailedError(f"{what} answered a body that is not a JSON object")
    return body


def _first_choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise CheckFailedError(f"no choices in {str(body)[:120]}")
    return choices[0]


def _matches(value: Any, schema: dict[str, Any]) -> str | None:
    """Why ``value`` does not satisfy the smoke's own small schema (None when it does)."""
    if not isinstance(value, dict):
        return f"not a JSON object: {str(value)[:60]}"
    for key in schema["required"]:
        if key not in value:
            return f"missing required {key!r}"
    props = schema["properties"]
    if (
        not isinstance(value.get("answer"), str)
        or len(value["answer"]) > props["answer"]["maxLength"]
    ):
        return f"'answer' is not a string of at most 40 characters: {value.get('answer')!r}"
    score = value.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        return f"'score' is not an integer in [0, 10]: {score!r}"
    return None


class _Suite:
    def __init__(
        self,
        nim: NimClient,
        model: str | None,
        timeout_s: float,
        expected_profile: str | None = None,
    ) -> None:
        self.nim = nim
        self.model = model
        self.timeout_s = timeout_s
        self.expected_profile = expected_profile
        self.reachable = True
        self.stream_usage: dict[str, Any] | None = None
        self.usage_unsupported = False
        self.stream_chunks = 0
        self.stream_text = ""

    def _model(self) -> str:
        if self.model is None:
            raise CheckFailedError("no model to test (the models check failed)")
        return self.model

    async def live(self) -> str:
        if not await self.nim.live():
            raise CheckFailedError("/v1/health/live did not answer 200")
        return "/v1/health/live 200"

    async def ready(self) -> str:
        result = await self.nim.request("GET", "/v1/health/ready")
        if not result.ok:
            body = result.json()
            message = body.get("message") if isinstance(body, dict) else None
            raise CheckFailedError(
                f"/v1/health/ready answered {result.status}: {message or 'not ready'}"
            )
        return "/v1/health/ready 200"

    async def models(self) -> str:
        ids = await self.nim.models()
        if not ids:
            raise CheckFailedError("/v1/models lists no model")
        if self.model is None:
            self.model = ids[0]
        elif self.model not in ids:
            self.model = None
            raise CheckFailedError(f"expected model not listed; /v1/models has {ids}")
        return f"serves {', '.join(ids)}"

    async def chat(self) -> str:
        reply = await self.nim.chat(
            self._model(),
            [{"role": "user", "content": _PROMPT}],
            max_tokens=_MAX_TOKENS,
            temperature=0,
        )
        message = (reply.get("choices") or [{}])[0].get("message") or {}
        content = message.get("content")
        if (
            message.get("role") != "assistant"
            or not isinstance(content, str)
            or not content.strip()
        ):
            raise CheckFailedError(f"no assistant answer in {str(reply)[:120]}")
        usage = reply.get("usage") or {}
        total = usage.get("total_tokens")
        if total != (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0):
            raise CheckFailedError(f"usage does not add up: {usage}")
        return f"{usage.get('completion_tokens')} tokens: {content[:48]!r}"

    async def completion(self) -> str:
        reply = await self.nim.completion(self._model(), "The capital of France is", max_tokens=8)
        text = (reply.get("choices") or [{}])[0].get("text")
        if not isinstance(text, str) or not text.strip():
            raise CheckFailedError(f"no completion text in {str(reply)[:120]}")
        return f"{text[:48]!r}"

    async def streaming(self) -> str:
        messages = [{"role": "user", "content": _PROMPT}]
        result = await self.nim.stream_chat(
            self._model(), messages, max_tokens=_MAX_TOKENS, stream_options={"include_usage": True}
        )
        if result.status in (400, 422):  # older servers reject stream_options: stream without
            self.usage_unsupported = True
            result = await self.nim.stream_chat(self._model(), messages, max_tokens=_MAX_TOKENS)
        problems = []
        if result.status != 200:
            raise CheckFailedError(f"stream answered HTTP {result.status}")
        if not result.role_chunk:
            problems.append("no role chunk first")
        if not result.contents:
            problems.append("no content chunks")
        if not result.done:
            problems.append("no [DONE]")
        if result.malformed:
            problems.append(f"{len(result.malformed)} malformed events")
        if problems:
            raise CheckFailedError("; ".join(problems))
        self.stream_usage = result.usage
        self.stream_chunks = len(result.contents)
        self.stream_text = result.text
        first = (result.first_content_s or 0) * 1000
        return f"{len(result.contents)} content chunks, first content {first:.0f} ms, [DONE]"

    async def usage(self) -> str:
        usage = self.stream_usage
        if usage is None:
            why = "the server rejected" if self.usage_unsupported else "no usage chunk for"
            raise CheckFailedError(f"{why} stream_options.include_usage")
        completion = usage.get("completion_tokens")
        prompt = usage.get("prompt_tokens")
        if not isinstance(completion, int) or not isinstance(prompt, int):
            raise CheckFailedError(f"usage lacks token counts: {usage}")
        if not self.stream_chunks <= completion <= _MAX_TOKENS:
            raise CheckFailedError(
                f"usage says {completion} completion tokens but {self.stream_chunks} content "
                f"chunks were streamed (max_tokens {_MAX_TOKENS})"
            )
        if usage.get("total_tokens") != prompt + completion:
            raise CheckFailedError(f"total_tokens != prompt + completion: {usage}")
        detail = f"{completion} tokens in {self.stream_chunks} chunks, prompt {prompt}"
        return detail + await self._tokenized_matches(completion)

    async def _tokenized_matches(self, completion: int) -> str:
        """Where the endpoint has /tokenize: the streamed text re-tokenizes to about the
        counted tokens (± a stop/EOS token and re-tokenization merges)."""
        result = await self.nim.request(
            "POST", "/tokenize", json_body={"model": self._model(), "prompt": self.stream_text}
        )
        body = result.json() if result.ok else None
        count = body.get("count") if isinstance(body, dict) else None
        if not isinstance(count, int):
            return "; /tokenize not offered"
        if abs(count - completion) > max(2, completion // 10):
            raise CheckFailedError(
                f"usage says {completion} completion tokens but the text tokenizes to {count}"
            )
        return f"; the text tokenizes to {count}"

    async def version(self) -> str:
        body = _offered(await self.nim.request("GET", "/v1/version"), "/v1/version")
        release = body.get("release")
        if not isinstance(release, str) or not release:
            raise CheckFailedError(f"/v1/version has no release: {str(body)[:120]}")
        return f"NIM {release} (API {body.get('api', '?')})"

    async def metadata(self) -> str:
        body = _offered(await self.nim.request("GET", "/v1/metadata"), "/v1/metadata")
        names = [body.get(k) for k in ("profile_name", "profile_id", "selectedModelProfileId")]
        active = [n for n in names if isinstance(n, str) and n]
        if not active:
            raise CheckFailedError(f"/v1/metadata names no selected profile: {str(body)[:120]}")
        shown = " / ".join(active)
        if self.expected_profile is None:
            # Verified: the endpoint names its selected profile. Nothing to compare it with.
            return f"selected profile {shown} (no profile was planned to compare with)"
        wanted = self.expected_profile.strip().lower()
        # a name compares with a name and an id with an id: a NIM 1.x profile id is a hash of
        # its manifest, which no name can be turned into (1.x reports only the id)
        comparable = [
            a.lower()
            for a in active
            if bool(_PROFILE_ID.match(a.lower())) is bool(_PROFILE_ID.match(wanted))
        ]
        if not comparable:
            return (
                f"selected profile {shown}; the planned {self.expected_profile} is a "
                f"{'profile id' if _PROFILE_ID.match(wanted) else 'profile name'} and this NIM "
                "reports none to compare it with"
            )
        if wanted not in comparable:
            raise CheckFailedError(f"NIM selected {shown}, not the planned {self.expected_profile}")
        return f"selected profile {shown} (as planned)"

    async def _chat_request(self, **params: Any) -> HttpResult:
        body = {
            "model": self._model(),
            "messages": [{"role": "user", "content": params.pop("prompt", _PROMPT)}],
            **params,
        }
        return await self.nim.request("POST", "/v1/chat/completions", json_body=body)

    async def stop(self) -> str:
        base = _offered(
            await self._chat_request(max_tokens=_MAX_TOKENS, temperature=0, seed=7), "chat"
        )
        text = (_first_choice(base).get("message") or {}).get("content") or ""
        words = text.split()
        if len(words) < 3:
            raise CheckSkippedError(f"the answer is too short to pick a stop word: {text!r}")
        stop_word = words[2]
        cut = _offered(
            await self._chat_request(
                max_tokens=_MAX_TOKENS, temperature=0, seed=7, stop=[stop_word]
            ),
            "stop",
        )
        choice = _first_choice(cut)
        got = (choice.get("message") or {}).get("content") or ""
        if stop_word in got:
            raise CheckFailedError(f"the text goes on past stop {stop_word!r}: {got[:80]!r}")
        if choice.get("finish_reason") != "stop":
            raise CheckFailedError(
                f"finish_reason {choice.get('finish_reason')!r} with stop {stop_word!r}"
            )
        return f"stopped before {stop_word!r}: {got[:48]!r}"

    async def structured_output(self) -> str:
        fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": _ANSWER_SCHEMA}}
        body = _offered(
            await self._chat_request(
                prompt="Answer in JSON: is the sky blue? Give a score.",
                max_tokens=120,
                temperature=0,
                response_format=fmt,
            ),
            "response_format json_schema",
        )
        choice = _first_choice(body)
        text = (choice.get("message") or {}).get("content") or ""
        if choice.get("finish_reason") == "length":
            raise CheckFailedError(f"the JSON was cut by max_tokens: {text[:80]!r}")
        try:
            value = json.loads(text)
        except ValueError:
            raise CheckFailedError(f"the text does not parse as JSON: {text[:80]!r}") from None
        problem = _matches(value, _ANSWER_SCHEMA)
        if problem:
            raise CheckFailedError(f"the JSON does not match the schema: {problem}")
        return f"valid JSON: {text[:56]}"

    async def tool_call(self) -> str:
        name = _TOOL_NAME
        body = _offered(
            await self._chat_request(
                prompt="What is the weather in Paris?",
                max_tokens=80,
                temperature=0,
                tools=[_TOOL],
                tool_choice={"type": "function", "function": {"name": name}},
            ),
            "tool calling",
        )
        calls = (_first_choice(body).get("message") or {}).get("tool_calls") or []
        if not calls or not isinstance(calls[0], dict):
            raise CheckFailedError(f"tool_choice forced {name!r} but no tool call came back")
        function = calls[0].get("function") or {}
        if function.get("name") != name:
            raise CheckFailedError(f"called {function.get('name')!r}, not the forced {name!r}")
        try:
            args = json.loads(function.get("arguments") or "")
        except ValueError:
            raise CheckFailedError(
                f"arguments are not JSON: {function.get('arguments')!r}"
            ) from None
        if not isinstance(args, dict) or not isinstance(args.get("city"), str):
            raise CheckFailedError(f"arguments lack the required 'city': {args!r}")
        return f"{name}({json.dumps(args)[:48]})"

    async def logprobs(self) -> str:
        body = _offered(
            await self._chat_request(max_tokens=4, temperature=0, logprobs=True, top_logprobs=2),
            "logprobs",
        )
        logprobs = _first_choice(body).get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not content or not isinstance(content, list):
            raise CheckFailedError("logprobs were asked for but none came back")
        first = content[0] if isinstance(content[0], dict) else {}
        if not isinstance(first.get("logprob"), int | float) or "token" not in first:
            raise CheckFailedError(f"a logprob entry lacks token/logprob: {str(first)[:80]}")
        tops = len(first.get("top_logprobs") or [])
        return f"{len(content)} tokens with logprobs (first {first['logprob']:.3f}, {tops} alternatives)"

    async def deterministic(self) -> str:
        answers = []
        for _ in range(2):
            reply = await self.nim.chat(
                self._model(),
                [{"role": "user", "content": "List three colours."}],
                max_tokens=16,
                temperature=0,
                seed=7,
            )
            answers.append(((reply.get("choices") or [{}])[0].get("message") or {}).get("content"))
        if answers[0] != answers[1]:
            raise CheckFailedError(
                f"temperature 0 gave different answers: {answers[0]!r} vs {answers[1]!r}"
            )
        return "identical answers at temperature 0"

    async def error_shape(self) -> str:
        result = await self.nim.request("POST", "/v1/chat/completions", data=b'{"model": ')
        if not 400 <= result.status < 500:
            raise CheckFailedError(f"malformed JSON answered HTTP {result.status}, expected 4xx")
        message = result.error_message()
        if message is None:
            raise CheckFailedError(f"HTTP {result.status} without an OpenAI-shaped error body")
        return f"HTTP {result.status}: {message[:60]}"

    async def metrics(self) -> str:
        metrics = await self.nim.metrics()
        missing = metrics.missing()
        if missing:
            raise CheckFailedError(f"/v1/metrics lacks {', '.join(missing)}")
        spelling = metrics.resolve("gpu_cache_usage_perc")
        return f"{len(metrics.names)} series, {metrics.flavour} names ({spelling})"


async def _run_check(name: str, fn: Callable[[], Awaitable[str]], timeout_s: float) -> SmokeCheck:
    start = time.perf_counter()
    try:
        detail = await asyncio.wait_for(fn(), timeout_s)
        passed = True
    except CheckSkippedError as exc:
        return SmokeCheck(name, False, time.perf_counter() - start, str(exc), skipped=True)
    except CheckFailedError as exc:
        detail, passed = str(exc), False
    except NimApiError as exc:
        detail, passed = str(exc), False
    except EndpointError as exc:
        detail, passed = exc.message, False
    except TimeoutError:
        detail, passed = f"no answer within {timeout_s:g} s", False
    return SmokeCheck(name, passed, time.perf_counter() - start, detail)


def _is_unreachable(detail: str) -> bool:
    return any(word in detail for word in ("unreachable", "timed out", "no answer within"))


async def run_smoke_async(
    endpoint: str,
    model: str | None = None,
    timeout_s: float = 30,
    *,
    api_key: str | None = None,
    expected_profile: str | None = None,
) -> SmokeReport:
    """Run every check against ``endpoint`` (``http://host:port``, with or without ``/v1``).
    ``expected_profile``: the NIM profile the plan pinned (name or 64-hex id), which
    ``/v1/metadata`` must show as selected."""
    report = SmokeReport(endpoint=endpoint, model=model, started_at=time.time())
    async with NimClient(endpoint, api_key=api_key, timeout_s=timeout_s) as nim:
        suite = _Suite(nim, model, timeout_s, expected_profile)
        for name in CHECK_NAMES:
            if not suite.reachable:
                report.checks.append(
                    SmokeCheck(name, False, 0.0, "skipped: endpoint unreachable", True)
                )
                continue
            if suite.model is None and name not in _MODEL_FREE:
                report.checks.append(
                    SmokeCheck(name, False, 0.0, "skipped: no model to test", True)
                )
                continue
            check = await _run_check(name, getattr(suite, name), timeout_s)
            if name == "live" and not check.passed and _is_unreachable(check.detail):
                suite.reachable = False
            report.checks.append(check)
        report.model = suite.model
    return report


def run_smoke(
    endpoint: str,
    model: str | None = None,
    timeout_s: float = 30,
    *,
    api_key: str | None = None,
    expected_profile: str | None = None,
) -> SmokeReport:
    """Blocking :func:`run_smoke_async` (not from inside a running event loop)."""
    return asyncio.run(
        run_smoke_async(
            endpoint, model, timeout_s, api_key=api_key, expected_profile=expected_profile
        )
    )


# -- renderers ------------------------------------------------------------------------------
def to_rows(report: SmokeReport) -> list[tuple[str, str, str, str]]:
    """(check, status, milliseconds, detail) per check, for a table."""
    return [(c.name, c.status, f"{c.seconds * 1000:.0f}", c.detail) for c in report.checks]


def to_dict(report: SmokeReport) -> dict[str, Any]:
    return {
        "endpoint": report.endpoint,
        "model": report.model,
        "passed": report.passed,
        "summary": report.summary,
        "skipped": [c.name for c in report.skipped],
        "started_at": report.started_at,
        "seconds": round(report.seconds, 6),
        "checks": [asdict(c) | {"status": c.status} for c in report.checks],
    }


def to_junit_xml(report: SmokeReport) -> str:
    """JUnit XML (one ``testsuite`` of ``testcase`` elements) that CI systems parse."""
    failures = sum(not c.passed and not c.skipped for c in report.checks)
    skipped = sum(c.skipped for c in report.checks)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(report.started_at))
    common = {
        "tests": str(len(report.checks)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{report.seconds:.3f}",
    }
    root = ET.Element("testsuites", {"name": "nimble-smoke", **common})
    suite = ET.SubElement(root, "testsuite", {"name": "nimble.smoke", "timestamp": stamp, **common})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "endpoint", "value": report.endpoint})
    ET.SubElement(props, "property", {"name": "model", "value": report.model or ""})
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": "nimble.smoke", "name": check.name, "time": f"{check.seconds:.3f}"},
        )
        if check.skipped:
            ET.SubElement(case, "skipped", {"message": check.detail})
        elif not check.passed:
            failure = ET.SubElement(
                case, "failure", {"message": check.detail, "type": "SmokeCheckFailedError"}
            )
            failure.text = check.detail
        else:
            ET.SubElement(case, "system-out").text = check.detail
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
