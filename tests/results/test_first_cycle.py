"""The first-cycle check: a first window unlike the later ones is flagged, at the prediction interval's edge."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t as student_t

from pytest_llenergy.results import RunDirectory, load, summarize
from pytest_llenergy.results.first_cycle import first_cycle_check
from pytest_llenergy.results.terminal import format_terminal_table

from .factory import make_result

LATER = np.array([10.0, 10.4, 9.8, 10.2, 9.6])


def half_width(later: np.ndarray) -> float:
    m = later.size
    return float(student_t.ppf(0.995, m - 1) * later.std(ddof=1) * math.sqrt(1 + 1 / m))


def test_the_prediction_interval_edge_decides():
    mean, half = LATER.mean(), half_width(LATER)
    assert first_cycle_check(mean + 0.999 * half, LATER) == (pytest.approx((mean + 0.999 * half) / mean), False)
    assert first_cycle_check(mean + 1.001 * half, LATER)[1] is True
    assert first_cycle_check(mean - 1.001 * half, LATER)[1] is True  # a first cycle too fast is as suspect
    assert first_cycle_check(mean - 0.999 * half, LATER)[1] is False


def test_too_few_later_cycles_or_no_value_say_nothing():
    assert first_cycle_check(20.0, LATER[:2]) is None  # 3 cycles in all
    assert first_cycle_check(20.0, np.array([10.0, np.nan, 10.2, 9.9]))  # 3 finite later values are enough
    assert first_cycle_check(20.0, np.array([10.0, np.nan, 10.2])) is None
    assert first_cycle_check(float("nan"), LATER) is None
    assert first_cycle_check(1.0, np.zeros(4)) is None


def write(tmp_path: Path, series: dict[str, list[float]], failed_first: tuple[str, ...] = (),
          durations: dict[str, list[float]] | None = None) -> Path:
    run = RunDirectory(tmp_path / "run")
    for experiment, values in series.items():
        seconds = (durations or {}).get(experiment, [2.0] * len(values))
        for cycle in reversed(range(1, len(values) + 1)):  # written out of order: the check sorts by cycle
            status = "failed" if cycle == 1 and experiment in failed_first else "passed"
            run.write_result(make_result(experiment, cycle, energy_j=100.0, adjusted_j=values[cycle - 1],
                                         duration_s=seconds[cycle - 1], status=status, cycles_total=len(values)))
    return run.path


def test_summary_flags_the_experiment_and_counts_it(tmp_path: Path):
    path = write(tmp_path, {"cold": [15.0, 10.0, 10.4, 9.8, 10.2], "warm": [10.1, 10.0, 10.4, 9.8, 10.2],
                            "short": [30.0, 10.0, 10.2]})
    summary = summarize(load(path), seed=1)
    table = summary.experiments.set_index("experiment_id")
    assert table.loc["cold", "first_cycle_outlier"] and not table.loc["warm", "first_cycle_outlier"]
    assert table.loc["cold", "first_cycle_ratio"] == pytest.approx(15.0 / np.mean([10.0, 10.4, 9.8, 10.2]))
    assert math.isnan(table.loc["short", "first_cycle_ratio"]) and not table.loc["short", "first_cycle_outlier"]
    assert summary.flag_counts()["first_cycle_outliers"] == 1
    lines = format_terminal_table(summary)
    flagged = [i for i, line in enumerate(lines) if line.startswith("first cycle unlike the later ones")]
    assert flagged and lines[flagged[0] + 1] == \
        "  cold: first cycle at Energy per output token (adjusted) 1.49x the later cycles' mean"
    assert not any("warm: first cycle" in line for line in lines)


def test_the_earliest_passed_cycle_is_the_first(tmp_path: Path):
    # cycle 1 failed: cycle 2 is the first measured window, and it is in line with the rest
    path = write(tmp_path, {"e": [99.0, 10.1, 10.0, 10.4, 9.8, 10.2]}, failed_first=("e",))
    row = summarize(load(path), seed=1).experiments.iloc[0]
    assert not row["first_cycle_outlier"] and row["first_cycle_ratio"] == pytest.approx(10.1 / 10.1)
    assert not any(line.startswith("first cycle") for line in format_terminal_table(summarize(load(path), seed=1)))


def test_a_slow_first_window_is_flagged_by_throughput_when_energy_hides_it(tmp_path: Path):
    """As on the H200: a first window 2x longer, its extra time host work near idle power, so the
    adjusted energy per token is in line while output tokens per second are not."""
    path = write(tmp_path, {"e": [10.1, 10.0, 10.4, 9.8, 10.2]}, durations={"e": [4.0, 2.0, 2.1, 1.9, 2.05]})
    row = summarize(load(path), seed=1).experiments.iloc[0]
    assert row["first_cycle_outlier"] and row["first_cycle_note"] == "output tok/s 0.50x"
    assert row["first_cycle_ratio"] == pytest.approx(10.1 / 10.1)  # the main metric's own ratio


def test_exchangeable_cycles_are_flagged_at_the_stated_rate():
    """Normal, exchangeable cycles: each checked metric is outside its 99 % prediction interval 1 % of
    the time, so three independent metrics flag ~3 % of experiments (a z quantile would flag ~22 % at 5 cycles)."""
    import pandas as pd

    from pytest_llenergy.results.first_cycle import mark_first_cycles

    rng = np.random.default_rng(7)
    n, cycles = 4000, 5
    ids = np.repeat([f"e{i}" for i in range(n)], cycles)
    frame = pd.DataFrame({"experiment_id": ids, "cycle": np.tile(np.arange(1, cycles + 1), n), "status": "passed",
                          "adjusted_energy_per_output_token_j": rng.normal(10, 1, n * cycles),
                          "output_tokens_per_s": rng.normal(500, 20, n * cycles),
                          "energy_per_output_token_j": rng.normal(20, 2, n * cycles)})
    table = mark_first_cycles(frame, pd.DataFrame({"experiment_id": [f"e{i}" for i in range(n)]}),
                              "adjusted_energy_per_output_token_j")
    assert 0.022 < table["first_cycle_outlier"].mean() < 0.038


def test_the_report_names_the_experiment(tmp_path: Path):
    from pytest_llenergy.results.report_html import build_report

    path = write(tmp_path, {"cold": [15.0, 10.0, 10.4, 9.8, 10.2], "warm": [10.1, 10.0, 10.4, 9.8, 10.2]})
    html = build_report(path, summarize(load(path), seed=1)).read_text()
    assert "First cycles unlike the later ones" in html and "99% prediction interval" in html
    assert "cold: first cycle at Energy per output token (adjusted) 1.49x" in html and "warm: first cycle" not in html


def frame(rows: dict[str, list[float]], **columns: dict[str, list[float]]):
    """A results frame: per experiment, main-metric values by cycle (plus other metric columns)."""
    import pandas as pd

    records = []
    for experiment, values in rows.items():
        for cycle, value in enumerate(values, start=1):
            record = {"experiment_id": experiment, "cycle": cycle, "metric": value}
            for name, series in columns.items():
                record[name] = series[experiment][cycle - 1]
            records.append(record)
    return pd.DataFrame(records)


def table_of(*ids: str):
    import pandas as pd

    return pd.DataFrame({"experiment_id": list(ids)})


COLD, STEADY = [15.0, 10.0, 10.4, 9.8, 10.2], [10.1, 10.0, 10.4, 9.8, 10.2]


def test_rows_follow_the_table_order_not_the_sorted_ids():
    from pytest_llenergy.results.first_cycle import mark_first_cycles

    out = mark_first_cycles(frame({"a": STEADY, "b": COLD}), table_of("b", "missing", "a"), "metric")
    assert out["first_cycle_outlier"].tolist() == [True, False, False]
    assert out["first_cycle_ratio"].iloc[0] == pytest.approx(15.0 / 10.1) and math.isnan(out["first_cycle_ratio"].iloc[1])
    assert out["first_cycle_note"].iloc[0] == "metric 1.49x"  # a column without a label: its name
    assert out["first_cycle_note"].iloc[1:].isna().all()


def test_no_status_column_counts_every_row_and_failed_rows_are_left_out():
    from pytest_llenergy.results.first_cycle import mark_first_cycles

    df = frame({"b": COLD})
    assert mark_first_cycles(df, table_of("b"), "metric")["first_cycle_outlier"].tolist() == [True]
    df["status"] = ["failed"] + ["passed"] * 4  # the cold window failed: cycle 2 is the first, and in line
    assert mark_first_cycles(df, table_of("b"), "metric")["first_cycle_outlier"].tolist() == [False]


def test_an_experiment_with_one_passed_cycle_beside_others():
    from pytest_llenergy.results.first_cycle import mark_first_cycles

    out = mark_first_cycles(frame({"a": [10.0], "b": COLD}), table_of("a", "b"), "metric")
    assert out["first_cycle_outlier"].tolist() == [False, True] and math.isnan(out["first_cycle_ratio"].iloc[0])


def test_a_missing_metric_column_skips_only_that_metric():
    from pytest_llenergy.results.first_cycle import mark_first_cycles

    # the main metric and output tok/s are absent; raw J per output token still decides
    df = frame({"b": STEADY}, energy_per_output_token_j={"b": COLD}).drop(columns="metric")
    out = mark_first_cycles(df, table_of("b"), "adjusted_energy_per_output_token_j")
    assert out["first_cycle_note"].tolist() == ["raw J/output token 1.49x"]
    assert out["first_cycle_outlier"].tolist() == [True] and math.isnan(out["first_cycle_ratio"].iloc[0])


@pytest.mark.parametrize("metric, drop", [(None, None), ("metric", "cycle")])
def test_without_a_metric_or_cycles_every_row_says_nothing(metric, drop):
    from pytest_llenergy.results.first_cycle import mark_first_cycles

    df = frame({"b": COLD})
    out = mark_first_cycles(df.drop(columns=drop) if drop else df, table_of("b", "c"), metric)
    assert out["first_cycle_outlier"].tolist() == [False, False] and out["first_cycle_outlier"].dtype == bool
    assert out["first_cycle_ratio"].isna().all() and out["first_cycle_ratio"].dtype == float
    assert out["first_cycle_note"].isna().all()


def test_no_later_values_at_all_say_nothing():
    assert first_cycle_check(20.0, np.array([])) is None
    assert first_cycle_check(20.0, np.array([np.nan, np.nan])) is None


def test_terminal_lines_stop_at_the_limit_and_count_the_rest():
    import pandas as pd

    from pytest_llenergy.results.first_cycle import first_cycle_lines

    rows = pd.DataFrame({"experiment_id": [f"e{i}" for i in range(5)] + ["unchecked"],
                         "first_cycle_outlier": [True] * 5 + [np.nan], "first_cycle_note": ["metric 2.00x"] * 5 + [None]})
    lines = first_cycle_lines(rows, limit=3)
    assert lines[0].startswith("first cycle unlike the later ones (outside their 99% prediction interval)")
    assert lines[0].endswith("Its value is in the mean and CI (docs/statistics.md):")
    assert lines[1:] == ["  e0: first cycle at metric 2.00x the later cycles' mean",
                         "  e1: first cycle at metric 2.00x the later cycles' mean",
                         "  e2: first cycle at metric 2.00x the later cycles' mean",
                         "  ... 2 more (summary.csv: first_cycle_outlier)"]
    assert len(first_cycle_lines(rows, limit=5)) == 6  # exactly the limit: no "more" line
    assert first_cycle_lines(rows.drop(columns="first_cycle_outlier"), limit=3) == []


def test_every_metric_outside_its_interval_is_named():
    from pytest_llenergy.results.first_cycle import mark_first_cycles

    slow = {"b": [250.0, 500.0, 510.0, 490.0, 505.0]}
    out = mark_first_cycles(frame({"b": COLD}, output_tokens_per_s=slow), table_of("b"), "metric")
    assert out["first_cycle_note"].tolist() == ["metric 1.49x, output tok/s 0.50x"]
