"""Reading files the user names (config, chart values, benchmark results) without trusting them.

One reader for every command that reads a user file, so each refuses the same way — one
line naming the file and what is wrong, the input error's exit code, never a hang, a crash
or a bug report:

- only regular files: a directory, FIFO (``mkfifo``: opening it would wait for a writer),
  device (``/dev/zero``: endless) or socket is refused before a byte is read;
- a size bound checked before reading and while reading (the file may grow);
- text must be UTF-8: binary files (NUL bytes), UTF-16/32 and bad UTF-8 are named as such;
- YAML and JSON are parsed within bounds, duplicate keys refused
  (:mod:`nimble_oke.safe_parse`).

Callers pass the error class to raise (default :class:`ConfigError`, exit 2).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from nimble_oke.errors import ConfigError
from nimble_oke.safe_parse import (
    CONFIG_LIMITS,
    RESULTS_LIMITS,
    VALUES_LIMITS,
    ErrorFactory,
    Limits,
    load_json,
    load_yaml,
)

__all__ = [
    "CONFIG_LIMITS",
    "RESULTS_LIMITS",
    "VALUES_LIMITS",
    "Limits",
    "decode_text",
    "load_json",
    "load_yaml",
    "read_user_bytes",
    "read_user_json",
    "read_user_text",
    "read_user_yaml",
]


def read_user_bytes(
    path: str | Path,
    *,
    what: str,
    limits: Limits = CONFIG_LIMITS,
    error: ErrorFactory = ConfigError,
) -> bytes:
    """The bytes of a regular file of at most ``limits.max_bytes``, or ``error``."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except PermissionError:
        raise error(f"{what} {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be opened: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is {_file_type(info.st_mode)}, not a regular file")
        if info.st_size > limits.max_bytes:
            raise error(_too_big(what, path, info.st_size, limits))
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            size += len(chunk)
            if size > limits.max_bytes:  # it grew while we read
                raise error(_too_big(what, path, size, limits))
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {_reason(exc)}") from None
    finally:
        os.close(fd)


def decode_text(data: bytes, source: str, *, error: ErrorFactory = ConfigError) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is accepted), or ``error`` naming what it is."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise error(f"{source} is UTF-16 or UTF-32 text; save it as UTF-8")
    if b"\x00" in data:
        raise error(f"{source} is a binary file (it contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            f"{source} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "save it as UTF-8"
        ) from None


def read_user_text(
    path: str | Path,
    *,
    what: str,
    limits: Limits = CONFIG_LIMITS,
    error: ErrorFactory = ConfigError,
) -> str:
    data = read_user_bytes(path, what=what, limits=limits, error=error)
    return decode_text(data, f"{what} {path}", error=error)


def read_user_yaml(
    path: str | Path,
    *,
    what: str,
    limits: Limits = CONFIG_LIMITS,
    error: ErrorFactory = ConfigError,
) -> Any:
    text = read_user_text(path, what=what, limits=limits, error=error)
    return load_yaml(text, str(path), limits=limits, error=error)


def read_user_json(
    path: str | Path,
    *,
    what: str,
    limits: Limits = RESULTS_LIMITS,
    error: ErrorFactory = ConfigError,
) -> Any:
    text = read_user_text(path, what=what, limits=limits, error=error)
    return load_json(text, f"{what} {path}", limits=limits, error=error)


# --- words -----------------------------------------------------------------------------------


def _too_big(what: str, path: str | Path, size: int, limits: Limits) -> str:
    return (
        f"{what} {path} is {_size(size)}; the limit is {_size(limits.max_bytes)} "
        "(is it the right file?)"
    )


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} bytes"


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()
