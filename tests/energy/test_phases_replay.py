"""A replayed power trace with known phase powers, measured by the real meter and sampler, split at
engine stamps: the phase energies come back within their stated uncertainty."""

from __future__ import annotations

import math
import time

import numpy as np

from pytest_llenergy.config.timeline import PhaseTimeline, RequestTiming
from pytest_llenergy.energy.baseline_reading import BaselineReading
from pytest_llenergy.energy.meter import EnergyMeter
from pytest_llenergy.energy.phases import split_window
from pytest_llenergy.energy.sources.replay import ReplaySource

PERIOD, PREFILL, DECODE = 1.0, 0.1, 0.5  # per trace second: 600 W prefill, 300 W decode, 100 W idle
WATTS = {"prefill": 600.0, "decode": 300.0, "idle": 100.0}


def write_trace(path):
    t = np.round(np.arange(0.0, 12.0 + 1e-9, 0.02), 6)
    phase = np.mod(t, PERIOD)
    p = np.where(phase < PREFILL - 1e-9, WATTS["prefill"], np.where(phase < PREFILL + DECODE - 1e-9, WATTS["decode"], WATTS["idle"]))
    np.savetxt(path, np.column_stack([t, p]), delimiter=",", header="t_s,power_w", comments="", fmt="%.6f")
    return t, p


def exact(t, p, a, b):
    x = np.linspace(a, b, 20001)
    return float(np.trapezoid(np.interp(x, t, p), x)) if hasattr(np, "trapezoid") else float(np.trapz(np.interp(x, t, p), x))


def test_replayed_phases_recovered_within_uncertainty(tmp_path):
    trace = tmp_path / "phases.csv"
    t, p = write_trace(trace)
    source = ReplaySource(trace, loop=False, start_s=0.0)
    meter = EnergyMeter(source, sample_hz=50, baseline=BaselineReading(power_w={"replay0": WATTS["idle"]}))
    with meter.measure("generate") as w:
        k = math.ceil(source.clock() + 0.05)  # the engine starts its batches on the next period
        to_host = time.monotonic() - source.clock()  # replay clock = trace seconds (speed 1)
        bounds = [(k + i, k + i + PREFILL, k + i + PREFILL + DECODE) for i in range(2)]
        while source.clock() < bounds[-1][2] + 0.1:  # the "engine" runs through both batches
            time.sleep(0.01)
        reqs = [RequestTiming(f"b{i}r{j}", s + to_host, f + to_host, e + to_host, 16, 9)
                for i, (s, f, e) in enumerate(bounds) for j in range(2)]
        w.record(64, 36, timeline=PhaseTimeline("monotonic", "replay engine", reqs))
    res = split_window(meter.series("generate"), w.result, w.timeline, w.host_edges, baseline_w=WATTS["idle"])
    for name, pick in (("prefill", lambda b: (b[0], b[1])), ("decode", lambda b: (b[1], b[2]))):
        truth = sum(exact(t, p, *pick(b)) for b in bounds)
        ph = res.phases[name]
        # the stamps map through host clocks read a few microseconds apart: allow that in time x power
        slack = 4 * 1e-3 * WATTS["prefill"]
        assert abs(ph.energy_j - truth) <= 2 * ph.uncertainty_j + slack, (name, ph.energy_j, truth, ph.uncertainty_j)
        assert ph.intervals == 2
    assert res.phases["prefill"].tokens == 64 and res.phases["decode"].tokens == 4 * 8
    assert sum(x.energy_j for x in res.phases.values()) == __import__("pytest").approx(w.result.energy_j, rel=1e-6)
