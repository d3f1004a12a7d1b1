"""Thermal-gap validation on a real GPU: how power and temperature fall after heavy work, and
what the adaptive gap waits. Prints JSON (and writes it to --out).

    python3 scripts/validate_h200_gaps.py --out gaps.json [--heat-s 10] [--watch-s 60]

Needs torch with CUDA and nvidia-ml-py; imports nothing that needs pydantic.
"""

from __future__ import annotations

import argparse
import json
import time


def heat(seconds: float) -> float:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        for _ in range(10):
            a @ b
        torch.cuda.synchronize()
        n += 10
    return n


def watch(source, seconds: float, hz: float = 10.0) -> list[dict]:
    rows, t0 = [], time.monotonic()
    while time.monotonic() - t0 < seconds:
        power = source.read_power()
        aux = source.read_aux()
        rows.append({"t_s": round(time.monotonic() - t0, 3), "power_w": float(power[0]),
                     "temp_c": float(aux.get("temperature_c", [float("nan")])[0])})
        time.sleep(1 / hz)
    return rows


def first_time_below(rows: list[dict], watts: float) -> float | None:
    for i, row in enumerate(rows):
        if all(r["power_w"] <= watts for r in rows[i:i + 10]):
            return row["t_s"]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--heat-s", type=float, default=10.0)
    parser.add_argument("--watch-s", type=float, default=60.0)
    args = parser.parse_args()
    from pytest_llenergy.energy import NvmlSource, measure_baseline, wait_until_settled

    source = NvmlSource([0])
    heat(2.0)  # P0, then settle briefly, then the P0 baseline the adaptive gap aims at
    time.sleep(5)
    baseline = measure_baseline(source, 10.0, 10.0)
    report: dict = {"baseline_p0_w": baseline.power_w, "baseline_temp_c": baseline.temperature_c,
                    "baseline_pstate": baseline.pstate}
    iterations = heat(args.heat_s)
    rows = watch(source, args.watch_s)
    report["heat"] = {"seconds": args.heat_s, "matmuls": iterations, "power_at_stop_w": rows[0]["power_w"],
                      "temp_at_stop_c": rows[0]["temp_c"]}
    base = next(iter(baseline.power_w.values()))
    report["decay"] = {f"below_{int(tol * 100)}pct_s": first_time_below(rows, base * (1 + tol)) for tol in (0.05, 0.15, 0.3)}
    report["decay"]["temp_end_c"] = rows[-1]["temp_c"]
    report["decay"]["power_end_w"] = rows[-1]["power_w"]
    report["trace"] = rows[::5]
    heat(args.heat_s)
    for tol, temp_tol in ((0.15, 5.0), (0.05, 2.0)):
        t0 = time.monotonic()
        outcome = wait_until_settled(source, baseline.power_w, baseline.temperature_c, power_tolerance=tol,
                                     temp_tolerance_c=temp_tol, max_wait_s=90.0, hz=10.0)
        report[f"adaptive_tol{int(tol * 100)}_temp{temp_tol:g}"] = {
            "waited_s": round(time.monotonic() - t0, 2), "settled": outcome.settled, "reason": outcome.reason}
        heat(args.heat_s)
    source.close()
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
