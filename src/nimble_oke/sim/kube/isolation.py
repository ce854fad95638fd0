"""One bad object must never stall a controller for the others: each object's sync runs
on its own, and a failure is logged once per (object, error) — not on every pass — and the
object is retried on the next pass, as a real controller's work queue requeues it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .store import Obj

log = logging.getLogger(__name__)


class Isolated:
    def __init__(self, name: str) -> None:
        self.name = name
        self._last: dict[str, str] = {}  # object uid -> last error text

    def run(self, obj: Obj, sync: Callable[[Obj], None]) -> bool:
        """``sync(obj)``; False (and logged once) when it raised."""
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        try:
            sync(obj)
        except Exception as exc:  # noqa: BLE001 - contained per object, reported below
            text = f"{type(exc).__name__}: {exc}"
            if self._last.get(uid) != text:
                self._last[uid] = text
                log.warning(
                    "%s: syncing %s/%s failed (will retry): %s",
                    self.name,
                    meta.get("namespace", ""),
                    meta.get("name", ""),
                    text,
                )
            return False
        self._last.pop(uid, None)
        return True

    def errors(self) -> dict[str, str]:
        """uid -> the error of objects whose last sync failed (for tests and status)."""
        return dict(self._last)
