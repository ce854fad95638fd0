"""README.md read as a test script: its sections, the commands of their ``bash`` blocks and
the sample outputs shown after them, and how a printed output is compared with a sample.

Conventions the README follows (so a test can hold it to what the program prints):

- a walkthrough is one fenced ``bash`` block; each line is one command, ``# …`` a comment
  (a line that is only a comment belongs to the command above it);
- a sample output is a fenced block without a language whose first line is
  ``$ <command>`` (a command of the walkthrough, in its order); the lines after it are
  printed by that command, in that order (a sample may leave lines out: *abridged*);
- in a sample, ``…`` stands for any text; volatile values (ports, clock times, durations,
  accrued dollars, benchmark figures) are masked on both sides by :func:`mask`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
ELLIPSIS = "…"


@dataclass(frozen=True)
class Command:
    line: str  # as written, without its comment
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Sample:
    command: str  # the text after "$ "
    lines: tuple[str, ...]


def section(title: str, text: str | None = None) -> str:
    """The body of the ``## <title>…`` section (up to the next ``## `` heading)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise AssertionError(f"README.md has no section '## {title}'")
    return match.group(1)


def fenced_blocks(markdown: str) -> list[tuple[str, list[str]]]:
    """Every fenced block as (language, lines)."""
    return [
        (lang, body.splitlines())
        for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", markdown, re.M | re.S)
    ]


def commands(markdown: str) -> list[Command]:
    """The commands of the section's ``bash`` blocks, in order, comments dropped."""
    out: list[Command] = []
    for lang, lines in fenced_blocks(markdown):
        if lang not in ("bash", "sh", "shell"):
            continue
        for raw in lines:
            argv = tuple(shlex.split(raw, comments=True))
            if argv:
                out.append(Command(" ".join(argv), argv))
    return out


def samples(markdown: str) -> list[Sample]:
    """The section's sample outputs (untagged blocks opening with ``$ command``)."""
    out: list[Sample] = []
    for lang, lines in fenced_blocks(markdown):
        if lang or not lines or not lines[0].startswith("$ "):
            continue
        body = tuple(line.rstrip() for line in lines[1:] if line.strip())
        out.append(Sample(" ".join(shlex.split(lines[0][2:])), body))
    return out


# (pattern, replacement): what varies from run to run, masked on both sides
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"ocid1\.[a-z0-9_.-]+", "<ocid>"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        (r"\bpid \d+", "pid <pid>"),
        (r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?", "<datetime>"),
        (r"\b\d\d:\d\d:\d\d\b", "<hh:mm:ss>"),
        (r"\b(?:\d+h)?(?:\d+m)?\d+(?:\.\d+)?s\b", "<duration>"),
        (r"\b\d+h\d\dm\b", "<duration>"),
        (r"accrued \$\d+\.\d+", "accrued $<usd>"),
        (r"\$\d+\.\d+/h now", "$<usd>/h now"),
        (r"running \$\d+\.\d+/h", "running $<usd>/h"),
        (r"(GPU|control plane|volumes|LB|CPU|other|cost so far) \$\d+\.\d+", r"\1 $<usd>"),
        # benchmark figures (measured, so never the same twice)
        (r"\d+(?:\.\d+)? (ms|tok/s|req/s)\b", r"<n> \1"),
    )
)


def mask(line: str) -> str:
    """The line with its volatile values replaced by placeholders."""
    line = line.rstrip()
    for pattern, replacement in _MASKS:
        line = pattern.sub(replacement, line)
    return line


def line_matches(expected: str, actual: str) -> bool:
    """A sample line against a printed one, both masked; ``…`` in the sample is any text."""
    parts = [re.escape(p) for p in mask(expected).split(ELLIPSIS)]
    return re.fullmatch(".*".join(parts), mask(actual)) is not None


def unmatched(sample: tuple[str, ...], printed: str) -> list[str]:
    """The sample lines not found, in order, among the printed lines (empty: it matches)."""
    lines = [line for line in printed.splitlines() if line.strip()]
    missing: list[str] = []
    at = 0
    for expected in sample:
        for i in range(at, len(lines)):
            if line_matches(expected, lines[i]):
                at = i + 1
                break
        else:
            missing.append(expected)
    return missing
