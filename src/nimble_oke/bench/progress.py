"""A live one-line status while a benchmark runs (Rich), for a terminal.

The engine calls the display every 0.25 s with a :class:`~nimble_oke.bench.engine.Progress`
snapshot (plain counters, no work on the hot path). The line — phase, elapsed time,
requests sent of planned, the send rate over the last interval, in flight, done, errors
— is redrawn in place on stderr and removed when the run ends, so stdout keeps only the
summary. Rendering happens on the event loop (no refresh thread competing for the GIL)
and takes well under a millisecond; the CLI turns it off with ``--output json`` and when
stderr is not a terminal.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nimble_oke.bench.engine import Progress

RATE_WINDOW_S = 2.0  # the send rate shown is over the last two seconds


def status_line(p: Progress, previous: Progress | None) -> str:
    """The text of one redraw; the rate is over the time since ``previous``."""
    if previous is not None and previous.phase == p.phase and p.elapsed_s > previous.elapsed_s:
        rate = (p.sent - previous.sent) / (p.elapsed_s - previous.elapsed_s)
    else:
        rate = p.sent / p.elapsed_s if p.elapsed_s > 0 else 0.0
    planned = f"/{p.planned:,}" if p.planned is not None else ""
    if p.planned is None and p.duration_s is not None:
        planned = f" in {p.elapsed_s:.0f}/{p.duration_s:g} s"
    return (
        f"{p.phase} {p.elapsed_s:5.1f} s · sent {p.sent:,}{planned} · {rate:,.0f} req/s · "
        f"in flight {p.in_flight:,} · done {p.done:,} · errors {p.failed:,}"
    )


class ProgressDisplay:
    """``with ProgressDisplay() as show: run_async(config, observer=show)``."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(stderr=True)
        self.live = Live(console=self.console, auto_refresh=False, transient=True)
        self.history: deque[Progress] = deque()

    def __enter__(self) -> ProgressDisplay:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def __call__(self, p: Progress) -> None:
        from rich.text import Text

        history = self.history
        if history and history[-1].phase != p.phase:
            history.clear()
        while history and p.elapsed_s - history[0].elapsed_s > RATE_WINDOW_S:
            history.popleft()
        self.live.update(Text(status_line(p, history[0] if history else None)), refresh=True)
        history.append(p)
