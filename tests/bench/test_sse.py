"""Post-run SSE parsing: every framing the spec allows, one JSON call per stream."""

from __future__ import annotations

from array import array

import pytest

from nimble_oke.bench.analysis import parse_stream
from nimble_oke.bench.records import Chunks

EVENT = b'{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"%s"}}]}'


def _chunks(body: bytes, reads: int = 3) -> Chunks:
    step = max(1, len(body) // reads)
    ends = [*range(step, len(body), step), len(body)]
    return Chunks(array("q", [1000 * (i + 1) for i in range(len(ends))]), array("q", ends), body)


@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n"], ids=["lf", "crlf"])
def test_events_comments_and_multiline_data(sep: bytes) -> None:
    nl = sep[: len(sep) // 2]
    body = sep.join(
        [
            b": keep-alive comment",
            b"data: " + EVENT % b"a",
            b"event: message" + nl + b"data: " + EVENT % b"b",
            b'data: {"choices":[{"delta":' + nl + b'data: {"content":"c"}}]}',
            b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}',
            b"data: [DONE]",
            b"",
        ]
    )
    parsed = parse_stream(_chunks(body))
    assert parsed.content_texts == ["a", "b", "c"]
    assert parsed.done and parsed.error is None
    assert (parsed.usage_prompt, parsed.usage_completion) == (5, 3)
    assert parsed.content_times_ns == sorted(parsed.content_times_ns)


def test_one_bad_event_is_an_error_and_the_rest_still_counts() -> None:
    body = b"data: " + EVENT % b"a" + b"\n\ndata: {not json\n\ndata: " + EVENT % b"b"
    body += b"\n\ndata: [DONE]\n\n"
    parsed = parse_stream(_chunks(body))
    assert parsed.content_texts == ["a", "b"]
    assert parsed.error == "unparseable SSE data"


def test_reasoning_and_completions_text_count_as_content() -> None:
    body = (
        b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
        b'data: {"choices":[{"delta":{"reasoning_content":"think"}}]}\n\n'
        b'data: {"choices":[{"text":"done","index":0}]}\n\ndata: [DONE]\n\n'
    )
    assert parse_stream(_chunks(body)).content_texts == ["think", "done"]
