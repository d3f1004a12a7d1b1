"""bootstrap_ci (scipy) and summarize (per experiment and per group)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pytest_llenergy.results import RunDirectory, bootstrap_ci, load, summarize

from .conftest import VALUES
from .factory import make_config, make_result, write_run


class TestBootstrapCI:
    def test_bca_interval_brackets_the_mean(self):
        values = [10.0, 10.4, 9.8, 10.1, 10.2, 10.3, 9.9, 10.0, 10.2, 10.1, 9.7, 10.5]
        ci = bootstrap_ci(values, seed=1)
        assert ci.n == 12 and ci.method == "BCa" and ci.warning is None
        assert ci.ci_low < ci.mean < ci.ci_high
        assert ci.mean == pytest.approx(np.mean(values)) and ci.sd == pytest.approx(np.std(values, ddof=1))
        assert 0.93 < ci.coverage < 0.96 and 0.90 < ci.coverage_skewed < 0.95

    def test_student_t_below_ten_values(self):
        values = [10.0, 10.4, 9.8, 10.1, 10.2]
        ci = bootstrap_ci(values, seed=1)
        half = 2.7764451051977987 * np.std(values, ddof=1) / np.sqrt(5)  # t_4(0.975)
        assert ci.method == "t" and ci.warning is None
        assert (ci.ci_low, ci.ci_high) == pytest.approx((10.1 - half, 10.1 + half))
        assert 0.93 < ci.coverage < 0.96 and 0.88 < ci.coverage_skewed < 0.94
        assert bootstrap_ci(values, seed=1, expand=False).method == "BCa"  # scipy's plain interval at every n

    def test_three_values_say_how_many_cycles_the_spread_needs(self):
        ci = bootstrap_ci([100.0, 104.0, 96.0], seed=1)  # sd 4 % of the mean
        # n for +-2 %: t_(n-1) * 0.04 / sqrt(n) <= 0.02 first holds at n = 18; for +-5 %: n = 5
        assert ci.method == "t" and "needs 18 cycles for ±2 %, 5 for ±5 %" in ci.warning
        assert ci.ci_high - ci.ci_low > 104.0 - 96.0  # wider than the range: t, not the bootstrap's [min, max]

    def test_seeded_results_repeat(self):
        values = np.random.default_rng(0).normal(5, 1, 8)
        assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)

    def test_no_interval_below_two_values(self):
        for values in ([], [3.0], [3.0, float("nan")]):
            ci = bootstrap_ci(values, seed=1)
            assert math.isnan(ci.ci_low) and math.isnan(ci.ci_high) and ci.method == "none" and ci.warning
        assert bootstrap_ci([3.0], seed=1).mean == 3.0

    def test_two_values_warn(self):
        ci = bootstrap_ci([1.0, 2.0], seed=1)
        assert ci.n == 2 and "n=2 < 3" in ci.warning and ci.ci_low <= ci.ci_high

    def test_equal_values_give_a_point_with_a_note(self):
        ci = bootstrap_ci([4.0, 4.0, 4.0], seed=1)
        assert (ci.ci_low, ci.ci_high, ci.method) == (4.0, 4.0, "constant") and "all 3 values equal" in ci.warning

    def test_nan_values_are_dropped(self):
        assert bootstrap_ci([1.0, float("nan"), 2.0, 3.0], seed=1).n == 3

    def test_degenerate_bca_falls_back_to_percentile(self, monkeypatch: pytest.MonkeyPatch):
        from pytest_llenergy.results import stats

        real = stats._scipy_interval

        def degenerate(x, level, n_resamples, seed, method):
            return real(x, level, n_resamples, seed, method) if method == "percentile" else (math.nan, math.nan, "degenerate")

        monkeypatch.setattr(stats, "_scipy_interval", degenerate)
        ci = bootstrap_ci([1.0, 2.0, 3.0, 5.0, 4.0, 2.5, 3.5, 1.5, 4.5, 2.0], seed=1)
        assert ci.method == "percentile" and "percentile interval" in ci.warning and ci.ci_low < ci.ci_high

    def test_unknown_method_is_an_error(self):
        with pytest.raises(ValueError, match="unknown bootstrap method"):
            bootstrap_ci([1.0, 2.0, 3.0], method="jackknife")

    def test_relative_halfwidth(self):
        ci = bootstrap_ci([10.0, 10.4, 9.8, 10.1], seed=1)
        assert ci.halfwidth_rel == pytest.approx((ci.ci_high - ci.ci_low) / 2 / ci.mean)


class TestSummarize:
    def test_one_row_per_experiment_with_units_in_names(self, run_dir: Path):
        summary = summarize(load(run_dir), seed=1)
        table = summary.experiments.set_index("experiment_id")
        assert list(table.index) == sorted(VALUES)
        row = table.loc["transformers-gpt2-bs8-bf16-bbbb"]
        assert row["energy_j_n"] == 4 and row["energy_j_mean"] == pytest.approx(50.5)
        assert row["energy_j_sd"] == pytest.approx(np.std(VALUES["transformers-gpt2-bs8-bf16-bbbb"], ddof=1))
        assert row["energy_adjusted_j_mean"] == pytest.approx(0.6 * 50.5)
        assert row["energy_j_ci_low"] < 50.5 < row["energy_j_ci_high"] and row["energy_j_method"] == "t"
        assert summary.main_metric == "adjusted_energy_per_output_token_j"
        assert "ttft_ms_mean_mean" in table and table["ttft_ms_mean_n"].eq(0).all()  # not streamed: not measured

    def test_agrees_with_bootstrap_ci_within_monte_carlo_error(self, run_dir: Path):
        summary = summarize(load(run_dir), seed=1)
        for exp, values in VALUES.items():
            ref, got = bootstrap_ci(values, seed=7), summary.ci(exp, "energy_j")
            assert (got.n, got.mean) == (ref.n, pytest.approx(ref.mean))
            width = ref.ci_high - ref.ci_low
            assert abs(got.ci_low - ref.ci_low) < 0.1 * width and abs(got.ci_high - ref.ci_high) < 0.1 * width

    def test_only_passed_cycles_count(self, tmp_path: Path):
        run = write_run(tmp_path, {"e": [10.0, 11.0, 12.0]})
        run.write_result(make_result("e", 4, energy_j=999.0, status="failed"))
        table = summarize(load(run.path), seed=1).experiments.iloc[0]
        assert table["energy_j_n"] == 3 and table["energy_j_mean"] == pytest.approx(11.0)
        assert (table["n_passed"], table["n_failed"], table["items"]) == (3, 1, 4)

    def test_same_seed_same_numbers(self, run_dir: Path):
        df = load(run_dir)
        a, b = summarize(df, seed=5), summarize(df, seed=5)
        pd.testing.assert_frame_equal(a.experiments, b.experiments)
        assert summarize(df).seed is not None  # drawn and recorded

    def test_missing_values_and_single_cycles(self, tmp_path: Path):
        run = RunDirectory(tmp_path / "run")
        run.write_result(make_result("one", 1, energy_j=5.0))
        run.write_result(make_result("gaps", 1, energy_j=5.0))
        run.write_result(make_result("gaps", 2, energy_j=None))
        run.write_result(make_result("gaps", 3, energy_j=7.0))
        table = summarize(load(run.path), seed=1).experiments.set_index("experiment_id")
        assert table.loc["one", "energy_j_n"] == 1 and table.loc["one", "energy_j_method"] == "none"
        assert math.isnan(table.loc["one", "energy_j_ci_low"]) and "n=1" in table.loc["one", "energy_j_warning"]
        assert table.loc["gaps", "energy_j_n"] == 2 and table.loc["gaps", "energy_j_mean"] == 6.0
        assert "n=2 < 3" in table.loc["gaps", "energy_j_warning"]

    def test_flags_and_extended_metrics(self, tmp_path: Path):
        run = RunDirectory(tmp_path / "run")
        for c in (1, 2, 3):
            run.write_result(make_result("e", c, energy_j=10.0 + c, simulated=True, source="replay",
                                         throttle_s={"power_cap": 0.5} if c == 2 else None,
                                         flags=["short_window"] if c == 3 else None))
        summary = summarize(load(run.path), seed=1)
        row = summary.experiments.iloc[0]
        assert bool(row["simulated"]) and not bool(row["estimated"]) and row["energy_source"] == "replay"
        assert (row["throttled_cycles"], row["short_window_cycles"], row["warmup_unconverged_cycles"]) == (1, 1, 1)
        assert row["peak_memory_mb_max"] == 1024.0 and row["mean_utilization_pct_mean"] == 87.5
        assert row["throttle_power_cap_s_mean"] == 0.5 and row["config.workload.batch_size"] == 8
        assert summary.flag_counts()["simulated"] == 1

    def test_metrics_by_short_name_or_column(self, run_dir: Path):
        summary = summarize(load(run_dir), metrics=["energy", "peak_power_w"], seed=1, n_resamples=200)
        assert summary.metrics == ("energy_j", "peak_power_w")
        with pytest.raises(ValueError, match="unknown metric 'joules'"):
            summarize(load(run_dir), metrics=["joules"], seed=1)

    def test_empty_frame(self, tmp_path: Path):
        summary = summarize(load(tmp_path), seed=1)
        assert len(summary.experiments) == 0 and summary.main_metric == "energy_per_output_token_j"


class TestGroups:
    def test_groups_by_config_paths(self, run_dir: Path):
        summary = summarize(load(run_dir), seed=1, group_by=["backend", "workload.batch_size"])
        groups = summary.groups.set_index("group")
        assert list(groups.index) == ["backend=transformers, workload.batch_size=1",
                                      "backend=transformers, workload.batch_size=8", "backend=vllm, workload.batch_size=8"]
        assert (groups["n_experiments"] == 1).all()
        one = groups.loc["backend=vllm, workload.batch_size=8"]
        exp = summary.ci("vllm-gpt2-bs8-bf16-cccc", "energy_j")
        assert one["energy_j_mean"] == pytest.approx(exp.mean) and one["energy_j_n"] == 4

    def test_group_mean_pools_cycle_values_and_ci_is_stratified(self, run_dir: Path):
        summary = summarize(load(run_dir), seed=1, group_by=["backend"])
        t = summary.group_ci("backend=transformers", "energy_j")
        pooled = VALUES["transformers-gpt2-bs1-bf16-aaaa"] + VALUES["transformers-gpt2-bs8-bf16-bbbb"]
        assert t.n == 8 and t.mean == pytest.approx(np.mean(pooled)) and t.sd == pytest.approx(np.std(pooled, ddof=1))
        # Stratified: the CI reflects cycle noise (~1 J), not the 50 J gap between the two experiments.
        assert t.ci_low < t.mean < t.ci_high and t.ci_high - t.ci_low < 5

    def test_single_cycle_experiments_give_no_group_interval(self, tmp_path: Path):
        run = write_run(tmp_path, {"a": [1.0], "b": [2.0]})
        g = summarize(load(run.path), seed=1, group_by=["backend"]).groups.iloc[0]
        assert g["energy_j_n"] == 2 and g["energy_j_method"] == "none" and math.isnan(g["energy_j_ci_low"])
        assert "no experiment has 2 or more cycles" in g["energy_j_warning"]

    def test_unknown_group_path_is_an_error(self, run_dir: Path):
        with pytest.raises(ValueError, match="unknown config path 'workload.batchsize'"):
            summarize(load(run_dir), seed=1, group_by=["workload.batchsize"])

    def test_mixed_configs(self, tmp_path: Path):
        configs = {"a": make_config(precision="float16"), "b": make_config(precision="bfloat16")}
        run = write_run(tmp_path, {"a": [1.0, 1.1, 0.9], "b": [2.0, 2.2, 1.8]}, config_of=configs)
        groups = summarize(load(run.path), seed=1, group_by=["precision"]).groups
        assert list(groups["group"]) == ["precision=bfloat16", "precision=float16"]
        assert list(groups["config.precision"]) == ["bfloat16", "float16"]
