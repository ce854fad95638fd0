"""The one reader of user files: regular files only, bounded before parsing, UTF-8, no
duplicate keys — every refusal a ConfigError naming the file, never a hang or a crash."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from nimble_oke.errors import ConfigError, EndpointError
from nimble_oke.user_files import (
    Limits,
    load_json,
    load_yaml,
    read_user_json,
    read_user_text,
    read_user_yaml,
)


def _alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": each level repeats the previous one nine times."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes("\ufeffgpu_pool:\n  nodes: 2\n".encode())  # a UTF-8 BOM is fine
    assert read_user_yaml(path, what="config file") == {"gpu_pool": {"nodes": 2}}


@pytest.mark.parametrize(
    ("kind", "needle"),
    [("dir", "is a directory"), ("fifo", "is a named pipe (FIFO)"), ("dev", "is a device")],
)
def test_only_regular_files_and_a_fifo_does_not_hang(
    tmp_path: Path, kind: str, needle: str
) -> None:
    if kind == "dir":
        path = tmp_path
    elif kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)  # opening it for reading would wait for a writer
    else:
        path = Path("/dev/zero")  # endless
    start = time.monotonic()
    with pytest.raises(
        ConfigError, match=re.escape(f"config file {path} {needle}, not a regular file")
    ):
        read_user_text(path, what="config file")
    assert time.monotonic() - start < 5


def test_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_user_text(tmp_path / "nope", what="values file")
    with pytest.raises(ConfigError, match="cannot be opened: not a directory"):
        read_user_text(Path(__file__) / "x", what="values file")


def test_size_is_bounded_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: 1\n" * 300_000)
    with pytest.raises(ConfigError, match=r"is 1\.4 MiB; the limit is 1\.0 MiB"):
        read_user_text(path, what="config file")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (bytes(range(256)), "is a binary file (it contains NUL bytes)"),
        ("target: sim\n".encode("utf-16"), "is UTF-16 or UTF-32 text; save it as UTF-8"),
        (b"a: 1\nb: \xff\xfe\n", "is not UTF-8 text (byte 0xff on line 2)"),
    ],
)
def test_text_must_be_utf8(tmp_path: Path, data: bytes, needle: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        read_user_text(path, what="config file")
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: " + "[" * 1000 + "]" * 1000, "nested deeper than 32 levels"),
        ("".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "x: 1\n", "line 33"),
        ("a: &a [*a]\n", "levels once aliases are expanded"),
        (_alias_bomb(), "expands to more than 20,000 values"),
        ("a: 1\na: 2\n", "duplicate key 'a' at line 2 (first at line 1)"),
        ("a: " + "9" * 5000, "a number has more than 4300 digits"),
        ("a: 1\n---\na: 2\n", "expected a single document in the stream but found another"),
        ("a: !!python/object/apply:os.system ['true']", "could not determine a constructor"),
        ("a: [unclosed\n", "not valid YAML at line 2"),
        ("\n".join(f"k{i}: 1" for i in range(20_001)), "more than 20,000 values"),
    ],
)
def test_yaml_is_bounded_before_it_is_built(text: str, needle: str) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_yaml(text, "f.yaml")
    assert needle in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    assert time.monotonic() - start < 10


def test_limits_are_per_kind_of_file() -> None:
    deep = "a: " + "[" * 40 + "]" * 40
    with pytest.raises(ConfigError):
        load_yaml(deep, "f.yaml")
    assert load_yaml(deep, "values.yaml", limits=Limits(max_depth=64)) is not None


def test_json_depth_duplicates_and_syntax(tmp_path: Path) -> None:
    limits = Limits(max_depth=64)
    with pytest.raises(ConfigError, match="nested deeper than 64"):
        load_json("[" * 100_000 + "]" * 100_000, "r.json", limits=limits)
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        load_json('{"a": 1, "a": 2}', "r.json", limits=limits)
    with pytest.raises(ConfigError, match="not valid JSON at line 1, column 1"):
        load_json("not json", "r.json", limits=limits)
    assert load_json('{"s": "[[[[{{", "n": [1]}', "r.json", limits=limits) == {
        "s": "[[[[{{",
        "n": [1],
    }
    path = tmp_path / "r.json"
    path.write_bytes(b"\x00\x01")
    with pytest.raises(EndpointError, match="benchmark result"):  # the caller's error class
        read_user_json(path, what="benchmark result", error=EndpointError)
