"""Request context, replies, routing and the OCI conventions shared by every service:
pagination (``limit``/``page`` -> ``opc-next-page``), ``etag``/``if-match``, 202 + work
request ids."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDictProxy, MultiMapping

from nimble_oke.sim.oci.api_error import ApiError, invalid

if TYPE_CHECKING:
    from nimble_oke.sim.oci.world import Resource, World


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able value, bytes (raw), or None (no body)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Ctx:
    world: World
    region: str
    method: str
    op: str
    params: dict[str, str]
    query: MultiMapping[str]
    headers: CIMultiDictProxy[str]
    body: bytes
    request_id: str

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise invalid("The request body is not valid JSON") from exc
        if not isinstance(data, dict):
            raise invalid("The request body must be a JSON object")
        return data

    def q(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)

    def require_q(self, name: str) -> str:
        value = self.query.get(name)
        if not value:
            raise ApiError("MissingParameter", f"Missing required query parameter {name}")
        return value


Handler = Callable[[Ctx], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    op: str  # OCI operation name (CamelCase, as in the API reference)
    handler: Handler
    public: bool = False  # no signature (pre-authenticated requests)
    streamed_body: bool = False  # body not signed (Object Storage put_object / upload_part)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        op: str,
        handler: Handler,
        public: bool = False,
        streamed_body: bool = False,
    ) -> None:
        """``template`` like ``/20180222/clusters/{clusterId}``; ``{x:path}`` spans slashes."""
        regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", template)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        pattern = re.compile(f"^{regex}$")
        self.routes.append(Route(method, pattern, op, handler, public, streamed_body))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m:
                if route.method == method:
                    return route, m.groupdict()
                allowed = True
        if allowed:
            # OCI's API errors page, word for word
            raise ApiError(
                "MethodNotAllowed", "The target resource does not support the HTTP method.", 405
            )
        raise ApiError(
            "NotFound",
            "There is no operation supported at the URI path and HTTP method you specified "
            "in the request.",
            404,
        )


def ok(body: Any, res: Resource | None = None, status: int = 200) -> Reply:
    headers = {"etag": res.etag} if res is not None else {}
    return Reply(status, body, headers)


def accepted(work_request_id: str) -> Reply:
    return Reply(202, None, {"opc-work-request-id": work_request_id})


def no_content() -> Reply:
    return Reply(204, None)


def check_if_match(ctx: Ctx, res: Resource) -> None:
    wanted = ctx.headers.get("if-match")
    if wanted and wanted != res.etag:
        raise ApiError(
            "NoEtagMatch", f"The if-match etag {wanted} does not match the resource's etag", 412
        )


def paginate(ctx: Ctx, items: list[Any], default_limit: int = 1000) -> Reply:
    """OCI list paging: ``limit`` + opaque ``page`` token in, ``opc-next-page`` header out."""
    try:
        limit = int(ctx.q("limit") or default_limit)
        start = int(ctx.q("page") or 0)
    except ValueError as exc:
        raise invalid("limit and page must be valid") from exc
    if limit < 1 or start < 0:
        raise invalid("limit must be >= 1")
    chunk = items[start : start + limit]
    headers = {}
    if start + limit < len(items):
        headers["opc-next-page"] = str(start + limit)
    return Reply(200, chunk, headers)


def sort_and_filter(
    ctx: Ctx, items: list[dict[str, Any]], name_field: str = "displayName"
) -> list[dict[str, Any]]:
    """The common list filters: displayName/name, lifecycleState, sortBy TIMECREATED|DISPLAYNAME."""
    name = ctx.q("displayName") or ctx.q("name")
    state = ctx.q("lifecycleState")
    out = [
        i
        for i in items
        if (not name or i.get(name_field) == name)
        and (not state or i.get("lifecycleState") == state)
    ]
    sort_by = (ctx.q("sortBy") or "TIMECREATED").upper()
    key = "timeCreated" if sort_by == "TIMECREATED" else name_field
    reverse = (ctx.q("sortOrder") or ("DESC" if key == "timeCreated" else "ASC")).upper() == "DESC"
    return sorted(out, key=lambda i: str(i.get(key) or ""), reverse=reverse)


def apply_updates(wire: dict[str, Any], body: dict[str, Any], keys: tuple[str, ...]) -> None:
    """An Update call: the fields the body sets replace the resource's (absent or null
    fields stay as they are)."""
    for key in keys:
        if body.get(key) is not None:
            wire[key] = body[key]


def tags(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "freeformTags": dict(body.get("freeformTags") or {}),
        "definedTags": dict(body.get("definedTags") or {}),
    }
