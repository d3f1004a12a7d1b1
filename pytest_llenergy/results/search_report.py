"""The answer of a search: the pick, its saving against the reference, Pareto fronts, drops and GPU time.

``search_answer(run_dirs)`` rebuilds the race from the files (``search/spec.json`` + results) and returns
a JSON-ready dict (``summary.json``'s ``search``); ``search_lines`` and ``search_html`` show it. Means
are geometric (the race works on logs) with Student-t intervals on the logs at the search's confidence,
stopping-adjusted when the precision rule ended the race (``RaceState.interval_alpha``: the 97.5 % quantile for 95 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from pytest_llenergy.results.compare import welch_p
from pytest_llenergy.results.frame import result_row
from pytest_llenergy.results.search import RaceState, race
from pytest_llenergy.results.search_data import (
    ObservationCache,
    SearchSpec,
    constraint_value,
    read_spec,
)
from pytest_llenergy.results.store import RunDirectory

LATENCY_PREFIXES = ("batch_latency", "ttft", "itl", "e2e")
THROUGHPUT = "output_tokens_per_s"


def _interval(values: Sequence[float], alpha: float) -> dict[str, Any]:
    """Geometric mean and t interval of positive values (n, mean, ci_low, ci_high; None where unknown)."""
    from scipy.special import stdtrit

    logs = np.log([v for v in values if v is not None and v > 0])
    if not logs.size:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    mean = float(logs.mean())
    if logs.size < 2:
        return {"n": 1, "mean": math.exp(mean), "ci_low": None, "ci_high": None}
    hw = float(stdtrit(logs.size - 1, 1 - alpha / 2)) * float(logs.std(ddof=1)) / math.sqrt(logs.size)
    return {"n": int(logs.size), "mean": math.exp(mean), "ci_low": math.exp(mean - hw), "ci_high": math.exp(mean + hw)}


def saving_interval(pick: list[float], ref: list[float], alpha: float) -> dict[str, Any] | None:
    """1 - pick/reference (geometric means) with a two-sided Welch interval on the logs."""
    from scipy.special import stdtrit

    a, b = np.log([v for v in ref if v > 0]), np.log([v for v in pick if v > 0])
    if a.size < 2 or b.size < 2:
        return None
    diff, se, df, _ = (float(v) for v in welch_p(a, b, 0.0, True))
    q = float(stdtrit(df, 1 - alpha / 2)) if se > 0 else 0.0
    return {"saving": -math.expm1(diff), "ci_low": -math.expm1(diff + q * se), "ci_high": -math.expm1(diff - q * se)}


def _front(points: dict[str, tuple[float, float]], lower_second: bool) -> list[str]:
    """Configurations not dominated on (energy: lower, second figure: lower or higher) by their means."""
    def better(a: tuple[float, float], b: tuple[float, float]) -> bool:
        second_ok = a[1] <= b[1] if lower_second else a[1] >= b[1]
        second_strict = a[1] < b[1] if lower_second else a[1] > b[1]
        return a[0] <= b[0] and second_ok and (a[0] < b[0] or second_strict)
    return sorted((c for c, p in points.items() if not any(better(q, p) for d, q in points.items() if d != c)),
                  key=lambda c: points[c][0])


def _exhaustive_rounds(objective: list[float], spec: SearchSpec) -> int | None:
    """Cycles this configuration would need for a CI half-width <= precision (t arithmetic on its spread)."""
    from scipy.special import stdtrit

    logs = np.log([v for v in objective if v > 0])
    if logs.size < 2:
        return None
    sd, target, rules = float(logs.std(ddof=1)), math.log1p(spec.search.stop.precision), spec.rules
    for n in range(rules.min_rounds, rules.max_rounds + 1):
        if float(stdtrit(n - 1, 1 - rules.interval_alpha / 2)) * sd / math.sqrt(n) <= target:
            return n
    return rules.max_rounds


def _per_config(run_dirs: Sequence[Path], spec: SearchSpec, latency: str) -> dict[str, dict[str, list[float]]]:
    from pytest_llenergy.results.search_data import gpu_seconds, objective_value

    out: dict[str, dict[str, list[float]]] = {c: {"objective": [], "latency": [], "throughput": [], "gpu_s": []}
                                              for c in spec.configs}
    for run_dir in run_dirs:
        for result in RunDirectory(Path(run_dir)).results():
            figures = out.get(result.experiment_id)
            if figures is None:
                continue
            figures["gpu_s"].append(gpu_seconds(result))
            if result.status != "passed":
                continue
            row = result_row(result)
            for key, value in (("objective", objective_value(result, spec.search.objective, row)),
                               ("latency", constraint_value(result, latency, row)),
                               ("throughput", constraint_value(result, THROUGHPUT, row))):
                if value is not None:
                    figures[key].append(value)
    return out


def _latency_metric(spec: SearchSpec) -> str:
    limited = [k.metric for k in spec.search.constraints if k.metric.startswith(LATENCY_PREFIXES)]
    return limited[0] if limited else "batch_latency_mean_s"


def _pick(state: RaceState, figures: dict[str, dict[str, list[float]]]) -> str | None:
    if state.incumbent is not None:
        return state.incumbent
    means = {c: float(np.mean(np.log(figures[c]["objective"]))) for c in state.alive if figures[c]["objective"]}
    return min(means, key=lambda c: (means[c], c)) if means else None


def search_answer(run_dirs: Sequence[Path]) -> dict[str, Any] | None:
    """The search's answer from the run directories (None when they hold no search)."""
    spec = next((s for s in (read_spec(Path(d)) for d in run_dirs) if s is not None), None)
    if spec is None:
        return None
    state = race(spec.rules, spec.configs, ObservationCache(spec.search).read(list(run_dirs), set(spec.configs)))
    alpha = state.interval_alpha(spec.rules)
    latency = _latency_metric(spec)
    figures = _per_config(run_dirs, spec, latency)
    pick = _pick(state, figures)
    configs: dict[str, dict[str, Any]] = {c: {"status": "pick" if c == pick else "survivor" if c in state.alive else "dropped",
                   "objective": _interval(f["objective"], alpha), "latency": _interval(f["latency"], alpha),
                   "throughput": _interval(f["throughput"], alpha), "rounds": len(f["gpu_s"]),
                   "gpu_s": sum(f["gpu_s"])} for c, f in figures.items()}
    lat_points = {c: (v["objective"]["mean"], v["latency"]["mean"]) for c, v in configs.items()
                  if v["objective"]["mean"] is not None and v["latency"]["mean"] is not None}
    tput_points = {c: (v["objective"]["mean"], v["throughput"]["mean"]) for c, v in configs.items()
                   if v["objective"]["mean"] is not None and v["throughput"]["mean"] is not None}
    n_pick = configs[pick]["objective"]["n"] if pick else 0
    mean_cost = {c: (f["gpu_s"] and sum(f["gpu_s"]) / len(f["gpu_s"])) or 0.0 for c, f in figures.items()}
    need = {c: _exhaustive_rounds(f["objective"], spec) or max(n_pick, spec.rules.min_rounds) for c, f in figures.items()}
    spent = sum(configs[c]["gpu_s"] for c in configs)
    same_precision = sum(need[c] * mean_cost[c] for c in configs)
    reference = spec.reference
    saving = (saving_interval(figures[pick]["objective"], figures[reference]["objective"], alpha)
              if pick and reference in figures else None)
    return {
        "objective": spec.search.objective, "confidence": spec.search.confidence,
        "constraints": [str(k) for k in spec.search.constraints], "reference": reference,
        "pick": pick, "pick_confirmed": state.incumbent is not None,
        "saving_vs_reference": saving, "rounds": state.rounds, "stopping_adjusted": alpha != spec.rules.alpha,
        "stopped": state.stopped, "stop_round": state.stop_round, "survivors": list(state.alive),
        "dropped": [{"config": d.config, "round": d.round, "kind": d.kind, "reason": d.reason, "p_value": d.p_value}
                    for d in sorted(state.dropped.values(), key=lambda d: (d.round, d.config))],
        "latency_metric": latency, "throughput_metric": THROUGHPUT,
        "front_latency": _front(lat_points, lower_second=True), "front_throughput": _front(tput_points, lower_second=False),
        "gpu_s": {"spent": spent, "exhaustive_same_precision": same_precision,
                  "exhaustive_at_pick_rounds": sum(max(n_pick, 1) * mean_cost[c] for c in configs),
                  "share": spent / same_precision if same_precision else None, "tests": state.tests},
        "configs": configs,
    }


def _ci(block: dict[str, Any]) -> str:
    if block["mean"] is None:
        return "-"
    ci = f" [{block['ci_low']:.4g}, {block['ci_high']:.4g}]" if block["ci_low"] is not None else ""
    return f"{block['mean']:.4g}{ci} (n={block['n']})"


def _undecided_lines(answer: dict[str, Any]) -> list[str]:
    """Survivors other than the pick: the race ended before it could tell them from the pick
    (on the H200 a budget stop left one with a lower mean but an undecided latency limit)."""
    pick = answer["pick"]
    open_ = [c for c in answer.get("survivors", []) if c != pick]
    if not open_:
        return []
    out = [f"search: still undecided when the race stopped ({len(open_)}): more rounds would settle them"]
    for config in open_:
        v = answer["configs"][config]
        out.append(f"search:   {config}: {answer['objective']} {_ci(v['objective'])}, latency {_ci(v['latency'])}")
    return out


def search_lines(answer: dict[str, Any], verbosity: int = 0) -> list[str]:
    """Terminal lines: the pick, the saving, why the race stopped, GPU time, drops and fronts."""
    pick, conf = answer["pick"], f"{answer['confidence']:.0%}"
    lines = []
    if pick is None:
        lines.append("search: no pick: " + (answer["stopped"] or "no configuration reports the objective"))
    else:
        note = "meets every constraint with confidence" if answer["pick_confirmed"] else (
            "NOT confirmed to meet the constraints (undecided when the race ended)")
        lines.append(f"search: pick {pick}: {answer['objective']} {_ci(answer['configs'][pick]['objective'])}; {note}")
    saving = answer["saving_vs_reference"]
    if saving is not None:
        lines.append(f"search: saving vs reference {answer['reference']}: {saving['saving']:+.1%} "
                     f"[{saving['ci_low']:+.1%}, {saving['ci_high']:+.1%}] ({conf} CI"
                     + (", stopping-adjusted)" if answer.get("stopping_adjusted") else ")"))
    lines.append(f"search: {answer['rounds']} round(s); stopped: {answer['stopped'] or 'not yet (more cycles would continue)'}")
    lines += _undecided_lines(answer)
    gpu = answer["gpu_s"]
    share = f" ({gpu['share']:.2f}x)" if gpu["share"] else ""
    lines.append(f"search: GPU time {gpu['spent']:.0f} s; the exhaustive grid at the same precision ~{gpu['exhaustive_same_precision']:.0f} s"
                 f"{share}, every configuration at the pick's rounds {gpu['exhaustive_at_pick_rounds']:.0f} s")
    drops = answer["dropped"]
    shown = drops if verbosity > 0 else drops[:10]
    lines += [f"search: dropped {d['config']} after round {d['round']}: {d['reason']}" for d in shown]
    if len(drops) > len(shown):
        lines.append(f"search: ... {len(drops) - len(shown)} more dropped (-v shows all; summary.json lists every one)")
    for key, label in (("front_latency", answer["latency_metric"]), ("front_throughput", answer["throughput_metric"])):
        lines.append(f"search: energy-{label} Pareto front: " + (", ".join(answer[key]) or "none measured"))
    return lines


def search_html(answer: dict[str, Any], images: Sequence[str]) -> list[str]:
    """The report.html section: the answer, every configuration's figures with intervals, the plot."""
    rows = []
    fronts = set(answer["front_latency"]) | set(answer["front_throughput"])
    drops = {d["config"]: d for d in answer["dropped"]}
    for config, v in sorted(answer["configs"].items(), key=lambda kv: (kv[1]["objective"]["mean"] is None,
                                                                       kv[1]["objective"]["mean"] or 0)):
        why = drops[config]["reason"] if config in drops else ""
        when = f"after round {drops[config]['round']}" if config in drops else ""
        cells = [config, v["status"] + (" (Pareto)" if config in fronts else ""), _ci(v["objective"]), _ci(v["latency"]),
                 _ci(v["throughput"]), str(v["rounds"]), f"{v['gpu_s']:.0f}", when, why]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    head = ["configuration", "status", answer["objective"], answer["latency_metric"], answer["throughput_metric"],
            "rounds", "GPU-s", "dropped", "reason"]
    return ["<h2>Search: the energy-optimal configuration</h2>",
            "<ul>" + "".join(f"<li>{escape(line.removeprefix('search: '))}</li>" for line in search_lines(answer, 1)
                             if "dropped" not in line[:16]) + "</ul>",
            '<p class="sub">Geometric means with Student-t intervals on the logs at the search\'s confidence, '
            "stopping-adjusted when the precision rule ended the race (the 97.5 % t quantile for 95 %); "
            "drops: moderated Welch t (worse than the incumbent) and one-sample t (constraints) on logs, Bonferroni over each configuration's tests in a round.</p>",
            '<div class="scroll"><table><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>", *images]
