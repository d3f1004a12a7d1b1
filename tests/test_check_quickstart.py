"""scripts/check_quickstart.py (the CI quickstart step's judge) on doctored summaries: every headline
metric is checked, and each kind of damage fails naming what is wrong."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "check_quickstart.py"
spec = importlib.util.spec_from_file_location("check_quickstart", SCRIPT)
check_quickstart = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_quickstart)


def block(mean: float, half: float = 0.1, n: int = 3) -> dict:
    return {"n": n, "mean": mean, "sd": half, "ci_low": mean * (1 - half), "ci_high": mean * (1 + half), "method": "t"}


def experiment(exp_id: str, adjusted: bool) -> dict:
    """A consistent experiment: 100 J raw over 2 s at 50 W, 1000 output and 1500 tokens in all;
    with a 40 W idle baseline, 20 J adjusted."""
    stats = {"energy_j": block(100.0), "energy_per_output_token_j": block(0.1), "energy_per_token_j": block(100 / 1500),
             "tokens_per_s": block(750.0), "mean_power_w": block(50.0)}
    entry = {"experiment_id": exp_id, "output_tokens_mean": 1000.0, "duration_s_mean": 2.0, "baseline_power_w_mean": None,
             "stats": stats}
    if adjusted:
        stats |= {"energy_adjusted_j": block(20.0), "adjusted_energy_per_output_token_j": block(0.02),
                  "adjusted_energy_per_token_j": block(20 / 1500)}
        entry["baseline_power_w_mean"] = 40.0
    return entry


def write_run(root: Path, experiments: list[dict], statuses: list[str] | None = None, report: bool = True) -> Path:
    run = root / "quickstart" / "2026-01-01T00-00-00-abcd"
    run.mkdir(parents=True)
    statuses = statuses or ["passed"] * (3 * len(experiments))
    entries = {f"item{i}": {"status": s} for i, s in enumerate(statuses)}
    (run / "manifest.json").write_text(json.dumps({"entries": entries}))
    (run / "summary.json").write_text(json.dumps({"experiments": experiments}))
    if report:
        (run / "report.html").write_text("<html></html>")
    return root


def problems(tmp_path: Path, experiments: list[dict], **kwargs) -> list[str]:
    root = write_run(tmp_path / "r", experiments, **kwargs)
    return check_quickstart.check(root, "quickstart", len(experiments), 3)[0]


@pytest.mark.parametrize("adjusted", [False, True], ids=["estimate", "baseline"])
def test_a_sound_run_passes(tmp_path, capsys, adjusted):
    root = write_run(tmp_path / "r", [experiment("a", adjusted), experiment("b", adjusted)])
    assert check_quickstart.main([str(root)]) == 0
    out = capsys.readouterr().out
    metric = "adjusted_energy_per_output_token_j" if adjusted else "energy_per_output_token_j"
    assert f"check_quickstart: a: {metric} n=3" in out and "check_quickstart: OK: 2 experiments x 3 cycles" in out


def doctor(path: str, value, adjusted: bool = True) -> dict:
    entry = experiment("a", adjusted)
    node = entry
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return entry


DELETE = object()


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("stats.energy_j.mean", 0.0, "a: energy_j mean = 0.0, expected > 0"),
    ("stats.energy_j", {"n": 3, "mean": 0.0, "ci_low": -1.0, "ci_high": 1.0}, "a: energy_j mean = 0.0, expected > 0"),
    ("stats.energy_adjusted_j", block(-5.0), "a: energy_adjusted_j mean = -5.0, expected > 0"),
    ("stats.energy_adjusted_j", {"n": 3, "mean": 0.0, "ci_low": -2.0, "ci_high": 2.0}, "a: energy_adjusted_j mean = 0.0"),
    ("stats.mean_power_w", DELETE, "a: no statistics for mean_power_w"),
    ("stats.tokens_per_s.ci_low", None, "a: tokens_per_s has no interval around its mean"),
    ("stats.tokens_per_s.ci_high", float("nan"), "a: tokens_per_s has no interval around its mean"),
    ("stats.energy_per_token_j.ci_low", 0.07, "a: energy_per_token_j has no interval around its mean"),  # above the mean
    ("stats.energy_j", {"n": 3, "mean": 100.0, "ci_low": 100.0, "ci_high": 100.0}, "a: energy_j has no interval"),  # zero width
    ("stats.mean_power_w.n", 2, "a: mean_power_w n = 2, expected 3"),
    ("stats.adjusted_energy_per_token_j.n", 1, "a: adjusted_energy_per_token_j n = 1, expected 3"),
    ("stats.energy_per_output_token_j", block(0.2), "a: energy_per_output_token_j 0.2 J x 1000 output tokens is not energy_j 100 J"),
    ("stats.adjusted_energy_per_output_token_j", block(0.03),
     "a: adjusted_energy_per_output_token_j 0.03 J x 1000 output tokens is not energy_adjusted_j 20 J"),
    ("stats.energy_per_token_j", block(0.2), "a: energy_per_token_j 0.2 > energy_per_output_token_j 0.1"),
    ("stats.energy_adjusted_j", block(120.0), "a: adjusted energy 120 J is not below raw energy 100 J (idle 40 W)"),
    ("stats.energy_adjusted_j", block(60.0), "a: raw 100 J - adjusted 60 J over 2 s is 20 W of idle power, measured 40 W"),
    ("baseline_power_w_mean", None, "a: adjusted figures without a measured idle baseline (baseline_power_w_mean=None)"),
    ("stats.adjusted_energy_per_token_j", DELETE, "a: adjusted figures incomplete: adjusted_energy_per_token_j missing"),
])
def test_each_doctored_figure_fails_naming_it(tmp_path, path, value, expected):
    found = problems(tmp_path, [doctor(path, value if value is DELETE else copy.deepcopy(value))])
    assert any(p.startswith(expected) for p in found), found


def test_a_baseline_without_adjusted_figures_fails(tmp_path):
    entry = experiment("a", adjusted=False) | {"baseline_power_w_mean": 40.0}
    assert problems(tmp_path, [entry]) == ["a: an idle baseline (40 W) was measured but there are no adjusted figures"]


def test_within_the_tolerances_passes(tmp_path):
    entry = experiment("a", adjusted=True)
    entry["stats"]["energy_per_output_token_j"] = block(0.104)  # 4 %: mean of ratios against ratio of means
    entry["stats"]["energy_adjusted_j"] = block(26.0)  # implied idle 37 W against 40 W measured
    entry["stats"]["adjusted_energy_per_output_token_j"] = block(0.026)
    assert problems(tmp_path, [entry]) == []


def test_run_level_problems(tmp_path):
    assert problems(tmp_path / "1", [experiment("a", False)], statuses=["passed", "skipped", "passed"]) == \
        ["items not passed: {'item1': 'skipped'}"]
    assert problems(tmp_path / "2", [experiment("a", False)], statuses=["passed"] * 2) == ["2 items planned, expected 3"]
    assert problems(tmp_path / "3", [experiment("a", False)], report=False)[0].endswith("report.html missing")
    root = write_run(tmp_path / "4", [experiment("a", False)])
    assert check_quickstart.check(root, "quickstart", 2, 3)[0][-1] == "summary.json has 1 experiments, expected 2"
    assert check_quickstart.check(tmp_path / "none", "quickstart", 1, 3)[0][0].startswith("expected one run under")


def test_the_command_exits_1_listing_each_problem(tmp_path, capsys):
    root = write_run(tmp_path / "r", [doctor("stats.energy_j.mean", 0.0), experiment("b", True)])
    assert check_quickstart.main([str(root), "--experiments", "2"]) == 1
    err = capsys.readouterr().err
    assert "check_quickstart: FAILED: a: energy_j mean = 0.0, expected > 0" in err and "b:" not in err
