"""Racing: the statistics of a search (pytest-free; the plugin and the benchmark both call ``race``).

Round r runs one more cycle of every surviving configuration. From round ``min_rounds`` on, after
each round, every survivor is tested on the values of all its rounds so far (on logs: energy and
latency are ratio-scale figures):

- a constraint is *broken with confidence* when a one-sided one-sample t test rejects "the mean is
  within the limit"; it is *met with confidence* when the opposite test rejects "the mean is beyond it"
  (each configuration's variance of that figure moderated like the objective's, below);
- the *incumbent* is the survivor with the lowest mean objective among those that meet every
  constraint with confidence (the incumbent test is at level alpha, unadjusted: it only picks the
  comparator);
- a survivor is *worse with confidence* when a one-sided Welch t test rejects "its mean is at most
  the incumbent's", each configuration's variance moderated towards the race's common spread
  (empirical Bayes, ``search_variance.py``), which gives round-2 tests their power.

Error control: a configuration is dropped when the smallest p-value of its own tests this round,
times the number of tests that could drop it (one comparison per other survivor, since the incumbent
is chosen from them, plus one per constraint), is at most alpha = 1 - confidence (Bonferroni). So in
every round the best configuration that meets the limits is dropped with probability at most alpha,
whichever it is. (Holm over all of a round's drops, the stricter "no wrong drop at all", cost
0.43 of the fixed exhaustive grid's GPU time on 24 configurations, this rule 0.30: ``benchmarks/bench_search.py``.) A configuration
whose item failed, or that does not report the objective or a constrained figure, leaves at once (its
reason says which). Undecided configurations stay.

The race stops (and later rounds are skipped) when at most ``max_survivors`` are left, or every
survivor is within ``precision`` of the incumbent with confidence (one-sided Welch bound), and in both
cases the incumbent's CI half-width is at most ``precision``; when the next round would exceed the
GPU-time budget; or after ``max_rounds``.

Intervals of a race that stopped on its precision rule are stopping-adjusted (``RaceRules.interval_alpha``):
the data chose how many rounds the pick ran (it stops when its interval looks narrow), so a plain 95 % t
interval held the truth in only 89 % of simulated races; at the 97.5 % quantile it holds it in 95 %
(``benchmarks/bench_search.py``, "pick cov."). The precision stop reads the adjusted interval too. The reference runs at least
``REFERENCE_ROUNDS`` rounds even when dropped sooner (one item more): the saving's Welch interval on a
reference of 2 values held the truth in 89 % of races, on 3 in 95 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pytest_llenergy.config.search import SearchConfig, SearchConstraint
from pytest_llenergy.results.compare import welch_p
from pytest_llenergy.results.search_variance import VariancePrior, fit_prior, moderated_welch

NO_PRIOR = VariancePrior()  # no moderation: the plain one-sample t
REFERENCE_ROUNDS = 3  # the reference's fewest rounds, for the saving's interval (it never competes after its drop)


@dataclass(frozen=True)
class Observation:
    """One configuration's figures in one round (cycle)."""

    config: str
    round: int
    passed: bool
    objective: float | None
    constraints: dict[str, float | None] = field(default_factory=dict)
    gpu_s: float = 0.0
    error: str | None = None
    steady_gpu_s: float | None = None  # gpu_s without one-off costs (load, warmup): what the next round costs

    @property
    def round_cost(self) -> float:
        return self.gpu_s if self.steady_gpu_s is None else self.steady_gpu_s


@dataclass(frozen=True)
class RaceRules:
    """The race's settings: from a campaign's ``search`` section and its cycles (the most rounds)."""

    max_rounds: int
    min_rounds: int = 2
    alpha: float = 0.05
    precision: float = 0.02
    max_survivors: int = 1
    gpu_budget_s: float | None = None
    constraints: tuple[SearchConstraint, ...] = ()
    reference: str | None = None

    @classmethod
    def from_search(cls, search: SearchConfig, max_rounds: int, reference: str | None = None) -> RaceRules:
        return cls(max_rounds, search.min_rounds, search.alpha, search.stop.precision, search.stop.max_survivors,
                   search.stop.gpu_budget_s, tuple(search.constraints), reference or None)

    @property
    def interval_alpha(self) -> float:
        """The stopping-adjusted two-sided level: alpha / 2. The precision stop always reads it; the answer's intervals
        use it when that stop ended the race (``RaceState.interval_alpha``), keeping their coverage at the search's
        confidence although the data chose the pick's rounds."""
        return self.alpha / 2


@dataclass(frozen=True)
class Drop:
    """Why a configuration left the race, after which round, and the test's p-value (None: no test)."""

    config: str
    round: int
    kind: str  # worse | constraint | failed | unmeasured
    reason: str
    p_value: float | None = None


@dataclass
class RaceState:
    """The race after ``rounds`` rounds: who is left, who left and why, and whether it has stopped."""

    configs: list[str]
    alive: list[str]
    dropped: dict[str, Drop] = field(default_factory=dict)
    rounds: int = 0
    incumbent: str | None = None
    stopped: str | None = None
    stop_kind: str | None = None  # empty | precision | rounds | budget
    stop_round: int | None = None
    spent_s: float = 0.0
    tests: int = 0  # drop tests made, all rounds
    reference: str | None = None

    def interval_alpha(self, rules: RaceRules) -> float:
        """The level of the answer's intervals: stopping-adjusted when the race stopped because the pick's interval
        looked narrow enough (the data chose the rounds); plain when rounds or budget ended it (the plain interval
        then held the true saving in 95.8 % of simulated races stopped after 3 rounds, 97.5 % after 2)."""
        return rules.interval_alpha if self.stop_kind == "precision" else rules.alpha

    def runs_for_the_saving(self, config: str) -> bool:
        """Whether ``config`` is the dropped reference, still short of ``REFERENCE_ROUNDS`` in a running race."""
        return (config == self.reference and config in self.dropped and self.stopped is None
                and self.rounds < REFERENCE_ROUNDS)

    def skip_reason(self, config: str) -> str | None:
        """Why an item of ``config`` in round ``rounds + 1`` does not run (None: it runs)."""
        drop = self.dropped.get(config)
        if drop is not None and self.runs_for_the_saving(config):
            return None
        if drop is not None:
            return f"search: dropped after round {drop.round}: {drop.reason}"
        if self.stopped is not None:
            return f"search: race stopped after round {self.stop_round}: {self.stopped}"
        return None


def one_sided_p(logs: np.ndarray, bound: float, above: bool, prior: VariancePrior = NO_PRIOR) -> float:
    """p of "mean <= bound" (``above``: evidence the mean is above) or "mean >= bound", one-sample t.

    With a ``prior`` the variance is moderated towards the race's common spread (``search_variance.py``).
    """
    from scipy.special import stdtr

    n = logs.size
    if n < 2:
        return 1.0  # one value has no spread: no evidence either way
    diff = float(logs.mean()) - bound
    var, df = prior.moderate(logs)
    se = math.sqrt(var / n)
    if se == 0:
        return 0.0 if (diff > 0 if above else diff < 0) else 1.0
    t = diff / se
    return float(stdtr(df, -t if above else t))


def half_width_rel(logs: np.ndarray, alpha: float) -> float:
    """Relative half-width of the two-sided t CI of the mean (on logs: exp(hw) - 1); inf below 2 values."""
    from scipy.special import stdtrit

    if logs.size < 2:
        return math.inf
    hw = float(stdtrit(logs.size - 1, 1 - alpha / 2)) * float(logs.std(ddof=1)) / math.sqrt(logs.size)
    return math.expm1(hw)


def ratio_bound(a: np.ndarray, b: np.ndarray, alpha: float) -> float:
    """One-sided upper (1 - alpha) bound of exp(mean(a) - mean(b)), Welch (logs in, ratio out)."""
    from scipy.special import stdtrit

    diff, se, df, _ = (float(v) for v in welch_p(b, a, 0.0, True))
    if se == 0 or not math.isfinite(df):
        return math.exp(diff)
    return math.exp(diff + float(stdtrit(df, 1 - alpha)) * se)


class _History:
    """Each configuration's logged values up to the current round."""

    def __init__(self, rules: RaceRules) -> None:
        self.rules = rules
        self.objective: dict[str, list[float]] = {}
        self.limits: dict[tuple[str, str], list[float]] = {}
        self.costs: dict[str, list[float]] = {}

    def add(self, o: Observation) -> None:
        self.costs.setdefault(o.config, []).append(o.round_cost)
        if not o.passed:
            return
        if o.objective is not None and o.objective > 0:
            self.objective.setdefault(o.config, []).append(math.log(o.objective))
        for k in self.rules.constraints:
            value = o.constraints.get(k.metric)
            if value is not None and value > 0:
                self.limits.setdefault((o.config, k.metric), []).append(math.log(value))

    def logs(self, config: str) -> np.ndarray:
        return np.asarray(self.objective.get(config, ()), dtype=float)

    def limit_logs(self, config: str, metric: str) -> np.ndarray:
        return np.asarray(self.limits.get((config, metric), ()), dtype=float)

    def cost(self, config: str) -> float:
        """The next round's cost of ``config``: its latest item without one-off costs."""
        costs = self.costs.get(config) or [0.0]
        return float(costs[-1])


def _gate_round(state: RaceState, observed: dict[str, Observation], rules: RaceRules, r: int) -> None:
    """Drop configurations whose item failed or that do not report a needed figure this round."""
    for c in list(state.alive):
        o = observed.get(c)
        if o is None:
            continue
        if not o.passed:
            reason = f"its item failed in round {r}" + (f": {o.error.splitlines()[-1][:160]}" if o.error else "")
            state.dropped[c] = Drop(c, r, "failed", reason)
        elif o.objective is None or not o.objective > 0:
            state.dropped[c] = Drop(c, r, "unmeasured", f"round {r} reports no positive objective figure")
        else:
            missing = [k.metric for k in rules.constraints if o.constraints.get(k.metric) is None]
            if missing:
                state.dropped[c] = Drop(c, r, "unmeasured", f"round {r} does not report {', '.join(missing)}")
        if c in state.dropped:
            state.alive.remove(c)


def _constraint_priors(history: _History, rules: RaceRules, alive: Sequence[str]) -> dict[str, VariancePrior]:
    """Per constrained figure, the prior its survivors' variances are moderated towards."""
    return {k.metric: fit_prior([history.limit_logs(c, k.metric) for c in alive]) for k in rules.constraints}


def _constraint_tests(history: _History, rules: RaceRules, c: str,
                      priors: dict[str, VariancePrior]) -> tuple[list[tuple[str, float, str]], bool]:
    """c's constraint tests (kind, p of "within the limit", text), and whether every limit is met with confidence."""
    tests, ok = [], True
    for k in rules.constraints:
        logs = history.limit_logs(c, k.metric)
        if logs.size < 2:
            ok = False
            continue
        bound, prior = math.log(k.limit), priors.get(k.metric, NO_PRIOR)
        mean = math.exp(float(logs.mean()))
        tests.append(("constraint", one_sided_p(logs, bound, above=k.upper, prior=prior),
                      f"breaks {k}: geometric mean {mean:.4g} over {logs.size} rounds"))
        ok = ok and one_sided_p(logs, bound, above=not k.upper, prior=prior) < rules.alpha
    return tests, ok


def _decide(state: RaceState, history: _History, rules: RaceRules, r: int) -> None:
    """One round's tests, Bonferroni over each configuration's own tests, and the drops they allow."""
    priors = _constraint_priors(history, rules, state.alive)
    constraint_tests = {c: _constraint_tests(history, rules, c, priors) for c in state.alive}
    candidates = [c for c in state.alive if constraint_tests[c][1] and history.logs(c).size >= 2]
    incumbent = min(candidates, key=lambda c: (float(history.logs(c).mean()), c)) if candidates else None
    prior = fit_prior([history.logs(c) for c in state.alive])
    family = len(state.alive) - 1 + len(rules.constraints)  # comparisons with every other survivor + limits
    for c in list(state.alive):
        tests = list(constraint_tests[c][0])
        logs = history.logs(c)
        if incumbent is not None and c != incumbent and logs.size >= 2:
            p, diff = moderated_welch(history.logs(incumbent), logs, prior)
            tests.append(("worse", p, f"worse than {incumbent} by {math.expm1(diff):+.1%}"))
        state.tests += len(tests)
        if not tests:
            continue
        kind, p, text = min(tests, key=lambda t: t[1])
        if p * family <= rules.alpha:
            state.alive.remove(c)
            state.dropped[c] = Drop(c, r, kind, f"{text} (p = {p:.2g}, x {family} tests <= {rules.alpha:g})", p)
    state.incumbent = incumbent  # it met every limit with confidence, so no test of this round dropped it


def _precise(history: _History, rules: RaceRules, pick: str) -> bool:
    return half_width_rel(history.logs(pick), rules.interval_alpha) <= rules.precision


def _stop_reason(state: RaceState, history: _History, rules: RaceRules, r: int) -> tuple[str, str] | None:
    """(kind, text) of why the race stops after round ``r`` (None: it goes on); kind: empty | precision | rounds | budget."""
    if not state.alive:
        return "empty", "no configuration left"
    pick = state.incumbent
    if r >= rules.min_rounds and pick is not None and _precise(history, rules, pick):
        hw = f"the pick's CI is within ±{rules.precision:.1%}"
        if len(state.alive) <= rules.max_survivors:
            return "precision", f"{len(state.alive)} configuration(s) left (stop.max_survivors {rules.max_survivors}); {hw}"
        best = history.logs(pick)
        others = [c for c in state.alive if c != pick]
        if all(history.logs(c).size >= 2 and ratio_bound(best, history.logs(c), rules.alpha) <= 1 + rules.precision
               for c in others):
            return ("precision",
                    f"the {len(state.alive)} survivors are within {rules.precision:.1%} of the pick with confidence; {hw}")
    if r >= rules.max_rounds:
        return "rounds", f"the most rounds ({rules.max_rounds}, the campaign's cycles) are done"
    if rules.gpu_budget_s is not None and r >= rules.min_rounds:  # the minimum rounds always run
        running = list(state.alive)
        if state.reference is not None and state.runs_for_the_saving(state.reference):
            running.append(state.reference)
        nxt = sum(history.cost(c) for c in running)
        if state.spent_s + nxt > rules.gpu_budget_s:
            return "budget", (f"GPU budget: {state.spent_s:.0f} s spent + {nxt:.0f} s for the next round > "
                    f"{rules.gpu_budget_s:.0f} s (stop.gpu_budget_s)")
    return None


def race(rules: RaceRules, configs: Sequence[str], observations: Iterable[Observation],
         until_round: int | None = None) -> RaceState:
    """The race after every round before ``until_round`` (default: all observed rounds), from the observations.

    A pure function of its inputs: every process that reads the same results decides the same.
    """
    obs = [o for o in observations if until_round is None or o.round < until_round]
    last = max((o.round for o in obs), default=0) if until_round is None else until_round - 1
    by_round: dict[int, dict[str, Observation]] = {}
    for o in obs:
        by_round.setdefault(o.round, {})[o.config] = o
    state = RaceState(list(configs), list(configs), reference=rules.reference)
    history = _History(rules)
    for r in range(1, min(last, rules.max_rounds) + 1):
        observed = {c: o for c, o in by_round.get(r, {}).items() if c in state.alive}
        for o in by_round.get(r, {}).values():
            state.spent_s += o.gpu_s
        for o in observed.values():
            history.add(o)
        _gate_round(state, observed, rules, r)
        state.rounds = r
        if r >= rules.min_rounds:
            _decide(state, history, rules, r)
        stop = _stop_reason(state, history, rules, r)
        if stop is not None:
            (state.stop_kind, state.stopped), state.stop_round = stop, r
            break
    return state


__all__ = ["Drop", "Observation", "RaceRules", "RaceState", "half_width_rel", "one_sided_p", "race"]
