"""Replay a recorded H200 campaign under the baseline policy of before (issue 28) and of now.

Inputs: a run directory recorded on the H200 (``docs/validation/data/...``: each item's result with
its ``timing``, ``gap`` and ``baseline``, and ``walltime.json``) and the recorded H200 power trace's
P0 idle samples (``pytest_llenergy/energy/traces/h200_trace.csv``).

- before: the recorded run (a 30 s first baseline, a 0.5 s re-check after every gap, a 5 s
  revalidation reading every 5 experiments), figures as recorded;
- now: the first baseline measured by ``measure_adaptive`` with the shipped settings on a replay of
  the recorded idle samples (its length and 95 % half-width); the fresh baseline is the reading
  before the first item; each settled adaptive gap ends with the 0.5 s re-check (gap time now, the
  same seconds as before), a gap that did not settle is followed by one (baseline time, as before);
  revalidations pool the re-checks, so their 5 s readings are gone. Measured, warmup, loads and the
  windows' figures as recorded; so is the baseline each window subtracted (the re-checks' own values
  were not recorded, so which revalidations would adopt a drift cannot be replayed: the H200 check,
  scripts/validate_h200_precision.py --part walltime, measures it).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_llenergy.config.measurement import BaselineSettings
from pytest_llenergy.energy import ReplaySource
from pytest_llenergy.energy.baseline import measure_adaptive, measure_baseline
from pytest_llenergy.energy.baseline_precision import BaselinePrecision, t_quantile
from pytest_llenergy.energy.sources.replay import DEFAULT_TRACE

IDLE_END_S = 6.0  # the trace's first P0 idle stretch (h200_trace_meta.json: idle_start .. generate_start)


@dataclass
class IdleReplay:
    """The first baseline on the recorded idle: length and 95 % half-width, fixed 30 s vs adaptive."""

    before_s: float
    before_hw_w: float
    now_s: float
    now_hw_w: float
    idle_w: float


def replay_first_baseline(tmp: Path) -> IdleReplay:
    d = pd.read_csv(DEFAULT_TRACE)
    idle = d.power_w[(d.t_s >= 0) & (d.t_s < IDLE_END_S)].to_numpy()
    t = np.arange(0, 120, 0.02)
    path = tmp / "h200_idle.csv"
    path.write_text("t_s,power_w\n" + "\n".join(f"{a:.3f},{b:.4f}" for a, b in zip(t, np.resize(idle, t.size))))
    settings = BaselineSettings()
    t = [1000.0]  # a hand-advanced clock: the replayed baseline runs instantly and deterministically

    def advance(dt: float) -> None:
        t[0] += dt

    def source() -> ReplaySource:
        return ReplaySource(path, clock=lambda: t[0], start_s=0.0, history_s=60)

    fixed = measure_baseline(source(), settings.duration_s, settings.sample_hz, sleep=advance)
    now = measure_adaptive(source(), BaselinePrecision.from_settings(settings), settings.sample_hz, sleep=advance)
    label = next(iter(now.power_w))

    def hw(reading: Any) -> float:
        return t_quantile(max(int(reading.duration_s) - 1, 1)) * reading.sd_of_mean_w()[label]

    return IdleReplay(fixed.duration_s, hw(fixed), now.duration_s, hw(now), now.power_w[label])


@dataclass
class Replayed:
    """One campaign, before and now: wall-time pieces and per-experiment CIs."""

    name: str
    items: int
    wall: dict[str, float]
    pieces: dict[str, dict[str, float]] = field(default_factory=dict)
    ci: dict[str, dict[str, float]] = field(default_factory=dict)
    #: warmups paid once (the first item of each experiment: the compile on the GPU-bound path)
    once_warmup_s: float = 0.0
    #: everything paid once, now: those warmups, model loads, the first baseline
    once_s: float = 0.0
    measured_s: float = 0.0
    cycles: int = 0


def _items(run_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(p.read_text()) for p in sorted((run_dir / "experiments").glob("*.json"))]
    return sorted((r for r in rows if r.get("status") == "passed"), key=lambda r: r["started_at"])


def _settled(item: dict[str, Any]) -> bool:
    gap = item.get("gap") or {}
    return gap.get("kind") == "adaptive" and "settled after" in (gap.get("reason") or "")


def cycles_for(r: Replayed, share: float) -> int | None:
    """Cycles at which the measured share of the wall reaches ``share`` (per-cycle cost and once-only
    costs as in this run, now); None when more cycles never get there."""
    per_cycle_wall = (r.wall["now"] - r.once_s) / r.cycles
    per_cycle_measured = r.measured_s / r.cycles
    if per_cycle_measured <= share * per_cycle_wall:
        return None
    return max(1, math.ceil(share * r.once_s / (per_cycle_measured - share * per_cycle_wall)))


def _halfwidth(values: list[float]) -> float:
    n = len(values)
    return t_quantile(n - 1) * statistics.stdev(values) / math.sqrt(n) / abs(statistics.fmean(values))


def replay_campaign(name: str, run_dir: Path, idle: IdleReplay) -> Replayed:
    items = _items(run_dir)
    settings = BaselineSettings()
    record = json.loads((run_dir / "walltime.json").read_text())
    sums = {k: sum(i["timing"][k] for i in items) for k in ("measured_s", "warmup_s", "gap_s", "load_s", "baseline_s")}
    base_before = sums["baseline_s"] + record["baseline_outside_items_s"]
    unsettled = sum(1 for i in items[1:] if not _settled(i))
    base_now = idle.now_s + settings.recheck_s * unsettled
    gaps_now = sums["gap_s"] + settings.recheck_s * (len(items) - 1 - unsettled)
    wall_before = record["session_wall_s"]
    wall_now = wall_before - base_before + base_now + gaps_now - sums["gap_s"]
    first = {}
    for i in items:
        first.setdefault(i["experiment_id"], i["timing"]["warmup_s"])
    once_warmup = sum(first.values())
    out = Replayed(name, len(items), {"before": wall_before, "now": wall_now}, once_warmup_s=once_warmup,
                   once_s=once_warmup + sums["load_s"] + idle.now_s, measured_s=sums["measured_s"],
                   cycles=max(i["cycle"] for i in items))
    for label, wall, base, gaps in (("before", wall_before, base_before, sums["gap_s"]),
                                    ("now", wall_now, base_now, gaps_now)):
        known = {"measured": sums["measured_s"], "warmup": sums["warmup_s"], "baseline": base,
                 "gaps": gaps, "model load": sums["load_s"]}
        known["other"] = wall - sum(known.values())
        out.pieces[label] = {k: 100 * v / wall for k, v in known.items()}
    for exp in sorted({i["experiment_id"] for i in items}):
        rows = [i for i in items if i["experiment_id"] == exp]
        values = [i["energy"]["adjusted_energy_per_output_token_j"] for i in rows]
        adjusted_w = statistics.fmean(i["energy"]["adjusted_energy_j"] / i["energy"]["duration_s"] for i in rows)
        half = 100 * _halfwidth(values)  # the same windows: the cycle-to-cycle CI is the recorded one
        out.ci[exp] = {"n": len(rows), "before": half, "now": half, "adjusted_w": adjusted_w,
                       "base_before": 100 * idle.before_hw_w / adjusted_w, "base_now": 100 * idle.now_hw_w / adjusted_w}
    return out


@dataclass
class FirstBatch:
    """A run recorded with today's code: its wall-time shares, and what the first full-length batch
    of each experiment's warmup cost above the same batch's steady cost (from its measured windows)."""

    wall_s: float
    pieces: dict[str, float]
    excess_s: dict[str, float]

    def share_if_steady(self) -> float:
        """Measured share had every first full-length batch run at its steady cost."""
        return self.pieces["measured"] * self.wall_s / (self.wall_s - sum(self.excess_s.values()))


def first_batch_excess(run_dir: Path) -> FirstBatch:
    items = _items(run_dir)
    record = json.loads((run_dir / "walltime.json").read_text())
    wall = record["session_wall_s"]
    sums = {k: sum(i["timing"][k] for i in items) for k in ("measured_s", "warmup_s", "gap_s", "load_s", "baseline_s")}
    known = {"measured": sums["measured_s"], "warmup": sums["warmup_s"],
             "baseline": sums["baseline_s"] + record["baseline_outside_items_s"], "gaps": sums["gap_s"],
             "model load": sums["load_s"]}
    known["other"] = wall - sum(known.values())
    excess = {}
    for exp in sorted({i["experiment_id"] for i in items}):
        rows = [i for i in items if i["experiment_id"] == exp]
        warm = rows[0].get("warmup") or {}
        if "at full length" not in (warm.get("probe") or ""):
            continue
        full = warm["duration_s"] - sum(warm.get("latencies_s") or [])
        load = rows[0]["config"]["workload"]
        batches = math.ceil(load["num_prompts"] / load["batch_size"])
        steady = statistics.median(i["timing"]["measured_s"] for i in rows[1:] or rows) / batches
        excess[exp] = full - steady
    return FirstBatch(wall, {k: 100 * v / wall for k, v in known.items()}, excess)
