"""Issue 21's examples, typed as the user typed them: each error names what the user gave
(the flag, and the config key it maps to), says what happened in the user's words (no
library class names), and exits with the README's code."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from nimble_oke.cli.app import app

CLASS_NAME = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+(?:Error|Exception)\b")


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ("plan", "--hours", "-1"),
            2,
            "--hours -1.0: must be greater than 0 (config key budget.max_hours)",
        ),
        (
            ("up", "--name", "UPPER", "--yes"),
            2,
            "--name 'UPPER': a session name has 1-40 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit (config key cluster.name)",
        ),
        (
            ("bench", "--endpoint", "http://127.0.0.1:9", "--requests", "5"),
            7,
            "cannot reach http://127.0.0.1:9/v1/models: connection refused at 127.0.0.1:9 — "
            "is the endpoint running?",
        ),
        (
            ("smoke",),
            2,
            "no endpoint to check: no session has one; pass --endpoint URL (e.g. "
            "http://127.0.0.1:8000) or bring a session up with `nimble up`",
        ),
    ],
)
def test_issue_examples_are_one_line_in_the_users_words(
    args: tuple[str, ...], code: int, line: str
) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert result.stderr.splitlines() == [f"[nimble][ERROR] {line}"]
    assert not CLASS_NAME.search(result.stderr) and "Traceback" not in result.output


def test_plan_over_budget_exits_3_with_the_reason() -> None:
    """`plan --budget 1`: the plan is shown, the guard's ✗, and exit 3 (budget) so a script
    can tell, with the one reason on stderr."""
    result = CliRunner().invoke(app, ["plan", "--budget", "1"])
    assert result.exit_code == 3, result.output
    assert "budget $1.00" in result.stdout and "✗" in result.stdout
    (error,) = result.stderr.splitlines()
    assert error.startswith("[nimble][ERROR] the budget guard would refuse this session: ")
    assert "exceeds the budget $1.00" in error
