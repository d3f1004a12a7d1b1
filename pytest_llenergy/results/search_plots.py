"""The search's plot: energy against latency and against throughput, every configuration with its intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llenergy.results.plots import _figure, _save
from pytest_llenergy.results.store import SEARCH_PLOT

SEARCH_CHART = "search: energy-latency and energy-throughput Pareto fronts"


def _panel(ax: Any, answer: dict[str, Any], key: str, front: list[str], label: str) -> None:
    for v in answer["configs"].values():
        e, x = v["objective"], v[key]
        if e["mean"] is None or x["mean"] is None:
            continue
        status = v["status"]
        yerr = [[e["mean"] - (e["ci_low"] or e["mean"])], [(e["ci_high"] or e["mean"]) - e["mean"]]]
        xerr = [[x["mean"] - (x["ci_low"] or x["mean"])], [(x["ci_high"] or x["mean"]) - x["mean"]]]
        style = {"pick": ("#c0392b", "*", 12), "survivor": ("#1f6fb2", "o", 6)}.get(status, ("#9aa3b2", "o", 5))
        ax.errorbar(x["mean"], e["mean"], yerr=yerr, xerr=xerr, fmt=style[1], color=style[0], ms=style[2],
                    mfc=style[0] if status != "dropped" else "none", elinewidth=0.8, capsize=2)
    for c in dict.fromkeys([*front, answer["pick"]]):
        v = answer["configs"].get(c)
        if v is not None and v["objective"]["mean"] is not None and v[key]["mean"] is not None:
            ax.annotate(c.rsplit("-", 1)[0], (v[key]["mean"], v["objective"]["mean"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points", color="#333")
    pts = sorted((answer["configs"][c][key]["mean"], answer["configs"][c]["objective"]["mean"]) for c in front)
    if len(pts) > 1:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="#c0392b", lw=1, alpha=0.6)
    ax.set_xlabel(label)
    ax.set_ylabel(answer["objective"])
    ax.grid(alpha=0.3)


def search_charts(answer: dict[str, Any], folder: Path) -> dict[str, Path]:
    """One PNG with both fronts (red star: the pick; filled: survivors; hollow grey: dropped; line: the front)."""
    fig = _figure(11.0, 4.2)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    fig.subplots_adjust(wspace=0.3)
    _panel(left, answer, "latency", answer["front_latency"], answer["latency_metric"])
    _panel(right, answer, "throughput", answer["front_throughput"], answer["throughput_metric"])
    fig.suptitle(f"search: pick {answer['pick'] or 'none'} (intervals: {answer['confidence']:.0%} t on logs)", fontsize=10)
    return {SEARCH_CHART: _save(fig, Path(folder) / SEARCH_PLOT)}
