"""Windows measured by plain tests (the ``energy`` fixture outside a campaign).

Windows are keyed ``<nodeid>::<window name>``; repeated windows with one key (a loop in the test,
or a re-run) are the samples of that key, so n >= 2 gives a bootstrap interval. The saved form
has the shape of a campaign run's record (``experiments: {key: {metrics: {column: [...]}}}``),
so ``--lem-save`` / ``--lem-compare`` treat a window like an experiment.
"""

from __future__ import annotations

import math
from typing import Any

# Window flags as short words (the campaign table's words, plus the window-level flags).
FLAG_WORDS = {"estimated": "est", "simulated": "sim", "throttled": "thr", "short_window": "short",
              "source_error": "error", "sampler_gaps": "gaps", "no_samples": "nosamples", "aborted": "aborted"}
# What each word means (the legend under the table lists the words it shows).
FLAG_MEANINGS = {
    "est": "estimated (process CPU time x watts per core, not a meter)",
    "sim": "simulated (a replayed power trace)",
    "thr": "throttled (thermal, board limit or reliability)",
    "short": "short window (under 10 counter updates: see its uncertainty)",
    "error": "the energy source failed mid-window",
    "gaps": "gaps in the power samples",
    "nosamples": "no power sample inside the window (its energy is the counter's, or interpolated)",
    "aborted": "the body raised",
}

# result-frame column -> window dict key
WINDOW_COLUMNS: dict[str, str] = {
    "energy_j": "energy_j", "energy_adjusted_j": "adjusted_energy_j",
    "energy_per_output_token_j": "energy_per_output_token_j",
    "adjusted_energy_per_output_token_j": "adjusted_energy_per_output_token_j",
    "energy_per_token_j": "energy_per_token_j", "adjusted_energy_per_token_j": "adjusted_energy_per_token_j",
    "mean_power_w": "mean_power_w", "duration_s": "duration_s",
}
KEPT_KEYS = ("name", "source", "estimated", "simulated", "flags", "throttled", "input_tokens", "output_tokens",
             "uncertainty_j", "adjusted_uncertainty_j", "power_capped_share", "edge_method", "baseline_power_w",
             "baseline_method", "baseline_age_s", "baseline_absent", *WINDOW_COLUMNS.values())


def window_key(nodeid: str, name: str) -> str:
    return f"{nodeid}::{name}"


def portable(window: dict[str, Any]) -> dict[str, Any]:
    """The fields of a window that travel from an xdist worker (no per-device detail)."""
    return {k: window.get(k) for k in KEPT_KEYS}


def window_row(window: dict[str, Any]) -> dict[str, float]:
    """One window as result-frame columns (numbers only), with throughput when tokens were recorded."""
    row = {col: float(window[key]) for col, key in WINDOW_COLUMNS.items() if _number(window.get(key))}
    duration = window.get("duration_s") or 0
    for column, tokens in (("tokens_per_s", (window.get("input_tokens") or 0) + (window.get("output_tokens") or 0)),
                           ("output_tokens_per_s", window.get("output_tokens") or 0)):
        if duration > 0 and tokens:
            row[column] = tokens / duration
    return row


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def metric_values(windows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per column, the value of every window that has one."""
    values: dict[str, list[float]] = {}
    for window in windows:
        for column, value in window_row(window).items():
            values.setdefault(column, []).append(value)
    return values


def windows_experiments(windows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The ``experiments`` part of a saved-run record for plain-test windows."""
    return {key: {"metrics": metric_values(found), "n": len(found), "kind": "window"} for key, found in windows.items()}


def flags_of(windows: list[dict[str, Any]]) -> str:
    words = [FLAG_WORDS[f] for f in ("estimated", "simulated") if any(w.get(f) for w in windows)]
    if any(w.get("throttled") for w in windows):
        words.append(FLAG_WORDS["throttled"])
    raw = sorted({f.split(":")[0] for w in windows for f in (w.get("flags") or [])})
    words += [FLAG_WORDS[f] for f in raw if f in FLAG_WORDS and FLAG_WORDS[f] not in words]
    return ",".join(words)


def window_statistics(windows: dict[str, list[dict[str, Any]]], seed: int = 0) -> list[dict[str, Any]]:
    """Per key: n, and per column mean, CI (n >= 2) and values; plus source and flags."""
    from pytest_llenergy.results.stats import bootstrap_ci

    out = []
    for key, found in windows.items():
        last = found[-1]
        entry: dict[str, Any] = {
            "key": key, "n": len(found), "source": last.get("source"), "flags": flags_of(found), "metrics": {},
            "uncertainty_j": [w.get("uncertainty_j") for w in found],
            "adjusted_uncertainty_j": [w.get("adjusted_uncertainty_j") for w in found],
            "power_capped_share": [w.get("power_capped_share") for w in found],
            "window_flags": [list(w.get("flags") or []) for w in found],
            "baseline": {"power_w": last.get("baseline_power_w"), "method": last.get("baseline_method"),
                         "age_s": last.get("baseline_age_s"), "absent": last.get("baseline_absent")}}
        for column, values in metric_values(found).items():
            ci = bootstrap_ci(values, seed=seed, n_resamples=2000)
            entry["metrics"][column] = {"mean": ci.mean, "ci_low": _nan_none(ci.ci_low),
                                        "ci_high": _nan_none(ci.ci_high), "n": ci.n, "values": values}
        out.append(entry)
    return out


def _nan_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _cell(metric: dict[str, Any] | None) -> str:
    if not metric:
        return "-"
    text = f"{metric['mean']:.4g}"
    if metric["ci_low"] is not None and metric["mean"]:
        text += f" ±{(metric['ci_high'] - metric['ci_low']) / 2 / abs(metric['mean']) * 100:.1f}%"
    return text


def _measured_sd(entry: dict[str, Any]) -> str:
    """The windows' own uncertainty (1 sd, J; the adjusted one where there is one), averaged."""
    values = [v for v in entry.get("adjusted_uncertainty_j") or [] if v is not None] \
        or [v for v in entry.get("uncertainty_j") or [] if v is not None]
    return f"{sum(values) / len(values):.2g}" if values else "-"


def format_window_table(stats: list[dict[str, Any]]) -> list[str]:
    """The session-end table of plain-test windows: energy, adjusted, its uncertainty, J/token, duration, flags."""
    if not stats:
        return []
    head = ["window", "n", "energy J", "adjusted J", "± J (1 sd)", "J/out-token", "duration s", "flags"]
    rows = [head]
    for entry in stats:
        m = entry["metrics"]
        per_token = m.get("adjusted_energy_per_output_token_j") or m.get("energy_per_output_token_j")
        rows.append([entry["key"], str(entry["n"]), _cell(m.get("energy_j")), _cell(m.get("energy_adjusted_j")),
                     _measured_sd(entry), _cell(per_token), _cell(m.get("duration_s")), entry["flags"]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    right = {1, 2, 3, 4, 5, 6}
    lines = [f"llenergy: {len(stats)} energy window(s) in plain tests: mean (±half-width of the 95% bootstrap CI when "
             "n >= 2); ± J: the windows' own measurement uncertainty"]
    words = {w for e in stats for w in e["flags"].split(",") if w}
    if "sim" in words:
        lines.append("NOTE: SIMULATED energy (replayed power trace), not a measurement")
    if "est" in words:
        lines.append("NOTE: ESTIMATED energy (no hardware counter): treat figures as approximate")
    lines += ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
              for r in rows]
    lines += _baseline_lines(stats)
    if words:
        lines.append("flags: " + "; ".join(f"{w} = {FLAG_MEANINGS[w]}" for w in FLAG_MEANINGS if w in words)
                     + " (each window's flags: --lem-json)")
    return lines


def _baseline_lines(stats: list[dict[str, Any]]) -> list[str]:
    """Which baseline the adjusted figures subtract (with its age), or why there are none."""
    bases = [e["baseline"] for e in stats if e.get("baseline")]
    used = next((b for b in bases if b.get("power_w") is not None), None)
    if used is not None:
        age = f", {used['age_s']:.0f} s old" if used.get("age_s") is not None else ""
        return [f"baseline: {used['power_w']:.4g} W idle ({used.get('method')}{age}) subtracted over each window"]
    absent = next((b["absent"] for b in bases if b.get("absent")), None)
    return [f"baseline: none ({absent}): budgets judge raw energy"] if absent else []
