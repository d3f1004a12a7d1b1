"""The exact intervals bootstrap_ci and summarize report: scipy's at the stated level, the engine's with the
run's seed, Student's t below T_BELOW, the warnings a user reads, and stratified group intervals."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pytest_llenergy.results import stats
from pytest_llenergy.results.bootstrap import bca_mean_intervals, expanded_alpha
from pytest_llenergy.results.coverage import coverage, cycles_needed, t_bounds
from pytest_llenergy.results.stats import bootstrap_ci, summarize

SKEWED = np.random.default_rng(5).lognormal(3.0, 0.5, size=12)


def scipy_ci(x, level: float, seed: int, n_resamples: int, method: str = "BCa") -> tuple[float, float]:
    res = sps.bootstrap((np.asarray(x),), np.mean, n_resamples=n_resamples, rng=np.random.default_rng(seed),
                        method=method, confidence_level=level)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def frame(samples: dict[str, list[float]], backend: dict[str, str] | None = None,
          other: dict[str, list[float]] | None = None) -> pd.DataFrame:
    rows = []
    for exp, values in samples.items():
        for k, v in enumerate(values):
            row = {"experiment_id": exp, "status": "passed", "cycle": k + 1, "energy_j": v,
                   "config.backend": (backend or {}).get(exp, exp)}
            if other is not None:
                row["tokens_per_s"] = other[exp][k]
            rows.append(row)
    return pd.DataFrame(rows)


class TestBootstrapCIExact:
    @pytest.mark.parametrize(("method", "kind"), [("BCa", "BCa"), ("bca", "BCa"), ("percentile", "percentile"),
                                                  ("Percentile", "percentile"), ("basic", "basic")])
    def test_scipys_interval_with_the_given_method_resamples_and_seed(self, method: str, kind: str):
        ci = bootstrap_ci(SKEWED, seed=4, n_resamples=400, method=method, expand=False, confidence=0.9)
        assert (ci.ci_low, ci.ci_high) == scipy_ci(SKEWED, 0.9, 4, 400, kind)
        assert (ci.n, ci.method, ci.confidence, ci.warning) == (12, kind, 0.9, None)
        assert ci.mean == pytest.approx(SKEWED.mean()) and ci.sd == pytest.approx(SKEWED.std(ddof=1))
        assert math.isnan(ci.coverage) and math.isnan(ci.coverage_skewed)  # no simulated coverage off the table

    def test_expanded_level_and_its_coverage(self):
        ci = bootstrap_ci(SKEWED, seed=4, n_resamples=400)
        level = 1 - 2 * float(expanded_alpha(0.95, 12 / 11, 11))
        assert (ci.ci_low, ci.ci_high) == scipy_ci(SKEWED, level, 4, 400)
        assert (ci.coverage, ci.coverage_skewed) == coverage("BCa", 12, 0.95) and ci.confidence == 0.95

    def test_default_method_is_bca(self):
        assert bootstrap_ci(SKEWED, seed=1, n_resamples=200).method == "BCa"

    def test_student_t_carries_sd_confidence_and_coverage(self):
        values = [10.0, 10.4, 9.8, 10.1, 10.2]
        ci = bootstrap_ci(values, confidence=0.9)
        low, high = t_bounds(np.float64(np.mean(values)), np.float64(np.std(values, ddof=1)), np.float64(5), 0.9)
        assert (ci.ci_low, ci.ci_high) == (float(low), float(high))
        assert ci.sd == pytest.approx(np.std(values, ddof=1)) and ci.confidence == 0.9
        assert (ci.coverage, ci.coverage_skewed) == coverage("t", 5, 0.9)

    def test_too_few_values_keep_their_figures_and_raise_no_numpy_warning(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            one, none = bootstrap_ci([3.0], confidence=0.9), bootstrap_ci([])
        assert (one.n, one.mean, one.confidence) == (1, 3.0, 0.9) and math.isnan(one.sd)
        assert none.n == 0 and math.isnan(none.mean) and math.isnan(none.sd) and none.warning == "no values"

    def test_equal_values_keep_n_sd_confidence_and_the_small_sample_warning(self):
        ci = bootstrap_ci([4.0, 4.0], confidence=0.8)
        assert (ci.n, ci.mean, ci.sd, ci.confidence) == (2, 4.0, 0.0, 0.8)
        assert ci.warning.startswith("n=2 < 3") and "all 2 values equal: the interval is the point [4, 4]" in ci.warning

    def test_a_real_degenerate_bca_falls_back_to_scipys_percentile_interval(self):
        # Both of the 2 resamples miss the outlier: every resample mean is below the mean, BCa's z0 is infinite.
        x = [0.0] * 10 + [1.0]
        ci = bootstrap_ci(x, seed=3, n_resamples=2, expand=False, confidence=0.9)
        assert ci.method == "percentile" and (ci.ci_low, ci.ci_high) == scipy_ci(x, 0.9, 3, 2, "percentile")
        assert ci.warning.startswith("BCa undefined (The BCa confidence interval cannot be calculated")
        assert ci.warning.endswith("): percentile interval")
        assert (ci.n, ci.confidence) == (11, 0.9) and ci.mean == pytest.approx(1 / 11)
        assert ci.sd == pytest.approx(np.std(x, ddof=1))

    def test_a_degenerate_small_sample_keeps_its_few_cycles_warning(self):
        x = [0.0, 0.0, 3.0]
        seed = next(s for s in range(500) if bootstrap_ci(x, seed=s, n_resamples=2, expand=False).method == "percentile")
        ci = bootstrap_ci(x, seed=seed, n_resamples=2, expand=False)
        assert ci.warning.startswith("n=3: the observed spread") and "percentile interval" in ci.warning

    @pytest.mark.parametrize("interval", [(math.nan, 1.0), (1.0, math.nan), (math.nan, math.nan)])
    def test_an_undefined_interval_without_scipys_warning_also_falls_back(self, monkeypatch, interval):
        import scipy.stats

        real = scipy.stats.bootstrap

        def fake(data, statistic, *, method, **kw):
            if method == "BCa":
                return SimpleNamespace(confidence_interval=SimpleNamespace(low=interval[0], high=interval[1]))
            return real(data, statistic, method=method, **kw)

        monkeypatch.setattr(scipy.stats, "bootstrap", fake)
        ci = bootstrap_ci(SKEWED, seed=2, n_resamples=300, expand=False)
        assert ci.method == "percentile" and ci.warning == "BCa undefined (interval undefined): percentile interval"
        assert (ci.ci_low, ci.ci_high) == scipy_ci(SKEWED, 0.95, 2, 300, "percentile")


class TestSpreadNote:
    @pytest.mark.parametrize("values", [[100.0, 104.0], [100.0, 104.0, 96.0], [0.9, 1.1, 1.0]])
    def test_two_and_three_values_say_what_the_spread_needs(self, values):
        rel = np.std(values, ddof=1) / np.mean(values)
        ci = bootstrap_ci(values, confidence=0.9)
        need = [cycles_needed(rel, t, 0.9) for t in (0.02, 0.05)]
        assert (f"n={len(values)}: the observed spread (sd {rel:.1%} of the mean) needs {need[0]} cycles for ±2 %, "
                f"{need[1]} for ±5 %") in ci.warning
        assert need != [cycles_needed(rel, t, 0.95) for t in (0.02, 0.05)]  # the confidence is the one asked for

    def test_a_huge_spread_needs_more_than_ten_thousand(self):
        assert "needs more than 10000 cycles for ±2 %" in bootstrap_ci([1.0, 100.0, -50.0]).warning

    def test_no_note_around_a_zero_mean_or_from_four_values(self):
        assert bootstrap_ci([-1.0, 1.0]).warning == "n=2 < 3: interval unreliable (run at least 3 cycles)"
        assert bootstrap_ci([1.0, 2.0, 3.0, 4.0]).warning is None


class TestSummarizeExact:
    def test_experiment_interval_is_the_engines_with_the_runs_seed(self):
        for expand in (True, False):
            s = summarize(frame({"e": list(SKEWED)}), metrics=["energy_j"], seed=9, n_resamples=300,
                          confidence=0.9, expand=expand)
            ref = bca_mean_intervals(SKEWED[None, :], confidence=0.9, n_resamples=300,
                                     rng=np.random.default_rng(9), expand=expand)
            ci = s.ci("e", "energy_j")
            assert (ci.ci_low, ci.ci_high, ci.method) == (ref.low[0], ref.high[0], "BCa")

    def test_small_samples_get_t_or_a_point_and_bca_without_expansion(self):
        df = frame({"a": [1.0, 2.0, 4.0], "b": [5.0, 5.0, 5.0], "c": [2.0, 3.0]})
        s = summarize(df, metrics=["energy_j"], seed=1, confidence=0.9)
        for exp in ("a", "c"):
            x = df.loc[df.experiment_id == exp, "energy_j"].to_numpy()
            low, high = t_bounds(np.float64(x.mean()), np.float64(x.std(ddof=1)), np.float64(x.size), 0.9)
            ci = s.ci(exp, "energy_j")
            assert ci.method == "t" and (ci.ci_low, ci.ci_high) == pytest.approx((low, high), rel=1e-12)
        b = s.ci("b", "energy_j")
        assert (b.method, b.ci_low, b.ci_high) == ("constant", 5.0, 5.0)
        assert b.warning.endswith("all values equal: the interval is a point")
        plain = summarize(df, metrics=["energy_j"], seed=1, expand=False)
        assert plain.ci("a", "energy_j").method == "BCa" and plain.ci("c", "energy_j").method == "BCa"
        assert math.isnan(plain.ci("a", "energy_j").coverage)

    def test_small_sample_warnings_in_the_table(self):
        df = frame({"two": [100.0, 104.0], "three": [100.0, 104.0, 96.0], "one": [7.0]})
        s = summarize(df, metrics=["energy_j"], seed=1)
        assert "n=2: the observed spread (sd 2.8% of the mean)" in s.ci("two", "energy_j").warning
        assert s.ci("three", "energy_j").warning.startswith("n=3: the observed spread (sd 4.0% of the mean)")
        one = s.ci("one", "energy_j")
        assert math.isnan(one.ci_low) and math.isnan(one.ci_high) and one.warning.startswith("n=1")

    def test_a_failed_bca_says_so_in_the_table(self):
        x = [0.0] * 10 + [1.0]
        seed = next(s for s in range(500) if summarize(frame({"e": x}), metrics=["energy_j"], seed=s,
                                                       n_resamples=2).ci("e", "energy_j").method == "percentile")
        ci = summarize(frame({"e": x}), metrics=["energy_j"], seed=seed, n_resamples=2).ci("e", "energy_j")
        assert ci.warning == "BCa undefined: percentile interval"


class TestGroupIntervals:
    def test_a_one_experiment_group_has_that_experiments_interval(self):
        """One stratum with weight 1: the expanded tail, acceleration and resamples reduce to the experiment's."""
        rng = np.random.default_rng(3)
        a, b = rng.lognormal(2.3, 0.3, 12), rng.lognormal(3.4, 0.1, 15)
        ta, tb = rng.lognormal(1.0, 0.4, 12), rng.lognormal(1.5, 0.2, 15)
        df = frame({"a": list(a), "b": list(b)}, other={"a": list(ta), "b": list(tb)})
        for expand in (True, False):
            s = summarize(df, metrics=["energy_j", "tokens_per_s"], seed=1, group_by=["backend"], expand=expand,
                          confidence=0.9)
            for exp in ("a", "b"):
                for metric in ("energy_j", "tokens_per_s"):
                    e, g = s.ci(exp, metric), s.group_ci(f"backend={exp}", metric)
                    assert (g.n, g.method, g.warning) == (e.n, "BCa", None)
                    assert (g.mean, g.sd) == pytest.approx((e.mean, e.sd), rel=1e-12)
                    assert (g.ci_low, g.ci_high) == pytest.approx((e.ci_low, e.ci_high), rel=1e-9)

    def test_two_strata_match_scipys_multi_sample_bca_at_the_welch_tail(self):
        rng = np.random.default_rng(8)
        a, b = rng.lognormal(2.3, 0.4, 10), rng.lognormal(3.0, 0.2, 14)
        s = summarize(frame({"a": list(a), "b": list(b)}, backend={"a": "x", "b": "x"}), metrics=["energy_j"],
                      seed=2, n_resamples=20_000, group_by=["backend"])
        g = s.group_ci("backend=x", "energy_j")
        pooled = np.concatenate([a, b])
        assert (g.n, g.mean, g.sd) == (24, pytest.approx(pooled.mean()), pytest.approx(pooled.std(ddof=1)))
        w = np.array([10, 14]) / 24
        var = w**2 * np.array([a.var(ddof=1), b.var(ddof=1)]) / np.array([10, 14])
        df = var.sum() ** 2 / (var**2 / np.array([9, 13])).sum()
        boot = (var * np.array([9 / 10, 13 / 14])).sum()
        alpha = float(expanded_alpha(0.95, var.sum() / boot, df))

        def statistic(x, y, axis=-1):
            return w[0] * np.mean(x, axis=axis) + w[1] * np.mean(y, axis=axis)

        ref = sps.bootstrap((a, b), statistic, n_resamples=20_000, rng=np.random.default_rng(0), method="BCa",
                            confidence_level=1 - 2 * alpha).confidence_interval
        width = ref.high - ref.low
        assert abs(g.ci_low - ref.low) < 0.03 * width and abs(g.ci_high - ref.high) < 0.03 * width

    def test_a_small_group_gets_the_t_interval_and_coverage_of_a_small_experiment(self):
        """Issue 26 finding 4: a 3-cycle group is not [min, max] of 3 values (a bootstrap of 3 covers
        ~75 %): it gets Welch's t at its effective size, and its coverage column is filled."""
        values = [0.0315, 0.0405, 0.0392]
        s = summarize(frame({"a": values}), metrics=["energy_j"], seed=1, group_by=["backend"])
        e, g = s.ci("a", "energy_j"), s.group_ci("backend=a", "energy_j")
        assert (g.method, g.n) == ("t", 3) and (g.ci_low, g.ci_high) == pytest.approx((e.ci_low, e.ci_high), rel=1e-12)
        assert (g.coverage, g.coverage_skewed) == (e.coverage, e.coverage_skewed) and 0.9 < g.coverage < 1
        assert g.ci_high - g.ci_low > 1.5 * (max(values) - min(values))
        rng = np.random.default_rng(4)  # two 3-cycle strata: Welch-Satterthwaite df ~ 4, still t
        two = summarize(frame({"a": list(rng.normal(10, 1, 3)), "b": list(rng.normal(20, 1, 3))},
                              backend={"a": "x", "b": "x"}), metrics=["energy_j"], seed=1, group_by=["backend"])
        assert two.group_ci("backend=x", "energy_j").method == "t"
        big = summarize(frame({"a": list(rng.normal(10, 1, 12)), "b": list(rng.normal(20, 1, 12))},
                              backend={"a": "x", "b": "x"}), metrics=["energy_j"], seed=1, group_by=["backend"])
        g = big.group_ci("backend=x", "energy_j")
        assert g.method == "BCa" and 0.9 < g.coverage < 1  # the bootstrap from T_BELOW on, with its coverage

    def test_single_cycle_experiments_are_noted_and_add_no_noise(self):
        s = summarize(frame({"a": [1.0, 2.0, 4.0], "b": [9.0]}, backend={"a": "x", "b": "x"}),
                      metrics=["energy_j"], seed=1, group_by=["backend"])
        g = s.group_ci("backend=x", "energy_j")
        assert g.n == 4 and g.mean == pytest.approx(4.0) and g.warning == (
            "1 experiment(s) with a single cycle add no cycle-to-cycle noise")
        assert g.ci_low < g.ci_high and g.method == "t" and 0.9 < g.coverage < 1
        # b's single cycle carries no weight in the resamples: the spread is a's, scaled by its weight 3/4
        alone = summarize(frame({"a": [1.0, 2.0, 4.0]}), metrics=["energy_j"], seed=1, group_by=["backend"])
        ga = alone.group_ci("backend=a", "energy_j")
        assert g.ci_high - g.ci_low == pytest.approx(0.75 * (ga.ci_high - ga.ci_low), rel=0.2)

    def test_constant_strata_give_a_point(self):
        s = summarize(frame({"a": [2.0, 2.0, 2.0], "b": [4.0, 4.0, 4.0]}, backend={"a": "x", "b": "x"}),
                      metrics=["energy_j"], seed=1, group_by=["backend"])
        g = s.group_ci("backend=x", "energy_j")
        assert (g.method, g.ci_low, g.ci_high, g.mean) == ("constant", 3.0, 3.0, 3.0)
        assert g.warning == "all values equal: the interval is a point"


class TestSummarizeTable:
    def test_values_keep_their_order_around_gaps_and_failed_cycles(self):
        x = list(SKEWED)
        df = frame({"a": [1.0, 2.0], "e": x[:5] + [math.nan, math.inf] + x[5:]})
        df.loc[len(df)] = {"experiment_id": "a", "status": "failed", "cycle": 3, "energy_j": 99.0}
        df.loc[len(df)] = {"experiment_id": "0-failed", "status": "failed", "cycle": 1, "energy_j": 99.0}
        df["energy_j"] = df["energy_j"].astype(object)
        df.loc[0, "energy_j"] = "n/a"  # not a number: missing
        s = summarize(df, metrics=["energy_j"], seed=9, n_resamples=300)
        ref = bca_mean_intervals(SKEWED[None, :], n_resamples=300, rng=np.random.default_rng(9))
        e = s.ci("e", "energy_j")
        assert (e.n, e.ci_low, e.ci_high) == (12, ref.low[0], ref.high[0])
        a = s.ci("a", "energy_j")
        assert (a.n, a.mean, a.method) == (1, 2.0, "none") and math.isnan(a.sd)
        failed = s.ci("0-failed", "energy_j")
        assert failed.n == 0 and math.isnan(failed.mean) and failed.warning == "no values"

    def test_mean_and_sd_skip_missing_values(self):
        s = summarize(frame({"e": [1.0, math.nan, 3.0]}), metrics=["energy_j"], seed=1)
        ci = s.ci("e", "energy_j")
        assert (ci.n, ci.mean, ci.sd) == (2, 2.0, pytest.approx(math.sqrt(2)))

    def test_summary_records_what_it_was_asked(self):
        df = frame({"a": [1.0, 2.0, 4.0], "b": [2.0, 3.0, 5.0]})
        df["campaign"], df["run_id"], df["energy_source"], df["run_dir"] = "c1", "r1", "nvml", "/runs/r1"
        df["cycles_total"] = 3
        df.loc[0, "energy_source"] = None
        df.attrs["skipped"] = ["bad.json: not a result"]
        s = summarize(df, metrics=["energy_j"], seed=3, n_resamples=300, confidence=0.9, expand=False,
                      group_by=["backend", "backend"])
        assert (s.seed, s.n_resamples, s.confidence, s.expanded, s.group_by) == (3, 300, 0.9, False, ("backend",))
        assert s.skipped == ["bad.json: not a result"]
        header = dict(s.header)
        assert header.pop("created_at")
        assert header == {"campaigns": ["c1"], "run_ids": ["r1"], "energy_sources": ["nvml"],
                          "run_dirs": ["/runs/r1"], "cycles_configured": 3, "items": 6}
        assert list(s.groups.columns[:2]) == ["group", "n_experiments"] and list(s.groups["n_experiments"]) == [1, 1]
        stat_at = list(s.experiments.columns).index("energy_j_mean")
        assert list(s.experiments.columns).index("config.backend") > stat_at  # config columns last
        plain = summarize(df.drop(columns=["cycles_total", "campaign"]), metrics=["energy_j"], seed=3)
        assert plain.groups is None and plain.expanded is True and plain.header["cycles_configured"] is None
        assert plain.header["campaigns"] == []

    def test_the_width_note_uses_the_confidence(self):
        metric = "adjusted_energy_per_output_token_j"
        values = [0.30, 0.34, 0.27, 0.33, 0.29]
        df = pd.DataFrame({"experiment_id": "e", "status": "passed", "cycle": range(1, 6), metric: values})
        row = summarize(df, metrics=[metric], seed=1, confidence=0.8).experiments.iloc[0]
        rel = np.std(values, ddof=1) / np.mean(values)
        assert row["cycles_for_3pct"] == cycles_needed(rel, 0.03, 0.8) != cycles_needed(rel, 0.03, 0.95)

    def test_spread_notes_in_the_table_use_the_confidence(self):
        s = summarize(frame({"e": [100.0, 104.0, 96.0]}), metrics=["energy_j"], seed=1, confidence=0.9)
        need = cycles_needed(0.04, 0.02, 0.9)
        assert f"needs {need} cycles for ±2 %" in s.ci("e", "energy_j").warning

    def test_a_group_of_single_cycles_keeps_its_small_sample_warning(self):
        s = summarize(frame({"a": [1.0], "b": [2.0]}, backend={"a": "x", "b": "x"}), metrics=["energy_j"],
                      seed=1, group_by=["backend"])
        assert s.group_ci("backend=x", "energy_j").warning == (
            "n=2 < 3: interval unreliable (run at least 3 cycles); no experiment has 2 or more cycles: no interval")


class TestGroupDetails:
    def test_the_welch_satterthwaite_tail_of_a_group(self):
        n = np.array([[12, 2, 1]])
        sd = np.array([[2.0, 3.0, np.nan]])
        weight = n / n.sum()

        def by_group(values):
            return np.bincount(np.zeros(3, dtype=int), weights=np.asarray(values, dtype=float).ravel(), minlength=1)

        var = np.array([weight[0, 0] ** 2 * 4.0 / 12, weight[0, 1] ** 2 * 9.0 / 2])
        df = var.sum() ** 2 / (var[0] ** 2 / 11 + var[1] ** 2 / 1)
        ratio = var.sum() / (var[0] * 11 / 12 + var[1] * 1 / 2)
        total, got_df, boot = stats._group_variance(sd, n, weight, by_group)
        assert (total[0], got_df[0]) == pytest.approx((var.sum(), df), rel=1e-12)
        got = stats._group_alpha(total, got_df, boot, 0.9, True)
        assert got[0] == pytest.approx(float(expanded_alpha(0.9, ratio, df)), rel=1e-12)
        assert list(stats._group_alpha(total, got_df, boot, 0.9, False)) == pytest.approx([0.05])

    def test_two_cycle_strata_are_resampled_and_have_an_sd(self):
        s = summarize(frame({"a": [1.0, 3.0], "b": [2.0, 6.0]}, backend={"a": "x", "b": "x"}),
                      metrics=["energy_j"], seed=1, group_by=["backend"])
        g = s.group_ci("backend=x", "energy_j")
        assert g.method == "t" and g.ci_low < g.mean < g.ci_high and g.sd == pytest.approx(np.std([1, 3, 2, 6], ddof=1))
        assert s.groups["energy_j_n"].dtype.kind == "i"
        alone = summarize(frame({"a": [1.0, 3.0]}), metrics=["energy_j"], seed=1, group_by=["backend"])
        assert alone.group_ci("backend=a", "energy_j").sd == pytest.approx(math.sqrt(2))
        single = summarize(frame({"a": [5.0]}), metrics=["energy_j"], seed=1, group_by=["backend"])
        one = single.group_ci("backend=a", "energy_j")
        assert (one.n, one.mean, one.method) == (1, 5.0, "none") and math.isnan(one.sd)

    def test_a_constant_group_beside_a_varying_one_is_a_point(self):
        df = frame({"a": [2.0, 2.0, 2.0], "b": [7.0], "c": [1.0, 2.0, 4.0]}, backend={"a": "x", "b": "x", "c": "y"})
        s = summarize(df, metrics=["energy_j"], seed=1, group_by=["backend"])
        x, y = s.group_ci("backend=x", "energy_j"), s.group_ci("backend=y", "energy_j")
        assert (x.method, x.ci_low, x.ci_high) == ("constant", 3.25, 3.25) and y.method == "t"

    def test_groups_follow_their_experiments_whatever_the_row_order(self):
        df = frame({"b": [10.0, 11.0, 13.0], "a": [1.0, 2.0, 4.0]}, backend={"a": "x", "b": "y"})
        s = summarize(df, metrics=["energy_j"], seed=1, group_by=["backend"])
        assert s.group_ci("backend=x", "energy_j").mean == pytest.approx(7 / 3)
        assert s.group_ci("backend=y", "energy_j").mean == pytest.approx(34 / 3)

    def test_a_two_cycle_stratum_counts_in_the_acceleration(self):
        rng = np.random.default_rng(12)
        a, b = np.array([0.0, 40.0]), rng.lognormal(1.0, 0.8, 12)  # a's spread dominates the denominator
        s = summarize(frame({"a": list(a), "b": list(b)}, backend={"a": "x", "b": "x"}), metrics=["energy_j"],
                      seed=2, n_resamples=20_000, group_by=["backend"], expand=False)
        g = s.group_ci("backend=x", "energy_j")
        w = np.array([2, 12]) / 14

        def statistic(x, y, axis=-1):
            return w[0] * np.mean(x, axis=axis) + w[1] * np.mean(y, axis=axis)

        ref = sps.bootstrap((a, b), statistic, n_resamples=20_000, rng=np.random.default_rng(0),
                            method="BCa").confidence_interval
        width = ref.high - ref.low
        assert abs(g.ci_low - ref.low) < 0.03 * width and abs(g.ci_high - ref.high) < 0.03 * width


class TestMoreWarnings:
    def test_unexpanded_small_samples_keep_their_warning_and_no_coverage(self):
        ci = bootstrap_ci([1.0, 2.0, 4.0], expand=False, seed=1, n_resamples=300)
        assert ci.method == "BCa" and ci.warning.startswith("n=3: the observed spread")
        plain = bootstrap_ci(SKEWED, expand=False, seed=1, n_resamples=300)
        assert math.isnan(plain.coverage) and math.isnan(plain.coverage_skewed)

    def test_a_point_interval_keeps_the_small_sample_warning(self):
        s = summarize(frame({"e": [5.0, 5.0]}), metrics=["energy_j"], seed=1)
        warning = s.ci("e", "energy_j").warning
        assert warning.startswith("n=2 < 3") and warning.endswith("; all values equal: the interval is a point")
