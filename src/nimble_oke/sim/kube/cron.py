"""Five-field cron schedules (minute hour day-of-month month day-of-week), UTC."""

from __future__ import annotations

import time

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
# Do not scan further back than this many minutes for a missed run (the real controller
# gives up after 100 missed schedules and starts from "now").
_MAX_SCAN_MINUTES = 366 * 24 * 60


def _field(text: str, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for item in text.split(","):
        step = 1
        part = item
        if "/" in item:
            part, step_text = item.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(part)
            end = high if step > 1 else start
        if start < low or end > high or step < 1:
            raise ValueError(f"value out of range in {text!r}")
        out.update(range(start, end + 1, step))
    return out


class CronSchedule:
    def __init__(self, expression: str) -> None:
        expr = _MACROS.get(expression.strip(), expression.strip())
        parts = expr.split()
        if len(parts) != 5:
            raise ValueError(f"unparseable schedule {expression!r}: expected exactly 5 fields")
        try:
            sets = [_field(p, lo, hi) for p, (lo, hi) in zip(parts, _RANGES, strict=True)]
        except ValueError as exc:
            raise ValueError(f"unparseable schedule {expression!r}: {exc}") from exc
        self.minutes, self.hours, self.days, self.months, self.weekdays = sets
        self._any_day = parts[2] in ("*", "?")
        self._any_weekday = parts[4] in ("*", "?")

    def matches(self, unix_seconds: float) -> bool:
        t = time.gmtime(unix_seconds)
        weekday = (t.tm_wday + 1) % 7  # cron: Sunday = 0
        day_ok = t.tm_mday in self.days
        weekday_ok = weekday in self.weekdays
        if self._any_day or self._any_weekday:
            date_ok = day_ok and weekday_ok
        else:
            date_ok = day_ok or weekday_ok
        return (
            t.tm_min in self.minutes
            and t.tm_hour in self.hours
            and t.tm_mon in self.months
            and date_ok
        )

    def latest_between(self, after: float, until: float) -> float | None:
        """The latest scheduled minute in (after, until], or None."""
        end = int(until // 60) * 60
        start = int(after // 60) * 60 + 60
        start = max(start, end - _MAX_SCAN_MINUTES * 60)
        t = end
        while t >= start:
            if self.matches(t):
                return float(t)
            t -= 60
        return None

    def next_after(self, after: float) -> float | None:
        """The first scheduled minute strictly after ``after`` (Unix seconds), or None within
        a year and a day. Walks days, then hours, then minutes (not every minute)."""
        start = int(after // 60) * 60 + 60
        limit = start + _MAX_SCAN_MINUTES * 60
        day = start - start % 86400
        while day < limit:
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        t = day + hour * 3600 + minute * 60
                        if t >= start:
                            return float(t)
            day += 86400
        return None

    def _day_matches(self, day: int) -> bool:
        t = time.gmtime(day)
        weekday = (t.tm_wday + 1) % 7
        day_ok, weekday_ok = t.tm_mday in self.days, weekday in self.weekdays
        if self._any_day or self._any_weekday:
            date_ok = day_ok and weekday_ok
        else:
            date_ok = day_ok or weekday_ok
        return t.tm_mon in self.months and date_ok
