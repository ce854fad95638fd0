"""The smoke suite: does a NIM endpoint answer like NIM should?

Ten checks, each recorded with its name, result, duration and a one-line detail: live,
ready, models, chat, completion, streaming, usage, deterministic, error_shape, metrics.
A check whose prerequisite failed (no reachable endpoint, no model) is *skipped*, which
counts as not passed. Renderers: :func:`to_rows` (a table), :func:`to_dict` (JSON) and
:func:`to_junit_xml` (JUnit XML for CI systems).
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from nimble_oke.errors import EndpointError
from nimble_oke.nim.client import NimApiError, NimClient

CHECK_NAMES = (
    "live",
    "ready",
    "models",
    "chat",
    "completion",
    "streaming",
    "usage",
    "deterministic",
    "error_shape",
    "metrics",
)
_MAX_TOKENS = 24
_PROMPT = "In one sentence, what is an inference endpoint?"


class CheckFailedError(Exception):
    """A smoke check did not pass; the message is the check's detail."""


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
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[SmokeCheck]:
        return [c for c in self.checks if not c.passed]

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.checks)

    @property
    def summary(self) -> str:
        ok = sum(c.passed for c in self.checks)
        return f"{ok}/{len(self.checks)} passed"


class _Suite:
    def __init__(self, nim: NimClient, model: str | None, timeout_s: float) -> None:
        self.nim = nim
        self.model = model
        self.timeout_s = timeout_s
        self.reachable = True
        self.stream_usage: dict[str, Any] | None = None
        self.usage_unsupported = False
        self.stream_chunks = 0

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
        return f"{completion} tokens in {self.stream_chunks} chunks, prompt {prompt}"

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
    endpoint: str, model: str | None = None, timeout_s: float = 30, *, api_key: str | None = None
) -> SmokeReport:
    """Run every check against ``endpoint`` (``http://host:port``, with or without ``/v1``)."""
    report = SmokeReport(endpoint=endpoint, model=model, started_at=time.time())
    async with NimClient(endpoint, api_key=api_key, timeout_s=timeout_s) as nim:
        suite = _Suite(nim, model, timeout_s)
        for name in CHECK_NAMES:
            if not suite.reachable:
                report.checks.append(
                    SmokeCheck(name, False, 0.0, "skipped: endpoint unreachable", True)
                )
                continue
            if suite.model is None and name not in (
                "live",
                "ready",
                "models",
                "error_shape",
                "metrics",
            ):
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
    endpoint: str, model: str | None = None, timeout_s: float = 30, *, api_key: str | None = None
) -> SmokeReport:
    """Blocking :func:`run_smoke_async` (not from inside a running event loop)."""
    return asyncio.run(run_smoke_async(endpoint, model, timeout_s, api_key=api_key))


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
