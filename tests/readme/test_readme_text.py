"""The README's fixed facts held to the code (fast): the exit-code list against
``errors.EXIT_CODES``, the walkthrough's shape, and the sample-matching rules the executed
walkthrough (test_walkthrough.py) relies on."""

from __future__ import annotations

import re

from readme_doc import (
    README,
    commands,
    line_matches,
    mask,
    samples,
    section,
    unmatched,
)

from nimble_oke.errors import EXIT_CODES

# the words the README uses for each error kind
README_WORDS = {
    "config/catalog": ("config", "catalog"),
    "budget": ("budget",),
    "state": ("state",),
    "cloud API": ("cloud",),
    "Kubernetes": ("kubernetes",),
    "endpoint": ("endpoint",),
    "benchmark INVALID": ("benchmark-invalid",),
    "benchmark FAILED": ("benchmark-failed",),
    "internal bug": ("internal",),
    "Ctrl-C": ("interrupted",),
    "other failures": ("failed",),
}


def documented_exit_codes() -> dict[str, int]:
    """The README's "non-zero exit code (2 config/catalog, 3 budget, …)" list as
    {words: code}."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"non-zero exit code \(([^)]*)\)", text)
    assert match, "README.md no longer lists the exit codes as 'non-zero exit code (…)'"
    pairs = re.findall(r"(\d+) ([^,]+)", match.group(1))
    return {words.strip(): int(code) for code, words in pairs}


def test_every_documented_exit_code_is_the_codes() -> None:
    documented = documented_exit_codes()
    assert documented, "no exit codes found in README.md"
    for words, code in documented.items():
        assert words in README_WORDS, f"README names an exit code for {words!r}: which kind?"
        for kind in README_WORDS[words]:
            assert EXIT_CODES[kind] == code, f"README: {code} {words}; code: {EXIT_CODES[kind]}"


def test_every_specific_error_kind_is_documented() -> None:
    """Every kind a script can act on has its code in the README (1 for a failure of no
    particular kind and 130 for Ctrl-C are the shell's conventions)."""
    documented_kinds = {k for words in documented_exit_codes() for k in README_WORDS[words]}
    assert set(EXIT_CODES) - {"failed", "interrupted"} <= documented_kinds


def test_walkthrough_1_is_commands_with_samples_in_order() -> None:
    walk = section("Walkthrough 1")
    cmds = [c.line for c in commands(walk)]
    assert cmds[0] == "nimble sim start" and cmds[-1] == "nimble sim stop"
    assert all(c.startswith("nimble ") for c in cmds)
    # every sample names a command of the walkthrough, in the walkthrough's order
    at = 0
    for sample in samples(walk):
        assert sample.command in cmds[at:], f"sample '$ {sample.command}' is no later command"
        at = cmds.index(sample.command, at) + 1
    assert samples(walk), "Walkthrough 1 shows no sample output"


def test_set_up_shows_the_demo_output() -> None:
    shown = samples(section("Set-up"))
    assert [s.command for s in shown] == ["make demo"]


def test_masks_hide_what_varies_and_nothing_else() -> None:
    assert mask("endpoint    http://127.0.0.1:33043") == "endpoint    http://127.0.0.1:<port>"
    assert (
        mask("done in 16.1s — ready after 34m54s") == "done in <duration> — ready after <duration>"
    )
    assert mask("accrued $0.4800 ($2.052/h now)") == "accrued $<usd> ($<usd>/h now)"
    assert mask("estimate $4.02 for 2 h") == "estimate $4.02 for 2 h"  # a plan is exact
    assert mask("smoke       16/16 passed") == "smoke       16/16 passed"


def test_sample_lines_match_in_order_with_ellipsis() -> None:
    printed = "a 1\nwatchdog: scaled try2-gpu to zero at 13:01:02 (lease expired)\nz\n"
    assert line_matches(
        "watchdog: scaled try2-gpu to zero at … (lease expired)", printed.split("\n")[1]
    )
    assert unmatched(("a 1", "z"), printed) == []
    assert unmatched(("z", "a 1"), printed) == ["a 1"]  # order matters
    assert unmatched(("a 2",), printed) == ["a 2"]  # a figure that is not masked must match
