"""A small aiohttp client for a NIM (or any OpenAI-compatible) endpoint.

HTTP statuses are data here (:class:`HttpResult`), so the smoke suite can check error
shapes; connection failures and timeouts raise :class:`~nimble_oke.errors.EndpointError`.
The API key, if any, is only sent as a bearer header and never appears in errors.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

from nimble_oke.errors import EndpointError
from nimble_oke.nim.prometheus import MetricSet, PrometheusParseError

# aiohttp's default 64 KiB line limit breaks long SSE events (bench.md pitfalls).
_READ_BUFFER = 4 * 1024 * 1024


@dataclass
class HttpResult:
    status: int
    content_type: str
    body: bytes
    seconds: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def error_message(self) -> str | None:
        """The message of an OpenAI-shaped error body (``{"error": {...}}`` or
        ``{"object": "error", ...}``), or None when the body is not one."""
        body = self.json()
        if not isinstance(body, dict):
            return None
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("object") == "error" and isinstance(body.get("message"), str):
            return str(body["message"])
        return None


class NimApiError(EndpointError):
    """The endpoint answered with a non-2xx status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass
class StreamResult:
    """What one streamed request produced (events parsed after the stream ended)."""

    status: int
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    malformed: list[str] = field(default_factory=list)
    first_event_s: float | None = None
    first_content_s: float | None = None
    seconds: float = 0.0
    request_id: str | None = None  # the server's x-request-id header, when it sends one

    @property
    def role_chunk(self) -> bool:
        """The first event carries the assistant role (chat streams)."""
        if not self.events:
            return False
        choices = self.events[0].get("choices") or [{}]
        return (choices[0].get("delta") or {}).get("role") == "assistant"

    @property
    def contents(self) -> list[str]:
        """Non-empty content pieces (chat ``delta.content`` or completion ``text``)."""
        pieces = []
        for event in self.events:
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or choice.get("text")
                if text:
                    pieces.append(text)
        return pieces

    @property
    def text(self) -> str:
        return "".join(self.contents)

    @property
    def usage(self) -> dict[str, Any] | None:
        for event in reversed(self.events):
            if isinstance(event.get("usage"), dict):
                return dict(event["usage"])
        return None

    @property
    def finish_reason(self) -> str | None:
        for event in reversed(self.events):
            for choice in event.get("choices") or []:
                if choice.get("finish_reason"):
                    return str(choice["finish_reason"])
        return None


class NimClient:
    """``async with NimClient("http://host:8000") as nim: await nim.models()``."""

    def __init__(
        self, endpoint: str, *, api_key: str | None = None, timeout_s: float = 30.0
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        if self.endpoint.endswith("/v1"):
            self.endpoint = self.endpoint[:-3]
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> NimClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            headers=self._headers,
            read_bufsize=_READ_BUFFER,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use NimClient as an async context manager")
        return self._session

    def _unreachable(self, path: str, exc: BaseException) -> EndpointError:
        kind = (
            "timed out" if isinstance(exc, asyncio.TimeoutError | TimeoutError) else "unreachable"
        )
        return EndpointError(
            f"{self.endpoint}{path} {kind}: {type(exc).__name__}",
            hint="check the endpoint URL, the port-forward or load balancer, and the pod status",
        )

    # -- raw ---------------------------------------------------------------------------------
    async def request(
        self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None
    ) -> HttpResult:
        start = time.perf_counter()
        kwargs: dict[str, Any] = {}
        if json_body is not None:
            kwargs["json"] = json_body
        elif data is not None:
            kwargs["data"] = data
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            async with self.session.request(method, self.endpoint + path, **kwargs) as resp:
                body = await resp.read()
                return HttpResult(resp.status, resp.content_type, body, time.perf_counter() - start)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unreachable(path, exc) from exc

    async def _json_ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        result = await self.request(method, path, json_body=body)
        payload = result.json()
        if not result.ok:
            raise NimApiError(
                result.status, result.error_message() or result.body[:200].decode(errors="replace")
            )
        if not isinstance(payload, dict):
            raise EndpointError(
                f"{self.endpoint}{path} answered with a body that is not a JSON object"
            )
        return payload

    # -- NIM API ------------------------------------------------------------------------------
    async def live(self) -> bool:
        return (await self.request("GET", "/v1/health/live")).ok

    async def ready(self) -> bool:
        return (await self.request("GET", "/v1/health/ready")).ok

    async def models(self) -> list[str]:
        payload = await self._json_ok("GET", "/v1/models")
        data = payload.get("data")
        if not isinstance(data, list):
            raise EndpointError("/v1/models did not return an OpenAI model list")
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]

    async def chat(
        self, model: str, messages: list[dict[str, Any]], **params: Any
    ) -> dict[str, Any]:
        return await self._json_ok(
            "POST", "/v1/chat/completions", {"model": model, "messages": messages, **params}
        )

    async def completion(self, model: str, prompt: str, **params: Any) -> dict[str, Any]:
        return await self._json_ok(
            "POST", "/v1/completions", {"model": model, "prompt": prompt, **params}
        )

    async def stream(self, path: str, body: dict[str, Any]) -> StreamResult:
        """POST ``body`` with ``stream: true`` and collect the SSE events."""
        start = time.perf_counter()
        try:
            async with self.session.post(
                self.endpoint + path, json={**body, "stream": True}
            ) as resp:
                result = StreamResult(resp.status, request_id=resp.headers.get("x-request-id"))
                if resp.status != 200:
                    await resp.read()
                    result.seconds = time.perf_counter() - start
                    return result
                async for raw in resp.content:
                    line = raw.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    now = time.perf_counter() - start
                    if result.first_event_s is None:
                        result.first_event_s = now
                    if data == b"[DONE]":
                        result.done = True
                        continue
                    try:
                        event = json.loads(data)
                    except ValueError:
                        result.malformed.append(data[:80].decode(errors="replace"))
                        continue
                    result.events.append(event)
                    if result.first_content_s is None and StreamResult(200, [event]).contents:
                        result.first_content_s = now
                result.seconds = time.perf_counter() - start
                return result
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unreachable(path, exc) from exc

    async def stream_chat(
        self, model: str, messages: list[dict[str, Any]], **params: Any
    ) -> StreamResult:
        return await self.stream(
            "/v1/chat/completions", {"model": model, "messages": messages, **params}
        )

    async def stream_completion(self, model: str, prompt: str, **params: Any) -> StreamResult:
        return await self.stream("/v1/completions", {"model": model, "prompt": prompt, **params})

    async def metrics_text(self) -> str:
        result = await self.request("GET", "/v1/metrics")
        if not result.ok:
            raise NimApiError(result.status, "/v1/metrics is not available")
        return result.body.decode(errors="replace")

    async def metrics(self) -> MetricSet:
        text = await self.metrics_text()
        try:
            return MetricSet.parse(text)
        except PrometheusParseError as exc:
            raise EndpointError(f"/v1/metrics is not Prometheus text: {exc}") from exc
