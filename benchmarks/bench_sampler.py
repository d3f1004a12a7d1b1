"""How much CPU the sampler thread costs: CPU seconds per wall second, on the replay source.

    python benchmarks/bench_sampler.py [--seconds 3] [--source replay]

Runs the sampler for ``--seconds`` each at 10 Hz and 100 Hz polling and in driver-buffer mode,
and prints the sampler thread's CPU time (``time.thread_time`` inside the thread) per wall
second, plus per sample. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import time

from pytest_llenergy.energy import Sampler, resolve_source


def run(source_spec: str, hz: float, driver: bool, seconds: float) -> dict[str, float | str]:
    source, _ = resolve_source(source_spec)
    sampler = Sampler(source, hz, use_driver_buffer=driver)
    t0 = time.perf_counter()
    sampler.start()
    time.sleep(seconds)
    ts = sampler.stop()
    wall = time.perf_counter() - t0
    source.close()
    return {"mode": sampler.mode, "hz": hz, "samples": ts.n, "wall_s": wall,
            "cpu_s": ts.thread_cpu_s, "cpu_per_wall": ts.thread_cpu_s / wall,
            "us_per_sample": 1e6 * ts.thread_cpu_s / max(ts.n, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--source", default="replay")
    args = ap.parse_args()
    rows = [run(args.source, 10, False, args.seconds), run(args.source, 100, False, args.seconds),
            run(args.source, 10, True, args.seconds)]
    print(f"sampler thread cost on source {args.source!r} ({args.seconds:g} s each)")
    print(f"{'mode':<8}{'hz':>6}{'samples':>9}{'cpu s':>9}{'cpu/wall':>10}{'us/sample':>11}")
    for r in rows:
        hz = f"{r['hz']:g}" if r["mode"] == "poll" else "~50"
        print(f"{r['mode']:<8}{hz:>6}{r['samples']:>9}{r['cpu_s']:>9.4f}"
              f"{r['cpu_per_wall']:>10.2%}{r['us_per_sample']:>11.1f}")


if __name__ == "__main__":
    main()
