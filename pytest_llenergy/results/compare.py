"""Comparing a run with a saved one: per experiment and metric, is the change a regression?

The rule ``metric:X%`` names the smallest regression the gate must catch. The test is one-sided
Welch t on the log cycle values (new run against the saved run's cycles) of the null hypothesis
"the change is at most the margin", margin = X / 3 (``MARGIN_FRACTION``) in the regression's direction: it fails when
p < alpha (default 0.01). So any true change within the margin (noise, a small run-to-run
offset) fails at most alpha of the time, whatever the number of cycles, and a regression of X is
caught with a power that grows with the cycles (``benchmarks/bench_gate.py``, docs/ci.md). With
fewer than 2 cycles on a side the ratio of the means is compared directly against 1 + X / 3 (equal
passes), with a warning that the comparison is not significant.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_llenergy.config.budgets import BUDGET_METRICS
from pytest_llenergy.results.metrics import metric_column

MIN_CYCLES_FOR_TEST = 2
DEFAULT_ALPHA = 0.01
MARGIN_FRACTION = 1 / 3  # the null hypothesis: a change of at most this fraction of the rule's threshold
RAW_OF = {adjusted: raw for raw, adjusted, _, _ in BUDGET_METRICS.values() if adjusted is not None}
RAW_BASIS = "raw: no baseline-adjusted figure from this source"
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
    """One experiment's metric against the saved run: the change, its 95 % CI and the test's verdict."""

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
    p_value: float | None = None
    alpha: float = DEFAULT_ALPHA
    scale: str = "log"
    basis: str | None = None  # "raw: ..." when an adjusted rule was judged on raw figures
    unavailable: str | None = None  # why the rule's metric could not be compared (a failure, never a pass)

    @property
    def significant(self) -> bool:
        return self.p_value is not None

    @property
    def margin(self) -> float:
        return MARGIN_FRACTION * self.rule.threshold

    def message(self) -> str:
        if self.unavailable is not None:
            outcome = "REGRESSION (cannot check)" if self.regression else "not checked"
            return f"{self.rule.metric}: metric unavailable ({self.unavailable}): {self.rule} {outcome}"
        change = (self.ratio - 1) * 100
        limit = f"catches {self.rule.threshold * 100:+g} %, margin {self.margin * 100:+.2g} %"
        basis = f"{self.basis}; " if self.basis else ""
        if self.p_value is None:
            test = f"n={self.n_old}/{self.n_new} < {MIN_CYCLES_FOR_TEST} cycles: means compared, no significance test"
        else:
            low, high = (math.nan if v is None else v for v in (self.ci_low, self.ci_high))
            ci = f"95 % CI {(low - 1) * 100:+.1f} to {(high - 1) * 100:+.1f} %"
            test = (f"{ci}, p = {self.p_value:.2g} {'<' if self.p_value < self.alpha else '>='} {self.alpha:g} "
                    f"(one-sided Welch t on {self.scale} cycle values, {self.n_new} vs {self.n_old} saved cycles)")
        verdict = "REGRESSION" if self.regression else "ok"
        if self.p_value is None:
            verdict += " (means only, untested)"
        return (f"{self.rule.metric} {self.new_mean:.4g} vs {self.old_mean:.4g} ({change:+.1f} %, {limit}; "
                f"{basis}{test}): {verdict}")


@dataclass(frozen=True)
class WelchResult:
    """Change new/old as a ratio with its 95 % CI, and the one-sided p-value against the margin."""

    ratio_low: float
    ratio_high: float
    p_value: float
    scale: str


def welch_p(a: np.ndarray, b: np.ndarray, bound: float, increase: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Welch t over the last axis: difference of means b - a, its se, df, and the one-sided p-value of
    "b - a <= bound" (``increase``) or "b - a >= bound". Zero spread: p = 0 or 1."""
    from scipy.special import stdtr  # lazily: keeps the plugin's start-up free of scipy

    diff = b.mean(-1) - a.mean(-1)
    va, vb = a.var(-1, ddof=1) / a.shape[-1], b.var(-1, ddof=1) / b.shape[-1]
    se = np.sqrt(va + vb)
    beyond = diff > bound if increase else diff < bound
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (va + vb) ** 2 / (va**2 / (a.shape[-1] - 1) + vb**2 / (b.shape[-1] - 1))
        t = (diff - bound) / se
        p = np.where(se > 0, stdtr(df, -t if increase else t), np.where(beyond, 0.0, 1.0))
    return diff, se, df, p


def welch_test(old: np.ndarray, new: np.ndarray, threshold: float, *, margin_fraction: float = MARGIN_FRACTION,
               confidence: float = 0.95) -> WelchResult:
    """One-sided Welch t of "new/old changed by at most ``margin_fraction * threshold``" (>= 2 values a side).

    On logs when every value is positive (a ratio's natural scale), else on values / mean(old).
    ``threshold`` > 0 tests for an increase, < 0 for a decrease.
    """
    from scipy.special import stdtrit

    logs = bool((old > 0).all() and (new > 0).all())
    a, b = (np.log(old), np.log(new)) if logs else (old / old.mean(), new / old.mean())
    # log(1 + m), not log1p(m): a change exactly at the margin is then exactly the bound, as in the point comparison
    bound = math.log(1 + margin_fraction * threshold) if logs else margin_fraction * threshold
    diff, se, df, p = (float(v) for v in welch_p(a, b, bound, threshold > 0))
    q = float(stdtrit(df, (1 + confidence) / 2)) if se > 0 else 0.0
    low, high = diff - q * se, diff + q * se
    ratio = (math.exp(low), math.exp(high)) if logs else (1 + low, 1 + high)
    return WelchResult(*ratio, p, "log" if logs else "relative")


def compare_values(experiment_id: str, old: list[float], new: list[float], rule: CompareRule,
                   alpha: float = DEFAULT_ALPHA) -> Comparison | None:
    """One experiment and metric; None when either side has no values or the old mean is 0."""
    a, b = np.asarray(old, float), np.asarray(new, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b) or a.mean() == 0:
        return None
    ratio = float(b.mean() / a.mean())
    common = (experiment_id, rule, float(a.mean()), float(b.mean()), ratio)
    if len(a) < MIN_CYCLES_FOR_TEST or len(b) < MIN_CYCLES_FOR_TEST:
        bound = 1 + MARGIN_FRACTION * rule.threshold
        regression = ratio > bound if rule.threshold > 0 else ratio < bound
        return Comparison(*common, None, None, len(a), len(b), bool(regression), None, alpha)
    test = welch_test(a, b, rule.threshold)
    return Comparison(*common, test.ratio_low, test.ratio_high, len(a), len(b), test.p_value < alpha,
                      test.p_value, alpha, test.scale)


def compare_metrics(experiment_id: str, old: dict[str, list[float]], new: dict[str, list[float]],
                    rule: CompareRule, alpha: float = DEFAULT_ALPHA) -> Comparison | None:
    """One experiment's rule on its metric values (column -> cycle values), as budgets judge: an
    adjusted metric that neither side has (CPU sources measure no baseline) is judged on its raw
    twin and says so; a metric missing on one side fails ("metric unavailable"), missing on both
    is said ("not checked"), never a silent pass. None only when the saved mean is 0 (no ratio)."""
    column, basis = rule.column, None
    raw = RAW_OF.get(column)
    if raw and not old.get(column) and not new.get(column) and old.get(raw) and new.get(raw):
        column, basis = raw, RAW_BASIS
    a, b = old.get(column) or [], new.get(column) or []
    if not a or not b:  # one side lacks it: a failure; both: said, not a failure (nothing to regress)
        side = "the saved run" if not a and b else "this run" if a else "either run"
        return Comparison(experiment_id, rule, math.nan, math.nan, math.nan, None, None, len(a), len(b),
                          bool(a or b), alpha=alpha, unavailable=f"no {column} values in {side}")
    result = compare_values(experiment_id, a, b, rule, alpha)
    return dataclasses.replace(result, basis=basis) if result is not None and basis else result


def compare_records(old: dict[str, Any], new: dict[str, Any], rules: list[CompareRule],
                    alpha: float = DEFAULT_ALPHA) -> list[Comparison]:
    """Every experiment present in both saved-run records, for every rule."""
    out = []
    for experiment_id, entry in sorted(new["experiments"].items()):
        previous = old["experiments"].get(experiment_id)
        if previous is None:
            continue
        for rule in rules:
            result = compare_metrics(experiment_id, previous["metrics"], entry["metrics"], rule, alpha)
            if result is not None:
                out.append(result)
    return out


def format_comparisons(comparisons: list[Comparison], old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Terminal lines: header, machine-mismatch warning, one line per comparison."""
    commit = (old.get("commit") or {}).get("id")
    lines = [f"compare: {new.get('name') or new.get('run_id')} vs saved {old.get('number', '')} {old.get('name')} "
             f"({old.get('saved_at', '')[:16]}, {f'commit {str(commit)[:10]}' if commit else 'not in a git checkout'})"]
    if old.get("machine_id") != new.get("machine_id"):
        lines.append(f"WARNING: machine mismatch: saved on {old.get('machine_id')}, now {new.get('machine_id')}")
    if not set(old.get("experiments", {})) & set(new.get("experiments", {})):
        lines.append("no experiments in common (ids differ: changed configs get new ids)")
    for c in comparisons:
        lines.append(f"  {c.experiment_id}: {c.message()}")
    return lines
