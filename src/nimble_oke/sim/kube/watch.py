"""Watch streams: newline-delimited JSON events or length-prefixed protobuf frames, the
initial state (``resourceVersion`` unset or 0, or ``sendInitialEvents=true`` — the
WatchList protocol client-go's reflectors and helm's status watcher use, which ends the
initial state with a BOOKMARK annotated ``k8s.io/initial-events-end``), replay from a
resourceVersion, selector semantics, 410 Expired in-stream, Table rows for kubectl."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from . import apierrors, content, tables, versions
from .resources import ResourceType
from .store import Obj, Store, Watcher, WatchEvent
from .wire import protobuf

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
# The real server sends a bookmark about once a minute; in real seconds here.
BOOKMARK_EVERY_S = 60.0


@dataclass
class WatchRequest:
    rt: ResourceType
    namespace: str | None
    predicate: Callable[[Obj], bool]
    since: str
    timeout: float
    send_initial: bool
    bookmarks: bool
    table: bool
    media: str


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def parse(
    request: web.Request, rt: ResourceType, namespace: str | None, predicate: Callable[[Obj], bool]
) -> WatchRequest:
    q = request.query
    accept = request.headers.get("Accept", "")
    table = "as=Table" in accept
    media = content.JSON
    if not table:
        media = content.choose(accept, protobuf.supports(rt.api_version, rt.kind))
        if media == content.YAML:
            media = content.JSON  # YAML has no streaming form: the server streams JSON
    send_initial = _truthy(q.get("sendInitialEvents"))
    if send_initial and q.get("resourceVersionMatch") != "NotOlderThan":
        raise apierrors.invalid(
            "ListOptions",
            "",
            [
                (
                    "resourceVersionMatch",
                    "FieldValueForbidden",
                    "Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
                    "NotOlderThan",
                )
            ],
            "meta.k8s.io",
        )
    return WatchRequest(
        rt=rt,
        namespace=namespace,
        predicate=predicate,
        since=q.get("resourceVersion") or "",
        timeout=float(q.get("timeoutSeconds") or 1800),
        send_initial=send_initial,
        bookmarks=_truthy(q.get("allowWatchBookmarks")),
        table=table,
        media=media,
    )


class WatchStream:
    def __init__(self, store: Store, stopping: asyncio.Event, req: WatchRequest) -> None:
        self.store = store
        self.stopping = stopping
        self.req = req
        self.visible: set[str] = set()
        self.replay = req.since not in ("", "0") and not req.send_initial

    def _initial(self) -> tuple[list[WatchEvent], apierrors.ApiError | None]:
        req = self.req
        if not self.replay:
            return [
                WatchEvent(self.store.rv, "ADDED", req.rt.key, o)
                for o in self.store.list(req.rt, req.namespace)
            ], None
        try:
            events = self.store.history_since(req.rt.key, int(req.since))
        except ValueError as exc:
            raise apierrors.bad_request(f"invalid resourceVersion {req.since!r}") from exc
        except apierrors.ApiError as exc:  # 410: told in-stream, as the real server does
            return [], exc
        if req.namespace and req.rt.namespaced:
            events = [e for e in events if e.obj["metadata"].get("namespace") == req.namespace]
        return events, None

    async def serve(self, request: web.Request) -> web.StreamResponse:
        req = self.req
        initial, expired = self._initial()  # before prepare: a bad RV is a plain 400
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        watcher = Watcher(
            req.rt.key, req.namespace if req.rt.namespaced else None, queue.put_nowait
        )
        self.store.subscribe(watcher)
        kind = req.media + (";stream=watch" if req.media == content.PROTOBUF else "")
        response = web.StreamResponse(headers={"Content-Type": kind})
        try:
            await response.prepare(request)
            if expired is not None:
                await response.write(self._encode("ERROR", expired.status()))
                return response
            for event in initial:
                await self._send(response, event)
            if req.send_initial:
                await response.write(self._bookmark(initial_end=True))
            await self._follow(response, queue)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unsubscribe(watcher)
        return response

    async def _follow(self, response: web.StreamResponse, queue: asyncio.Queue[WatchEvent]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.req.timeout
        next_bookmark = loop.time() + BOOKMARK_EVERY_S
        while not self.stopping.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                event = await asyncio.wait_for(queue.get(), min(remaining, 0.5))
            except TimeoutError:
                if self.req.bookmarks and loop.time() >= next_bookmark:
                    next_bookmark = loop.time() + BOOKMARK_EVERY_S
                    await response.write(self._bookmark(initial_end=False))
                continue
            await self._send(response, event)

    async def _send(self, response: web.StreamResponse, event: WatchEvent) -> None:
        shown = filtered(event, self.req.predicate, self.visible, self.replay)
        if shown is None:
            return
        obj = shown.obj
        if self.req.table:
            obj = tables.table(self.req.rt, [obj], self.store.clock.wall())
            obj["metadata"] = {"resourceVersion": shown.obj["metadata"].get("resourceVersion")}
        else:
            obj = versions.from_storage(self.req.rt, obj)
        await response.write(self._encode(shown.type, obj))

    def _bookmark(self, *, initial_end: bool) -> bytes:
        meta: Obj = {"resourceVersion": str(self.store.rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        rt = self.req.rt
        return self._encode(
            "BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        )

    def _encode(self, event_type: str, obj: Obj) -> bytes:
        if self.req.media == content.PROTOBUF:
            try:
                return protobuf.watch_frame(self.req.rt.api_version, event_type, obj)
            except (protobuf.ProtobufError, ValueError, TypeError):
                pass
        line = {"type": event_type, "object": obj}
        return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def filtered(
    event: WatchEvent, predicate: Callable[[Obj], bool], visible: set[str], replay: bool
) -> WatchEvent | None:
    """Selector semantics of a filtered watch: an object that starts matching arrives as
    ADDED, one that stops matching as DELETED. ``replay``: events after a resourceVersion,
    whose earlier state the client is assumed to have seen (so MODIFIED stays MODIFIED)."""
    uid = event.obj["metadata"].get("uid", "")
    if event.type == "DELETED":
        if uid in visible or (replay and predicate(event.obj)):
            visible.discard(uid)
            return event
        return None
    if predicate(event.obj):
        kind = event.type
        if kind == "MODIFIED" and uid not in visible and not replay:
            kind = "ADDED"
        visible.add(uid)
        return WatchEvent(event.rv, kind, event.key, event.obj)
    if uid in visible:
        visible.discard(uid)
        return WatchEvent(event.rv, "DELETED", event.key, event.obj)
    return None
