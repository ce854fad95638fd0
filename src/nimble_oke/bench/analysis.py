"""Post-run processing: SSE parsing, token accounting and per-request metrics.

Definitions (all durations in ns, converted to ms only for display):

- **TTFT** = arrival of the first SSE event with non-empty content − actual send time.
  A role-only first chunk (``{"delta": {"role": "assistant"}}``) is not a token and is
  skipped (AIPerf's definition; vLLM's counts it, which under-reports TTFT).
- **TTFB** = response headers received − send time.
- **TTFT from intended** = first content − *intended* send time (open loop: includes the
  client's own send lag, so coordinated omission cannot hide queueing).
- **ITL per token**: for each content event after the first, the gap to the previous
  content event ÷ the tokens it carried; each token is one sample.
- **TPOT** = (e2e − TTFT) / (OSL − tokens in the first content event) (AIPerf's formula;
  GenAI-Perf uses OSL − 1, which is wrong when the first chunk carries several tokens).
- **e2e latency** = arrival of the last byte − send time (and − intended send time).
- **OSL** = ``usage.completion_tokens`` when the server sends it (``include_usage``);
  otherwise the number of content events. A tokenizer-free cross-check (content events,
  whitespace words ÷ 0.75) flags requests where the two disagree.
- **output tokens/s per user** = (OSL − first-event tokens) / (e2e − TTFT) = 1 / TPOT.

An event's arrival time is the time of the socket read that completed it, so events that
arrived in one read share a timestamp (that is what the client could observe).
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


def parse_stream(chunks: Chunks) -> ParsedStream:
    """Split the body into SSE events and time-stamp each by the read that completed it."""
    out = ParsedStream()
    body, ends = decode_body(chunks)
    times = list(chunks.times_ns)
    pos = 0
    size = len(body)
    while pos < size:
        sep = body.find(b"\n\n", pos)
        alt = body.find(b"\r\n\r\n", pos)
        if sep < 0 and alt < 0:
            end, nxt = size, size
        elif alt >= 0 and (sep < 0 or alt < sep):
            end, nxt = alt, alt + 4
        else:
            end, nxt = sep, sep + 2
        block = body[pos:end]
        read = bisect.bisect_left(ends, min(nxt, size))
        at = times[min(read, len(times) - 1)] if times else 0
        pos = nxt
        data = b"\n".join(
            line[5:].lstrip() for line in block.splitlines() if line.startswith(b"data:")
        )
        if not data:
            continue
        if data.strip() == b"[DONE]":
            out.done = True
            continue
        try:
            event = json.loads(data)
        except ValueError:
            out.error = out.error or "unparseable SSE data"
            continue
        if not isinstance(event, dict):
            continue
        if "error" in event or event.get("object") == "error":
            err = event.get("error", event)
            msg = err.get("message", "") if isinstance(err, dict) else str(err)
            out.error = f"stream error: {str(msg)[:200]}"
            continue
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
    return out


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
    """Per-request metrics as columns (one row per measured request, ms / tokens)."""

    index: npt.NDArray[np.int64]
    ok: npt.NDArray[np.bool_]
    error: npt.NDArray[np.int64]
    send_ms: F64  # relative to the run start
    intended_ms: F64
    end_ms: F64
    ttft_ms: F64
    ttfb_ms: F64
    ttft_intended_ms: F64
    ttst_ms: F64  # time to second token (GenAI-Perf's "Time To Second Token")
    e2e_ms: F64
    e2e_intended_ms: F64
    tpot_ms: F64
    osl: F64
    isl: F64
    first_tokens: F64
    per_user_tps: F64
    token_count_flag: npt.NDArray[np.bool_]
    itl_ms: F64  # every token's ITL sample, all requests concatenated
    itl_request: npt.NDArray[np.int64]  # which row each ITL sample belongs to
    messages: dict[int, str]
    token_source: str


def analyze(result: BenchResult) -> RequestTable:
    """Derive every per-request metric from the raw store (cached on the result)."""
    cached = result._cache.get("table")
    if isinstance(cached, RequestTable):
        return cached
    table = _analyze(result)
    result._cache["table"] = table
    return table


def _analyze(result: BenchResult) -> RequestTable:
    store = result.store
    n = store.count
    t0 = result.start_ns
    cols = {
        name: np.full(n, NAN)
        for name in (
            "ttft",
            "ttfb",
            "ttft_i",
            "ttst",
            "e2e",
            "e2e_i",
            "tpot",
            "osl",
            "isl",
            "first",
            "pu",
        )
    }
    error = store.error[:n].copy()
    flags = np.zeros(n, dtype=bool)
    messages = dict(store.messages)
    itl: list[float] = []
    itl_row: list[int] = []
    sources: set[str] = set()
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
            continue
        if not parsed.content_times_ns or not parsed.done:
            error[i] = int(ErrorKind.INCOMPLETE)
            messages[i] = "stream ended without content" if parsed.done else "no [DONE] event"
            continue
        send = int(store.send_ns[i])
        intended = int(store.intended_ns[i])
        last = chunks.times_ns[-1]
        first = parsed.content_times_ns[0]
        n_events = len(parsed.content_texts)
        if parsed.usage_completion is not None:
            osl = parsed.usage_completion
            sources.add("usage")
        else:
            osl = n_events
            sources.add("chunks")
        toks = tokens_per_event(parsed.content_texts, osl)
        words = sum(len(_WORD.findall(t)) for t in parsed.content_texts)
        flags[i] = parsed.usage_completion is not None and not _counts_agree(osl, n_events, words)
        cols["ttft"][i] = (first - send) / 1e6
        cols["ttft_i"][i] = (first - intended) / 1e6
        cols["ttfb"][i] = (int(store.headers_ns[i]) - send) / 1e6
        cols["e2e"][i] = (last - send) / 1e6
        cols["e2e_i"][i] = (last - intended) / 1e6
        cols["osl"][i] = osl
        cols["isl"][i] = parsed.usage_prompt if parsed.usage_prompt is not None else NAN
        cols["first"][i] = toks[0]
        if n_events > 1:
            cols["ttst"][i] = (parsed.content_times_ns[1] - first) / 1e6
        rest = osl - toks[0]
        if rest > 0:
            decode_ms = (last - first) / 1e6
            cols["tpot"][i] = decode_ms / rest
            cols["pu"][i] = rest / (decode_ms / 1e3) if decode_ms > 0 else NAN
        times = parsed.content_times_ns
        for k in range(1, n_events):
            per_token = (times[k] - times[k - 1]) / 1e6 / toks[k]
            itl.extend([per_token] * toks[k])
            itl_row.extend([i] * toks[k])
    ok = error == 0
    send_ms = np.where(sent, (store.send_ns[:n] - t0) / 1e6, NAN)
    end_ms = np.where(store.end_ns[:n] >= 0, (store.end_ns[:n] - t0) / 1e6, NAN)
    return RequestTable(
        index=np.arange(n, dtype=np.int64),
        ok=ok,
        error=error,
        send_ms=send_ms,
        intended_ms=np.where(store.intended_ns[:n] >= 0, (store.intended_ns[:n] - t0) / 1e6, NAN),
        end_ms=end_ms,
        ttft_ms=cols["ttft"],
        ttfb_ms=cols["ttfb"],
        ttft_intended_ms=cols["ttft_i"],
        ttst_ms=cols["ttst"],
        e2e_ms=cols["e2e"],
        e2e_intended_ms=cols["e2e_i"],
        tpot_ms=cols["tpot"],
        osl=cols["osl"],
        isl=cols["isl"],
        first_tokens=cols["first"],
        per_user_tps=cols["pu"],
        token_count_flag=flags,
        itl_ms=np.asarray(itl, dtype=np.float64),
        itl_request=np.asarray(itl_row, dtype=np.int64),
        messages=messages,
        token_source="+".join(sorted(sources)) or "none",
    )


def _counts_agree(usage: int, events: int, words: int) -> bool:
    """True when the server's count matches one token per event, or the word estimate
    (words ÷ 0.75, ±50%: the rule of thumb is coarse for non-English text)."""
    if abs(usage - events) <= max(1, math.ceil(0.02 * usage)):
        return True
    estimate = words / WORDS_PER_TOKEN
    return 0.5 * estimate <= usage <= 1.5 * estimate
