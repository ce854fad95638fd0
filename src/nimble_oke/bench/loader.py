"""Read benchmark exports back for ``bench diff``: nimble's, AIPerf's, and nimble's older ones.

Three layouts are accepted, found by file name in an export directory (or given as the
JSON file itself):

- ``profile_export_aiperf.json`` + ``profile_export.jsonl`` with nested records
  (``{"metrics": {"time_to_first_token": {"value": …}}, "error": …}``) — written by
  nimble since schema ``nimble-bench/2`` and by AIPerf 0.13 itself;
- ``profile_export_genai_perf.json`` + flat JSONL records (``time_to_first_token_ms``…)
  — nimble's schema ``nimble-bench/1``. Its per-token ``inter_token_latency`` is read as
  ``inter_token_latency_per_token`` and its ``time_per_output_token`` (the same formula as
  today's per-request ``inter_token_latency``) as ``inter_token_latency``, using the
  ``legacy`` names declared in the metric registry.

Files are read defensively: regular files only, bounded in size, and anything that is
not the expected JSON is one :class:`~nimble_oke.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimble_oke.bench.metrics import DISTRIBUTIONS
from nimble_oke.errors import ConfigError

SUMMARY_NAMES = ("profile_export_aiperf.json", "profile_export_genai_perf.json")
RECORDS_NAME = "profile_export.jsonl"
MAX_SUMMARY_BYTES = 64 * 1024 * 1024
MAX_RECORDS_BYTES = 1024 * 1024 * 1024
LEGACY_SCHEMA = "nimble-bench/1"


@dataclass
class Export:
    """A run read back: its summary (current key names) and, if present, per-request
    values (``{"ok": bool, "values": {metric key: number or list}}``)."""

    path: Path
    summary: dict[str, Any]
    records: list[dict[str, Any]] | None


def _read_text(path: Path, limit: int) -> str:
    """The text of a regular file of at most ``limit`` bytes, or one clear error."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path}: not a regular file (a benchmark export is a JSON file)")
    if info.st_size > limit:
        raise ConfigError(f"{path}: {info.st_size:,} bytes, larger than {limit:,}")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not text (not a benchmark export)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _json(text: str, path: Path, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"{path}: not {what} (invalid JSON{where})") from None


def summary_path(path: Path) -> Path:
    """The summary file of an export directory (current name first), or ``path`` itself."""
    if not path.is_dir():
        return path
    for name in SUMMARY_NAMES:
        if (path / name).exists():
            return path / name
    raise ConfigError(f"{path}: no {' or '.join(SUMMARY_NAMES)} in this directory")


def load_export(path: Path) -> Export:
    """Read an export directory or summary file (any of the three layouts)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such export directory or JSON file")
    file = summary_path(path)
    summary = _json(_read_text(file, MAX_SUMMARY_BYTES), file, "a benchmark summary")
    if not isinstance(summary, dict) or "request_throughput" not in summary:
        raise ConfigError(f"{file}: not a benchmark summary (no request_throughput)")
    legacy = summary.get("schema") == LEGACY_SCHEMA or file.name == SUMMARY_NAMES[1]
    if legacy:
        summary = _current_summary(summary)
    records_file = file.parent / RECORDS_NAME
    records = _records(records_file, legacy) if records_file.exists() else None
    return Export(file, summary, records)


def _current_summary(old: dict[str, Any]) -> dict[str, Any]:
    """A ``nimble-bench/1`` summary under today's metric keys."""
    new = {k: v for k, v in old.items() if k not in {m.key for m in DISTRIBUTIONS}}
    for metric in DISTRIBUTIONS:
        if metric.legacy and metric.legacy[0] in old:
            new[metric.key] = old[metric.legacy[0]]
    return new


def _records(path: Path, legacy: bool) -> list[dict[str, Any]]:
    text = _read_text(path, MAX_RECORDS_BYTES)
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError):
            raise ConfigError(f"{path}: line {number} is not JSON") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: line {number} is not a request record")
        out.append(_legacy_record(raw) if legacy else _record(raw))
    return out


def _record(raw: dict[str, Any]) -> dict[str, Any]:
    """A nested (AIPerf-shaped) record: ok when it carries no ``error``."""
    metrics = raw.get("metrics") or {}
    values = {
        key: entry["value"]
        for key, entry in metrics.items()
        if isinstance(entry, dict) and "value" in entry
    }
    return {"ok": "error" not in raw, "values": values}


def _legacy_record(raw: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for metric in DISTRIBUTIONS:
        if metric.legacy and raw.get(metric.legacy[1]) is not None:
            values[metric.key] = raw[metric.legacy[1]]
    return {"ok": bool(raw.get("ok")), "values": values}
