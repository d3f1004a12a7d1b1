"""Daemon mode for ``lem schedule``: start a pytest campaign at set times, bounded in total."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Callable

from pytest_llenergy.config.units import parse_duration


def start_times(at: str | None, every_s: float, total_s: float, now: dt.datetime) -> list[dt.datetime]:
    """Every start within ``total_s`` of now: from ``at`` (HH:MM, next occurrence) every ``every_s``."""
    if every_s <= 0:
        raise ValueError("--every must be positive")
    first = now
    if at:
        try:
            hour, minute = (int(x) for x in at.split(":"))
            first = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        except ValueError:
            raise ValueError(f"--at expects HH:MM, got {at!r}") from None
        if first < now:
            first += dt.timedelta(days=1)
    end = now + dt.timedelta(seconds=total_s)
    times, current = [], first
    while current <= end:
        times.append(current)
        current += dt.timedelta(seconds=every_s)
    return times


def run_schedule(at: str | None, every: str, total: str, pytest_args: list[str], *, dry_run: bool = False,
                 sleep: Callable[[float], None] = time.sleep, now: Callable[[], dt.datetime] = dt.datetime.now) -> int:
    args = [a for a in pytest_args if a != "--"]
    try:
        times = start_times(at, parse_duration(every), parse_duration(total), now())
    except ValueError as exc:
        print(f"lem schedule: {exc}", file=sys.stderr)
        return 2
    if not args:
        print("lem schedule: give the pytest arguments after --, e.g. -- energy_suites/ --lem-campaign grid.yaml",
              file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "pytest", *args]
    for start in times:
        print(f"{start:%Y-%m-%d %H:%M}: {' '.join(command)}")
    if dry_run:
        return 0
    worst = 0
    for start in times:
        wait = (start - now()).total_seconds()
        if wait > 0:
            sleep(wait)
        worst = max(worst, subprocess.call(command))
    return worst
