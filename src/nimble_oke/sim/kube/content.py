"""Content types as the real API server handles them: request bodies in JSON, YAML or
Kubernetes protobuf; responses in the first media type of ``Accept`` the server can produce
(protobuf for built-in kinds, JSON and YAML for everything), 406 when none, 415 for a body
in a format it does not read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import apierrors
from .wire import protobuf

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = protobuf.MEDIA_TYPE
# What the real server lists in its 406/415 messages, in its order.
BUILTIN_TYPES = (JSON, YAML, PROTOBUF)
CUSTOM_TYPES = (JSON, YAML)


@dataclass(frozen=True)
class MediaRange:
    type: str  # e.g. application/json, application/*, */*
    params: dict[str, str]
    q: float


def parse_accept(header: str) -> list[MediaRange]:
    """Media ranges by preference (q, then order), as Go's goautoneg sorts them."""
    ranges: list[tuple[float, int, MediaRange]] = []
    for index, part in enumerate(p for p in header.split(",") if p.strip()):
        name, *raw_params = (x.strip() for x in part.split(";"))
        params: dict[str, str] = {}
        q = 1.0
        for param in raw_params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            else:
                params[key.strip()] = value.strip()
        ranges.append((-q, index, MediaRange(name.lower(), params, q)))
    return [r for _, _, r in sorted(ranges, key=lambda t: (t[0], t[1])) if r.q > 0]


def choose(accept: str | None, protobuf_ok: bool) -> str:
    """The media type to answer in; 406 NotAcceptable when ``Accept`` allows none."""
    offered = BUILTIN_TYPES if protobuf_ok else CUSTOM_TYPES
    if not accept:
        return JSON
    for media in parse_accept(accept):
        if media.params.get("as"):  # Table / PartialObjectMetadata: handled by the caller
            continue
        if media.type in ("*/*", "application/*"):
            return JSON
        if media.type in offered:
            return media.type
    raise apierrors.ApiError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: {', '.join(offered)}",
    )


def render(body: Any, status: int, media: str) -> web.Response:
    """``body`` (a JSON-shaped object) in ``media``; protobuf falls back to JSON for an
    object the schema cannot encode (a custom resource reached through a built-in path)."""
    if media == PROTOBUF and isinstance(body, dict):
        try:
            return web.Response(body=protobuf.encode(body), status=status, content_type=PROTOBUF)
        except (protobuf.ProtobufError, ValueError, TypeError):
            pass
    if media == YAML:
        text = yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
        return web.Response(text=text, status=status, content_type=YAML)
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type=JSON
    )


def media_of(content_type: str | None) -> str:
    return (content_type or JSON).split(";", 1)[0].strip().lower() or JSON


def decode_body(raw: bytes, content_type: str | None, kind: str, builtin: bool) -> Any:
    """The request body as a JSON-shaped value. 415 for a media type the server does not
    read for this resource, 400 BadRequest (the real wording) for a body it cannot decode."""
    media = media_of(content_type)
    accepted = BUILTIN_TYPES if builtin else CUSTOM_TYPES
    if media not in accepted:
        raise apierrors.ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(accepted)}",
        )
    if media == PROTOBUF:
        try:
            return protobuf.decode(raw)[2]
        except (protobuf.ProtobufError, UnicodeDecodeError) as exc:
            raise _unrecognized(kind, str(exc), raw) from exc
    try:
        return yaml.safe_load(raw) if media == YAML else json.loads(raw or b"{}")
    except (ValueError, yaml.YAMLError) as exc:
        raise _unrecognized(kind, _json_error(exc), raw) from exc


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"couldn't get version/kind; json parse error: {exc.msg}"
    return f"error converting YAML to JSON: {exc}"


def _unrecognized(kind: str, problem: str, raw: bytes) -> apierrors.ApiError:
    """transformDecodeError's wording (apiserver endpoints/handlers/rest.go)."""
    return apierrors.bad_request(
        f"the object provided is unrecognized (must be of type {kind}): {problem} ({_summary(raw)})"
    )


def _summary(data: bytes, limit: int = 30) -> str:
    """summarizeData (same file): JSON-looking bodies as text, others in hex."""
    if not data:
        return "<empty>"
    head = data[:limit]
    text = head.decode("utf-8", "replace") if data[:1] == b"{" else head.hex()
    return text + (" ..." if len(data) > limit else "")
