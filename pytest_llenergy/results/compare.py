"""Comparing a run with a saved one: per experiment and metric, the ratio new/old.

With >= 3 cycles on both sides the verdict uses a bootstrap CI of the ratio of means (each side
resampled independently, seeded): a regression fails only when the whole CI lies beyond the
threshold. Otherwise the ratio of means is compared directly, with a warning that it is not
significant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_llenergy.results.metrics import metric_column

MIN_CYCLES_FOR_CI = 3
_RULE = re.compile(r"^([a-z_]+):([-+]?\d+(?:\.\d+)?)%$")


@dataclass(frozen=True)
class CompareRule:
    """``energy_per_output_token:5%``: fail when it grows > 5 %; ``tokens_per_s:-10%``: when it drops > 10 %."""

    metric: str
    column: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}:{self.threshold * 100:+g}%"


def parse_rules(specs: str | list[str] | None) -> list[CompareRule]:
    """Parse ``metric:N%`` rules (space or comma separated); ValueError names the bad one."""
    if not specs:
        return []
    parts = specs.replace(",", " ").split() if isinstance(specs, str) else [p for s in specs for p in s.replace(",", " ").split()]
    rules = []
    for part in parts:
        match = _RULE.match(part.strip())
        if not match:
            raise ValueError(f"cannot read {part!r}: expected METRIC:N% such as energy_per_output_token:5% or tokens_per_s:-10%")
        threshold = float(match.group(2)) / 100
        if threshold == 0:
            raise ValueError(f"{part!r}: a threshold of 0 % would fail on noise; use a positive or negative percentage")
        rules.append(CompareRule(match.group(1), metric_column(match.group(1)), threshold))
    return rules


@dataclass(frozen=True)
class Comparison:
    experiment_id: str
    rule: CompareRule
    old_mean: float
    new_mean: float
    ratio: float
    ci_low: float | None
    ci_high: float | None
    n_old: int
    n_new: int
    regression: bool

    @property
    def significant(self) -> bool:
        return self.ci_low is not None

    def message(self) -> str:
        change = (self.ratio - 1) * 100
        ci = (f", 95 % CI of ratio [{self.ci_low:.3f}, {self.ci_high:.3f}]" if self.ci_low is not None
              else f" (point comparison, n={self.n_old}/{self.n_new} < {MIN_CYCLES_FOR_CI}: not significant)")
        verdict = "REGRESSION" if self.regression else "ok"
        return (f"{self.rule.metric} {self.new_mean:.4g} vs {self.old_mean:.4g} ({change:+.1f} %, "
                f"limit {self.rule.threshold * 100:+g} %{ci}): {verdict}")


def ratio_interval(old: np.ndarray, new: np.ndarray, seed: int, n_resamples: int = 5000,
                   confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(new) / mean(old), both sides resampled."""
    rng = np.random.default_rng(seed)
    old_means = old[rng.integers(0, len(old), (n_resamples, len(old)))].mean(axis=1)
    new_means = new[rng.integers(0, len(new), (n_resamples, len(new)))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = new_means / old_means
    ratios = ratios[np.isfinite(ratios)]
    alpha = (1 - confidence) / 2
    return float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha))


def compare_values(experiment_id: str, old: list[float], new: list[float], rule: CompareRule,
                   seed: int = 0) -> Comparison | None:
    """One experiment and metric; None when either side has no values or the old mean is 0."""
    a, b = np.asarray(old, float), np.asarray(new, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b) or a.mean() == 0:
        return None
    ratio = float(b.mean() / a.mean())
    low = high = None
    if len(a) >= MIN_CYCLES_FOR_CI and len(b) >= MIN_CYCLES_FOR_CI:
        low, high = ratio_interval(a, b, seed)
    bound = 1 + rule.threshold
    if rule.threshold > 0:
        regression = (low if low is not None else ratio) > bound
    else:
        regression = (high if high is not None else ratio) < bound
    return Comparison(experiment_id, rule, float(a.mean()), float(b.mean()), ratio, low, high, len(a), len(b),
                      bool(regression))


def compare_records(old: dict[str, Any], new: dict[str, Any], rules: list[CompareRule],
                    seed: int = 0) -> list[Comparison]:
    """Every experiment present in both saved-run records, for every rule."""
    out = []
    for experiment_id, entry in sorted(new["experiments"].items()):
        previous = old["experiments"].get(experiment_id)
        if previous is None:
            continue
        for rule in rules:
            result = compare_values(experiment_id, previous["metrics"].get(rule.column, []),
                                    entry["metrics"].get(rule.column, []), rule, seed)
            if result is not None:
                out.append(result)
    return out


def format_comparisons(comparisons: list[Comparison], old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Terminal lines: header, machine-mismatch warning, one line per comparison."""
    lines = [f"compare: {new.get('name') or new.get('run_id')} vs saved {old.get('number', '')} {old.get('name')} "
             f"({old.get('saved_at', '')[:16]}, commit {str((old.get('commit') or {}).get('id'))[:10]})"]
    if old.get("machine_id") != new.get("machine_id"):
        lines.append(f"WARNING: machine mismatch: saved on {old.get('machine_id')}, now {new.get('machine_id')}")
    if not comparisons:
        lines.append("no experiments in common (ids differ: changed configs get new ids)")
    for c in comparisons:
        lines.append(f"  {c.experiment_id}: {c.message()}")
    return lines
