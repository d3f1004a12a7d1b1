#!/usr/bin/env python3
"""Do the short idle re-checks in the gaps read the same idle power as the long baseline? (issue 28)

    python3 scripts/validate_h200_recheck.py --out $OUT          # ~40 s on an H200
    python3 scripts/validate_h200_recheck.py --source replay --quick   # CPU dry run

The H200 walltime check (docs/validation/h200-precision.md) adopted a pooled re-check 0.98 W
(0.8 %) below the first baseline while the windows' starting power did not move. This script puts
the GPU in P0 (a short bf16 matmul), lets it settle, then reads the idle power alternately the two
ways the plugin does: a long reading (``measure_baseline``, edge-corrected counter) and short
re-checks (0.5 s, ``series_if_uncorrected=True``, as ``BaselineCache.recheck``). For every short
one it records both figures (counter over the window, mean of the power series) and which one the
plugin would use. Prints and writes JSON: the long readings, the short ones' means per method, and
their differences with standard errors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llenergy.energy import EnergyMeter, measure_baseline, resolve_source  # noqa: E402


def _prime(seconds: float) -> None:
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available():
        return
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a @ a
        torch.cuda.synchronize()


def _short(source: Any, seconds: float, hz: float) -> dict[str, Any]:
    """One short idle window: counter figure, series mean, and the edge method used."""
    import numpy as np

    meter = EnergyMeter(source, sample_hz=hz)
    with meter.measure("recheck"):
        time.sleep(seconds)
    m, series = meter.windows[-1], meter.series("recheck")
    dev = m.devices[0]
    inside = (series.t_s >= 0) & (series.t_s <= series.duration_s)
    col = series.power_w[inside, 0]
    series_mean = float(np.mean(col)) if col.size else None
    uses_series = bool(getattr(source, "counter_period_s", None)) and dev.edge_method == "counter" and col.size > 0
    return {"counter_w": dev.mean_power_w, "series_w": series_mean, "edge_method": dev.edge_method,
            "plugin_uses": "series" if uses_series else "counter", "samples": int(col.size)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="nvml")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="long reading + shorts, repeated")
    ap.add_argument("--shorts", type=int, default=6, help="short re-checks per round")
    ap.add_argument("--long-s", type=float, default=6.0)
    ap.add_argument("--short-s", type=float, default=0.5)
    ap.add_argument("--hz", type=float, default=50.0)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.shorts, args.long_s = 2, 3, 1.5
    source, reason = resolve_source(args.source)
    _prime(3.0)
    time.sleep(2.0)  # settle after the burst (the plugin's gaps settle before re-checking)
    result: dict[str, Any] = {"source": reason, "args": {k: str(v) for k, v in vars(args).items()}, "rounds": []}
    for _ in range(args.rounds):
        long = measure_baseline(source, args.long_s, args.hz)
        key = next(iter(long.power_w))
        shorts = [_short(source, args.short_s, args.hz) for _ in range(args.shorts)]
        result["rounds"].append({"long_w": long.power_w[key], "long_se_w": long.se_w.get(key), "shorts": shorts})
    longs = [r["long_w"] for r in result["rounds"]]
    flat = [s for r in result["rounds"] for s in r["shorts"]]
    summary: dict[str, Any] = {"long_mean_w": statistics.mean(longs)}
    for name in ("counter_w", "series_w"):
        vals = [s[name] for s in flat if s[name] is not None]
        if len(vals) > 1:
            mean, se = statistics.mean(vals), statistics.stdev(vals) / len(vals) ** 0.5
            summary[f"short_{name}"] = {"mean": mean, "se": se, "minus_long_w": mean - summary["long_mean_w"]}
    summary["plugin_uses"] = {m: sum(s["plugin_uses"] == m for s in flat) for m in ("series", "counter")}
    result["summary"] = summary
    print(json.dumps(summary, indent=1))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "recheck.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
