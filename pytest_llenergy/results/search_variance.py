"""Moderated variances for racing (empirical Bayes, as limma's ``squeezeVar``; Smyth 2004).

After two rounds each configuration's spread rests on one degree of freedom, so a plain Welch t has
~1-2 degrees of freedom and only huge effects are decided. The configurations of one race share a
measurement method and a machine, so their spreads carry information about each other: each
configuration's variance of log values, s_g^2 on d_g degrees of freedom, is shrunk towards a prior
s0^2 with d0 prior degrees of freedom estimated from the spread of all the s_g^2:

    s~_g^2 = (d0 s0^2 + d_g s_g^2) / (d0 + d_g),   on d0 + d_g degrees of freedom.

When the configurations' spreads differ much more than sampling explains, d0 comes out small and the
test falls back towards the plain one; when they agree, d0 grows and round-2 tests gain power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_PRIOR_DF = 1e6


@dataclass(frozen=True)
class VariancePrior:
    """s0^2 and d0: the prior every configuration's variance of log values is shrunk towards."""

    s0_sq: float = 0.0
    d0: float = 0.0

    def moderate(self, logs: np.ndarray) -> tuple[float, float]:
        """(moderated variance, its degrees of freedom) of one configuration's log values (>= 2)."""
        d = logs.size - 1
        s_sq = float(logs.var(ddof=1))
        if self.d0 <= 0:
            return s_sq, float(d)
        return (self.d0 * self.s0_sq + d * s_sq) / (self.d0 + d), self.d0 + d


def _trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x (Newton, as limma's ``trigammaInverse``)."""
    from scipy.special import polygamma

    if x > 1e7:
        return 1 / math.sqrt(x)
    if x < 1e-6:
        return 1 / x
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = float(polygamma(1, y))
        step = tri * (1 - tri / x) / float(polygamma(2, y))
        y += step
        if -step / y < 1e-8:
            break
    return y


def fit_prior(groups: Sequence[np.ndarray]) -> VariancePrior:
    """The prior from every configuration with >= 2 values and a positive spread (none below 3 of them)."""
    from scipy.special import digamma, polygamma

    pairs = [(float(g.var(ddof=1)), g.size - 1) for g in groups if g.size >= 2]
    pairs = [(s, d) for s, d in pairs if s > 0]
    if len(pairs) < 3:
        return VariancePrior()
    s_sq, d = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=float)
    e = np.log(s_sq) - digamma(d / 2) + np.log(d / 2)
    excess = float(e.var(ddof=1) - np.mean(polygamma(1, d / 2)))
    if excess > 0:
        d0 = min(2 * _trigamma_inverse(excess), MAX_PRIOR_DF)
        s0_sq = math.exp(float(e.mean()) + float(digamma(d0 / 2)) - math.log(d0 / 2))
    else:
        d0, s0_sq = MAX_PRIOR_DF, math.exp(float(e.mean()))
    return VariancePrior(s0_sq, d0)


def moderated_welch(a: np.ndarray, b: np.ndarray, prior: VariancePrior) -> tuple[float, float]:
    """One-sided p of "mean(b) <= mean(a)" and the difference mean(b) - mean(a), moderated Welch t."""
    from scipy.special import stdtr

    diff = float(b.mean() - a.mean())
    (va, da), (vb, db) = prior.moderate(a), prior.moderate(b)
    qa, qb = va / a.size, vb / b.size
    se = math.sqrt(qa + qb)
    if se == 0:
        return (0.0 if diff > 0 else 1.0), diff
    df = (qa + qb) ** 2 / (qa**2 / da + qb**2 / db)
    return float(stdtr(df, -diff / se)), diff
