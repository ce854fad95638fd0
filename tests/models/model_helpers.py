"""Test helpers: a generated model directory and a tree snapshot to compare."""

from __future__ import annotations

import os
from pathlib import Path

KiB = 1024
PART = 256 * KiB  # test part size: the two weight files are multipart uploads


def make_model(root: Path, seed: int = 0) -> Path:
    """A small NIM-like cache: config, tokenizer, two weight shards bigger than PART, and a
    Hugging-Face-style snapshot link to a blob."""
    model = root / "llama-tiny"
    (model / "blobs").mkdir(parents=True)
    (model / "snapshots" / "main").mkdir(parents=True)
    (model / "config.json").write_text(f'{{"layers": 2, "seed": {seed}}}')
    (model / "tokenizer.json").write_bytes(os.urandom(40 * KiB))
    (model / "model-00001.safetensors").write_bytes(os.urandom(PART * 3 + 123))
    (model / "model-00002.safetensors").write_bytes(os.urandom(PART + 1))
    (model / "blobs" / "abc123").write_bytes(os.urandom(10 * KiB))
    (model / "empty.txt").write_bytes(b"")
    (model / "snapshots" / "main" / "weights").symlink_to("../../blobs/abc123")
    return model


def tree(directory: Path) -> dict[str, bytes | str]:
    """Relative path → bytes (files) or link target (links), without .nimble."""
    out: dict[str, bytes | str] = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if rel.startswith(".nimble"):
            continue
        if path.is_symlink():
            out[rel] = os.readlink(path)
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out
