"""Where a run's wall time went: measured windows, warmup, baseline, gaps, model loads, other.

Per item the pieces are in each result's ``timing``; the session adds ``walltime.json`` (its own
wall time, baseline seconds outside items, load counts). Works for ``lem report`` too (without
``walltime.json`` the wall time is the sum of the items').
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llenergy.results.store import RunDirectory, read_json

PIECES = (("measured", "measured_s"), ("warmup", "warmup_s"), ("baseline", "baseline_s"), ("gaps", "gap_s"),
          ("model load", "load_s"))


def _session_record(run_dir: Path) -> dict[str, Any]:
    return read_json(RunDirectory(run_dir).walltime_path) or {}


def wall_time_breakdown(run_dirs: Sequence[Path]) -> dict[str, Any] | None:
    """Seconds and % of wall per piece, summed over the runs' items; None when no item has timings."""
    sums = dict.fromkeys((key for _, key in PIECES), 0.0)
    items_wall, items, wall, baseline_outside = 0.0, 0, 0.0, 0.0
    loads: dict[str, Any] = {}
    for run_dir in run_dirs:
        for result in RunDirectory(Path(run_dir)).results():
            if result.timing is None:
                continue
            items += 1
            items_wall += result.timing.wall_s or 0.0
            for key in sums:
                sums[key] += getattr(result.timing, key)
        record = _session_record(Path(run_dir))
        wall += float(record.get("session_wall_s") or 0.0)
        baseline_outside += float(record.get("baseline_outside_items_s") or 0.0)
        for name, value in (record.get("loads") or {}).items():
            if isinstance(value, int | float):
                loads[name] = loads.get(name, 0) + value
    if not items:
        return None
    sums["baseline_s"] += baseline_outside
    wall = max(wall, items_wall, sum(sums.values()))
    pieces = {name: sums[key] for name, key in PIECES}
    pieces["other"] = max(0.0, wall - sum(pieces.values()))
    return {"wall_s": wall, "items": items,
            "pieces": {name: {"s": s, "pct": 100 * s / wall if wall else None} for name, s in pieces.items()},
            "loads": loads or None}


def wall_time_lines(breakdown: dict[str, Any] | None) -> list[str]:
    """One line for the terminal summary, plus one for loads when any were counted."""
    if not breakdown:
        return []
    parts = [f"{name} {p['s']:.1f} s ({p['pct']:.0f} %)" for name, p in breakdown["pieces"].items() if p["pct"] is not None]
    lines = [f"wall time {breakdown['wall_s']:.1f} s over {breakdown['items']} item(s): " + ", ".join(parts)]
    loads = breakdown.get("loads")
    if loads:
        lines.append(f"model loads: {int(loads.get('loads', 0))} ({loads.get('load_s', 0.0):.1f} s), reused while "
                     f"resident: {int(loads.get('reuses', 0))}, evicted: {int(loads.get('evictions', 0))}")
    return lines
