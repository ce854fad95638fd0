"""Post-run processing: HTTP de-framing, SSE parsing, token accounting, base columns.

Per request this records *observations* — when it was sent (and meant to be sent), when
the response head, the first, second and last content event arrived, the output and
input token counts and the tokens of the first event — plus two kinds of samples: the
gap between consecutive content events (AIPerf's inter-chunk latency) and that gap split
per token (each token one sample). The metrics (TTFT, ITL, latency, …) are formulas over
these columns, each declared once in :mod:`nimble_oke.bench.metrics`.

- A content event is an SSE event with non-empty ``delta.content`` (or
  ``reasoning_content``, or ``text``): a role-only first chunk is not a token (AIPerf's
  definition; vLLM's bench counts it, which under-reports TTFT).
- OSL = ``usage.completion_tokens`` when the server sends it (``include_usage``),
  otherwise the number of content events. Tokens are split over events one each when the
  counts match, otherwise in proportion to each event's characters. A tokenizer-free
  cross-check (events, whitespace words ÷ 0.75) flags requests where the server's count
  disagrees.
- An event's arrival time is the time of the socket read that completed it, so events
  that arrived in one read share a timestamp (what the client could observe).
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nimble_oke.bench.http1 import decode_body
from nimble_oke.bench.prompts import WORDS_PER_TOKEN
from nimble_oke.bench.records import Chunks, ErrorKind
from nimble_oke.bench.result import BenchResult

F64 = npt.NDArray[np.float64]
_WORD = re.compile(r"\S+")
NAN = float("nan")


@dataclass
class ParsedStream:
    """What one response body contained."""

    content_times_ns: list[int] = field(default_factory=list)
    content_texts: list[str] = field(default_factory=list)
    usage_completion: int | None = None
    usage_prompt: int | None = None
    done: bool = False
    error: str | None = None


def _content_of(event: dict[str, Any]) -> str:
    choices = event.get("choices") or []
    if len(choices) == 1 and isinstance(choices[0], dict):  # the usual shape, fast
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict) and len(delta) <= 2 and "reasoning_content" not in delta:
            value = delta.get("content")
            text = choice.get("text")
            if not isinstance(text, str):
                return value if isinstance(value, str) else ""
    parts: list[str] = []
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict):
            for key in ("content", "reasoning_content"):
                value = delta.get(key)
                if isinstance(value, str):
                    parts.append(value)
        text = choice.get("text")
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)


def sse_events(body: bytes) -> list[tuple[bytes, int]]:
    """The ``data`` of each SSE event and the body offset just after it."""
    out: list[tuple[bytes, int]] = []
    if b"\r" not in body:  # the usual framing ("\n\n"): one split, no search per event
        pos = 0
        for block in body.split(b"\n\n"):
            pos += len(block) + 2
            if block.startswith(b"data:") and b"\n" not in block:
                out.append((block[5:].lstrip(), pos))
            elif block:
                out.append((_data_of(block), pos))
        return out
    pos, size = 0, len(body)
    while pos < size:
        sep, alt = body.find(b"\n\n", pos), body.find(b"\r\n\r\n", pos)
        if sep < 0 and alt < 0:
            end, nxt = size, size
        elif alt >= 0 and (sep < 0 or alt < sep):
            end, nxt = alt, alt + 4
        else:
            end, nxt = sep, sep + 2
        out.append((_data_of(body[pos:end]), nxt))
        pos = nxt
    return out


def _data_of(block: bytes) -> bytes:
    return b"\n".join(line[5:].lstrip() for line in block.splitlines() if line.startswith(b"data:"))


def _decode_events(datas: list[bytes]) -> list[Any]:
    """All JSON payloads of one stream in one ``json.loads`` call (one C call instead of
    one per event); per event, with ``None`` for an unparseable one, if that fails."""
    try:
        decoded = json.loads(b"[" + b",".join(datas) + b"]")
        if isinstance(decoded, list) and len(decoded) == len(datas):
            return decoded
    except ValueError:
        pass
    out: list[Any] = []
    for data in datas:
        try:
            out.append(json.loads(data))
        except ValueError:
            out.append(None)
    return out


def parse_stream(chunks: Chunks) -> ParsedStream:
    """Split the body into SSE events and time-stamp each by the read that completed it."""
    out = ParsedStream()
    body, ends = decode_body(chunks)
    times = list(chunks.times_ns)
    size = len(body)
    datas: list[bytes] = []
    stamps: list[int] = []
    for data, nxt in sse_events(body):
        if not data:
            continue
        if data.strip() == b"[DONE]":
            out.done = True
            continue
        read = bisect.bisect_left(ends, min(nxt, size))
        datas.append(data)
        stamps.append(times[min(read, len(times) - 1)] if times else 0)
    for event, at in zip(_decode_events(datas), stamps, strict=True):
        if event is None:
            out.error = out.error or "unparseable SSE data"
        elif isinstance(event, dict):
            _take(out, event, at)
    return out


def _take(out: ParsedStream, event: dict[str, Any], at: int) -> None:
    if "error" in event or event.get("object") == "error":
        err = event.get("error", event)
        msg = err.get("message", "") if isinstance(err, dict) else str(err)
        out.error = f"stream error: {str(msg)[:200]}"
        return
    usage = event.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("completion_tokens"), int):
            out.usage_completion = usage["completion_tokens"]
        if isinstance(usage.get("prompt_tokens"), int):
            out.usage_prompt = usage["prompt_tokens"]
    text = _content_of(event)
    if text:
        out.content_times_ns.append(at)
        out.content_texts.append(text)


def tokens_per_event(texts: list[str], total: int) -> list[int]:
    """Split ``total`` tokens over content events: one each when the counts match, else in
    proportion to each event's characters (largest-remainder rounding, at least 1 each)."""
    n = len(texts)
    if n == 0:
        return []
    if total == n or total < n:
        return [1] * n
    weights = np.array([max(1, len(t)) for t in texts], dtype=np.float64)
    extra = total - n  # every event carries at least one token
    share = weights / weights.sum() * extra
    base = np.floor(share).astype(np.int64)
    remainder = extra - int(base.sum())
    order = np.argsort(-(share - base), kind="stable")[:remainder]
    base[order] += 1
    return [int(b) + 1 for b in base]


@dataclass
class RequestTable:
    """What each measured request observed, as columns (one row per request).

    Only *base* observations live here — times in ms since the run start, token counts,
    per-event samples. Every metric is a formula over them, declared once in
    :mod:`nimble_oke.bench.metrics`; :meth:`values` evaluates one (cached)."""

    index: npt.NDArray[np.int64]
    ok: npt.NDArray[np.bool_]
    error: npt.NDArray[np.int64]
    send_ms: F64  # when the request was written
    intended_ms: F64  # when the schedule wanted it written
    end_ms: F64  # when the response was complete (or failed)
    headers_ms: F64  # response head received
    first_ms: F64  # first SSE event with content
    second_ms: F64  # second content event
    last_ms: F64  # last content event
    osl: F64
    isl: F64
    first_tokens: F64  # tokens carried by the first content event
    token_count_flag: npt.NDArray[np.bool_]
    itl_ms: F64  # per token: gap ÷ tokens of the later event, one sample per token
    itl_request: npt.NDArray[np.int64]  # the row of each per-token sample
    icl_ms: F64  # per content event: gap to the previous content event (AIPerf's ICL)
    icl_request: npt.NDArray[np.int64]
    messages: dict[int, str]
    token_source: str
    _values: dict[str, F64] = field(default_factory=dict, repr=False)

    def values(self, key: str) -> F64:
        """Per-request values of the registered metric ``key`` (NaN where undefined)."""
        cached = self._values.get(key)
        if cached is None:
            from nimble_oke.bench.metrics import BY_KEY

            cached = self._values[key] = BY_KEY[key].per_request(self)
        return cached

    # the figures other modules use most, by their short names
    @property
    def ttft_ms(self) -> F64:
        return self.values("time_to_first_token")

    @property
    def e2e_ms(self) -> F64:
        return self.values("request_latency")

    @property
    def tpot_ms(self) -> F64:
        return self.values("inter_token_latency")

    @property
    def ttft_intended_ms(self) -> F64:
        return self.values("time_to_first_token_from_intended_send")


def analyze(result: BenchResult) -> RequestTable:
    """Derive every per-request observation from the raw store (cached on the result)."""
    cached = result._cache.get("table")
    if isinstance(cached, RequestTable):
        return cached
    table = _analyze(result)
    result._cache["table"] = table
    return table


COLUMNS = ("headers", "first", "second", "last", "osl", "isl", "first_tokens")


@dataclass
class _Rows:
    """Accumulates the per-request observations while the streams are parsed."""

    n: int
    cols: dict[str, F64] = field(init=False)
    flags: npt.NDArray[np.bool_] = field(init=False)
    itl: list[float] = field(default_factory=list)
    itl_row: list[int] = field(default_factory=list)
    icl: list[float] = field(default_factory=list)
    icl_row: list[int] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.cols = {name: np.full(self.n, NAN) for name in COLUMNS}
        self.flags = np.zeros(self.n, dtype=bool)

    def add(self, i: int, parsed: ParsedStream, t0: int, headers_ns: int) -> None:
        """One successful stream: its event times, token split and samples."""
        times = parsed.content_times_ns
        n_events = len(times)
        if parsed.usage_completion is not None:
            osl = parsed.usage_completion
            self.sources.add("usage")
        else:
            osl = n_events
            self.sources.add("chunks")
        toks = tokens_per_event(parsed.content_texts, osl)
        words = sum(len(_WORD.findall(t)) for t in parsed.content_texts)
        self.flags[i] = parsed.usage_completion is not None and not _counts_agree(
            osl, n_events, words
        )
        c = self.cols
        c["headers"][i] = (headers_ns - t0) / 1e6 if headers_ns >= 0 else NAN
        c["first"][i] = (times[0] - t0) / 1e6
        c["last"][i] = (times[-1] - t0) / 1e6
        c["second"][i] = (times[1] - t0) / 1e6 if n_events > 1 else NAN
        c["osl"][i] = osl
        c["isl"][i] = parsed.usage_prompt if parsed.usage_prompt is not None else NAN
        c["first_tokens"][i] = toks[0]
        for k in range(1, n_events):
            gap = (times[k] - times[k - 1]) / 1e6
            self.icl.append(gap)
            self.icl_row.append(i)
            self.itl.extend([gap / toks[k]] * toks[k])
            self.itl_row.extend([i] * toks[k])


def _analyze(result: BenchResult) -> RequestTable:
    store = result.store
    n = store.count
    t0 = result.start_ns
    rows = _Rows(n)
    error = store.error[:n].copy()
    messages = dict(store.messages)
    sent = store.send_ns[:n] >= 0
    error[~sent & (error == 0)] = int(ErrorKind.NOT_SENT)
    for i in range(n):
        chunks = store.chunks[i]
        if not sent[i] or error[i] != 0 or chunks is None:
            continue
        parsed = parse_stream(chunks)
        if parsed.error is not None:
            error[i] = int(ErrorKind.STREAM_ERROR)
            messages[i] = parsed.error
        elif not parsed.content_times_ns or not parsed.done:
            error[i] = int(ErrorKind.INCOMPLETE)
            messages[i] = "stream ended without content" if parsed.done else "no [DONE] event"
        else:
            rows.add(i, parsed, t0, int(store.headers_ns[i]))

    def rel(column: npt.NDArray[np.int64]) -> F64:
        return np.where(column[:n] >= 0, (column[:n] - t0) / 1e6, NAN)

    c = rows.cols
    return RequestTable(
        index=np.arange(n, dtype=np.int64),
        ok=error == 0,
        error=error,
        send_ms=rel(store.send_ns),
        intended_ms=rel(store.intended_ns),
        end_ms=rel(store.end_ns),
        headers_ms=c["headers"],
        first_ms=c["first"],
        second_ms=c["second"],
        last_ms=c["last"],
        osl=c["osl"],
        isl=c["isl"],
        first_tokens=c["first_tokens"],
        token_count_flag=rows.flags,
        itl_ms=np.asarray(rows.itl, dtype=np.float64),
        itl_request=np.asarray(rows.itl_row, dtype=np.int64),
        icl_ms=np.asarray(rows.icl, dtype=np.float64),
        icl_request=np.asarray(rows.icl_row, dtype=np.int64),
        messages=messages,
        token_source="+".join(sorted(rows.sources)) or "none",
    )


def _counts_agree(usage: int, events: int, words: int) -> bool:
    """True when the server's count matches one token per event, or the word estimate
    (words ÷ 0.75, ±50%: the rule of thumb is coarse for non-English text)."""
    if abs(usage - events) <= max(1, math.ceil(0.02 * usage)):
        return True
    estimate = words / WORDS_PER_TOKEN
    return 0.5 * estimate <= usage <= 1.5 * estimate
