"""The gates' plugin side (plugin/gates) on fake items: which budgets apply, which cycles are
judged, the across-cycles verdict on the CI's low bound, the comparison at the last cycle, and the
report status. The end-to-end runs are in test_gates.py."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_llenergy.config.budgets import Budget
from pytest_llenergy.plugin import markers as gate_markers
from pytest_llenergy.plugin.base import EXPERIMENT_ARG, WINDOWS, get_run, session_of
from pytest_llenergy.plugin.gates import budgets as gate_budgets
from pytest_llenergy.plugin.gates import compare as gate_compare
from pytest_llenergy.plugin.gates import verdicts
from pytest_llenergy.plugin.state import CampaignItem
from pytest_llenergy.results.budgets import Verdict
from pytest_llenergy.results.compare import parse_rules
from pytest_llenergy.results.stats import bootstrap_ci

EPT = "energy_per_output_token_j"


class FakeItem:
    """Just what the gates read of a pytest item."""

    def __init__(self, marker: dict[str, Any] | None = None, citem: CampaignItem | None = None,
                 run: Any = None, args: tuple[Any, ...] = (), nodeid: str = "test_x.py::test_x") -> None:
        self.nodeid = nodeid
        self.stash = pytest.Stash()
        self.config = SimpleNamespace(stash=pytest.Stash(), rootpath=None)
        if run is not None:
            session_of(self.config).run = run
        self._marker = None if marker is None else pytest.mark.energy_budget(*args, **marker).mark
        if citem is not None:
            self.callspec = SimpleNamespace(params={EXPERIMENT_ARG: citem})

    def get_closest_marker(self, name: str) -> Any:
        return self._marker if name == "energy_budget" else None


def experiment(exp_id: str = "gpt2-bs1-abc", batch_size: int = 1) -> Any:
    config = {"backend": {"name": "transformers"}, "workload": {"batch_size": batch_size}}
    def model_dump(mode: str) -> dict[str, Any]:
        assert mode == "json"  # selects compare JSON values (enum names, not objects)
        return config

    return SimpleNamespace(id=exp_id, config=SimpleNamespace(model_dump=model_dump))


def result(exp_id: str, cycle: int, status: str = "passed", **row: Any) -> Any:
    return SimpleNamespace(experiment_id=exp_id, cycle=cycle, status=status, row=row)


def campaign_run(rules: list[Any] = (), results: list[Any] = (), seed: int = 7) -> Any:
    return SimpleNamespace(seed=seed, plan=SimpleNamespace(campaign=SimpleNamespace(budgets=list(rules))),
                           run_dir=SimpleNamespace(results=list(results)))


def rule(select: Any, **limits: Any) -> Any:
    return SimpleNamespace(select=select, budget=lambda: Budget.from_kwargs(dict(limits), "campaign"))


@pytest.fixture(autouse=True)
def rows_as_given(monkeypatch):
    """cycle_values reads the saved results' rows with results.frame.run_rows; here a result is its row."""
    import pytest_llenergy.results.frame as frame

    monkeypatch.setattr(frame, "run_rows", lambda run_dir: [
        {"experiment_id": r.experiment_id, "cycle": r.cycle, "status": r.status, **r.row} for r in run_dir.results])


def item_at(cycle: int, cycles: int, previous: list[float], current: float, exp=None, seed: int = 7,
            **budget: Any) -> FakeItem:
    exp = exp or experiment()
    results = [result(exp.id, c + 1, **{EPT: v}) for c, v in enumerate(previous)]
    citem = CampaignItem(exp, cycle, 0, 1, cycles)
    return FakeItem(budget or None, citem, campaign_run(results=results, seed=seed)), {EPT: current}


class TestBudgetsAcrossCycles:
    """At the last of several cycles the bootstrap CI of every cycle decides: fail only when its low bound is over."""

    def test_mean_over_the_limit_with_the_ci_low_under_it_passes(self):
        item, figures = item_at(3, 3, [0.40, 0.70], 0.55, energy_per_output_token=0.5, adjusted=False)
        verdict = gate_budgets.evaluate(item, figures)
        check = verdict.checks[0]
        assert check["value"] == pytest.approx(0.55) and check["ci_low"] < 0.5 < check["value"] and check["n"] == 3
        assert not verdict.failed

    def test_ci_low_over_the_limit_fails(self):
        item, figures = item_at(3, 3, [0.60, 0.61], 0.62, energy_per_output_token=0.5, adjusted=False)
        verdict = gate_budgets.evaluate(item, figures)
        assert verdict.failed and verdict.checks[0]["ci_low"] > 0.5
        assert "n=3, CI low" in verdict.breaches[0]

    def test_the_interval_is_the_runs_seeded_bootstrap_ci_low_bound(self):
        series = [0.40, 0.70, 0.55, 0.52, 0.61, 0.47, 0.58, 0.66, 0.43, 0.5, 0.57, 0.49]
        stats = gate_budgets._interval_stats({EPT: series, "other": [1.0, 2.0]}, seed=11)
        ci = bootstrap_ci(series, seed=11, n_resamples=2000)
        assert stats[EPT] == (ci.mean, ci.ci_low, 12) and ci.ci_low < ci.mean < ci.ci_high
        assert set(stats) == {EPT, "other"}

    def test_from_ten_cycles_the_bootstrap_uses_the_runs_seed(self):
        series = [0.40, 0.70, 0.55, 0.52, 0.61, 0.47, 0.58, 0.66, 0.43, 0.5, 0.57]
        for seed in (3, 4):
            item, figures = item_at(12, 12, series, 0.49, seed=seed, energy_per_output_token=0.5, adjusted=False)
            check = gate_budgets.evaluate(item, figures).checks[0]
            assert check["ci_low"] == bootstrap_ci([*series, 0.49], seed=seed, n_resamples=2000).ci_low

    def test_two_cycles_judge_on_the_interval_at_the_second(self):
        item, figures = item_at(1, 2, [], 0.9, energy_per_output_token=0.5, adjusted=False)
        assert gate_budgets.evaluate(item, figures).checks[0]["provisional"] is True
        item, figures = item_at(2, 2, [0.45], 0.9, energy_per_output_token=0.5, adjusted=False)
        verdict = gate_budgets.evaluate(item, figures)
        assert not verdict.failed and verdict.checks[0]["n"] == 2 and verdict.checks[0]["ci_low"] < 0.5

    def test_a_plain_test_in_a_campaign_session_judges_its_figures(self):
        item = FakeItem({"energy": 10}, run=campaign_run())
        assert gate_budgets.evaluate(item, {"energy_adjusted_j": 11.0}).failed

    def test_every_budgets_breaches_are_kept(self):
        exp = experiment()
        citem = CampaignItem(exp, 1, 0, 1, 1)
        item = FakeItem({"energy": 1}, citem, campaign_run([rule("*", mean_power="1 W")]))
        verdict = gate_budgets.evaluate(item, {"energy_adjusted_j": 2.0, "mean_power_w": 2.0})
        assert [b.split(" >")[0] for b in verdict.breaches] == ["energy 2 J", "mean power 2 W"]

    def test_earlier_cycles_are_provisional_and_never_fail(self):
        item, figures = item_at(2, 3, [0.9], 5.0, energy_per_output_token=0.5, adjusted=False)
        verdict = gate_budgets.evaluate(item, figures)
        assert not verdict.failed and verdict.checks[0]["provisional"] is True and verdict.checks[0]["value"] == 5.0

    def test_a_single_cycle_campaign_judges_its_one_figure(self):
        item, figures = item_at(1, 1, [], 0.5, energy_per_output_token=0.5, adjusted=False)
        assert not gate_budgets.evaluate(item, figures).failed
        item, figures = item_at(1, 1, [], math.nextafter(0.5, 1), energy_per_output_token=0.5, adjusted=False)
        verdict = gate_budgets.evaluate(item, figures)
        assert verdict.failed and "provisional" not in verdict.checks[0] and verdict.checks[0]["ci_low"] is None

    def test_a_plain_test_judges_its_figures(self):
        item = FakeItem({"energy": "10 J", "adjusted": False})
        assert gate_budgets.evaluate(item, {"energy_j": 10.0}).checks[0]["n"] == 1
        assert not gate_budgets.evaluate(item, {"energy_j": 10.0}).failed
        assert gate_budgets.evaluate(item, {"energy_j": 10.5}).failed
        assert gate_budgets.evaluate(item, None).breaches == ["energy: not measured (raw), cannot check budget 10 J"]

    def test_no_budget_no_verdict(self):
        assert gate_budgets.evaluate(FakeItem(), {"energy_j": 1.0}) is None
        item, figures = item_at(3, 3, [1.0, 1.0], 1.0)
        assert gate_budgets.evaluate(item, figures) is None

    def test_marker_and_campaign_budgets_both_apply(self):
        exp = experiment()
        rules = [rule("*-bs1-*", energy="1 kJ"), rule("*-bs2-*", energy="1 J"), rule({"workload.batch_size": 1}, mean_power="300 W")]
        citem = CampaignItem(exp, 1, 0, 1, 1)
        item = FakeItem({"energy_per_output_token": 0.5}, citem, campaign_run(rules))
        found = gate_budgets.budgets_for(item, citem, get_run(item.config))
        assert [(b.source, b.limits) for b in found] == [("marker", {"energy_per_output_token": 0.5}),
                                                         ("campaign", {"energy": 1000.0}), ("campaign", {"mean_power": 300.0})]
        verdict = gate_budgets.evaluate(item, {"adjusted_energy_per_output_token_j": 0.4, "energy_j": 2.0, "mean_power_w": 301.0})
        assert [c["metric"] for c in verdict.checks] == ["energy_per_output_token", "energy", "mean_power"]
        assert verdict.breaches == ["mean power 301 W > budget 300 W (+0.3 %, raw, n=1)"]
        assert gate_budgets.budgets_for(item, citem, None)[0].source == "marker"


class TestCycleValues:
    def test_only_this_experiments_passed_other_cycles_then_the_current_one(self):
        exp = experiment("a")
        results = [result("a", 1, x=1.0, flag=True, name="n", nan=math.nan), result("a", 2, status="failed", x=2.0),
                   result("b", 1, x=3.0), result("a", 3, x=4.0), result("a", 4, x=5.0)]
        run = campaign_run(results=results)
        values = gate_budgets.cycle_values(run, CampaignItem(exp, 3, 0, 1, 4), {"x": 6, "y": 7.5})
        assert values.pop("cycle") == [1.0, 4.0]  # rows carry their cycle (a number like any other column)
        assert values == {"x": [1.0, 5.0, 6.0], "y": [7.5]}
        assert all(isinstance(v, float) for v in values["x"])


class TestMarker:
    def test_marker_budget(self):
        assert gate_budgets.marker_budget(FakeItem()) is None
        budget = gate_budgets.marker_budget(FakeItem({"energy": "2 Wh", "tolerance": "10%"}))
        assert budget == Budget({"energy": 7200.0}, 0.1, True, "marker")
        with pytest.raises(ValueError, match=r"^energy_budget takes keyword limits only, e.g. "
                                             r"energy_budget\(energy_per_output_token='0.45 J'\)$"):
            gate_budgets.marker_budget(FakeItem({}, args=(1,)))

    def test_a_bad_marker_is_a_usage_error_naming_the_test(self):
        good, bad = FakeItem({"energy": 1}), FakeItem({"joules": 1}, nodeid="t.py::test_bad")
        gate_budgets.pytest_collection_modifyitems(None, [good])
        with pytest.raises(pytest.UsageError, match=r"^t.py::test_bad: @pytest.mark.energy_budget: unknown budget keyword"):
            gate_budgets.pytest_collection_modifyitems(None, [good, bad])

    def test_the_markers_help_line_follows_the_signature(self):
        lines = []
        config = SimpleNamespace(addinivalue_line=lambda key, line: lines.append((key, line)), stash=pytest.Stash())
        gate_budgets.register(session_of(config))  # the configure step
        assert lines == [("markers", "energy_budget(energy_per_output_token=..., energy_per_token=..., energy=..., "
                                     "mean_power=..., tolerance=..., adjusted=...): Fail the test when a measured "
                                     "figure exceeds its limit (J, W or strings such as \"0.45 J\", \"2 Wh\", \"300 W\").")]
        assert gate_markers.energy_budget(energy=1) is None
        defaults = {n: p.default for n, p in __import__("inspect").signature(gate_markers.energy_budget).parameters.items()}
        assert (defaults["tolerance"], defaults["adjusted"]) == (Budget.tolerance, Budget.adjusted) == (0.0, True)


RISE = parse_rules("energy_per_output_token:6%")[0]
SAVED = {"path": "/saved/3.json", "number": 3, "name": "base",
         "experiments": {"gpt2-bs1-abc": {"metrics": {EPT: [1.0, 1.01, 0.99]}},
                         "test_x.py::test_x::gen": {"metrics": {EPT: [1.0]}}}}


def comparing(item: FakeItem, rules=(RISE,), alpha: float | None = None, saved=SAVED) -> FakeItem:
    session = session_of(item.config)
    session.saved, session.compare_rules = saved, list(rules)
    if alpha is not None:
        session.compare_alpha = alpha
    return item


class TestCompareGate:
    def test_the_last_cycle_compares_every_cycle_with_the_saved_run(self):
        item, figures = item_at(3, 3, [1.10, 1.11], 1.12)
        verdict = gate_compare.evaluate(comparing(item), figures)
        assert verdict.failed and verdict.breaches[0].startswith("vs saved run 3 base: energy_per_output_token 1.11 vs 1 ")
        check = verdict.checks[0]
        assert check["compare"] == "energy_per_output_token:+6%" and check["regression"] is True
        assert check["saved"] == "/saved/3.json" and check["alpha"] == 0.01 and check["p_value"] < 0.01
        assert check["ci_low"] < check["ratio"] < check["ci_high"] and check["ratio"] == pytest.approx(1.11)

    def test_alpha_comes_from_the_config(self):
        item, figures = item_at(3, 3, [1.03, 1.02], 1.04)  # +3 %: past the +2 % margin, p about 0.03
        assert not gate_compare.evaluate(comparing(item), figures).failed
        item, figures = item_at(3, 3, [1.03, 1.02], 1.04)
        verdict = gate_compare.evaluate(comparing(item, alpha=0.2), figures)
        assert verdict.failed and verdict.checks[0]["alpha"] == 0.2 and 0.01 < verdict.checks[0]["p_value"] < 0.2

    def test_within_the_margin_passes(self):
        item, figures = item_at(3, 3, [1.0, 1.01], 0.99)
        verdict = gate_compare.evaluate(comparing(item), figures)
        assert not verdict.failed and verdict.checks[0]["regression"] is False

    def test_earlier_cycles_unknown_experiments_and_no_saved_run_give_none(self):
        item, figures = item_at(2, 3, [1.5], 1.5)
        assert gate_compare.evaluate(comparing(item), figures) is None
        item, figures = item_at(3, 3, [1.5, 1.5], 1.5, exp=experiment("new-id"))
        assert gate_compare.evaluate(comparing(item), figures) is None
        item, figures = item_at(3, 3, [1.5, 1.5], 1.5)
        assert gate_compare.evaluate(item, figures) is None  # not comparing
        assert gate_compare.evaluate(comparing(item, rules=()), figures) is None
        item, figures = item_at(3, 3, [1.5, 1.5], 1.5)
        item.config.stash = pytest.Stash()  # a campaign item without a run
        assert gate_compare.evaluate(comparing(item), figures) is None

    def test_a_rule_without_values_does_not_stop_the_next(self):
        item, figures = item_at(3, 3, [1.10, 1.11], 1.12)
        rules = parse_rules("tokens_per_s:-5% energy_per_output_token:6%")
        verdict = gate_compare.evaluate(comparing(item, rules=rules, saved={k: v for k, v in SAVED.items() if k != "number"}),
                                        figures)
        assert [c["compare"] for c in verdict.checks] == ["tokens_per_s:-5%", "energy_per_output_token:+6%"]
        assert verdict.checks[0]["unavailable"] and not verdict.checks[0]["regression"]  # said, not judged
        assert verdict.breaches[0].startswith("vs saved run  base: ")

    def test_a_metric_not_measured_is_not_judged(self):
        item, _ = item_at(3, 3, [1.5, 1.5], 1.5)
        verdict = gate_compare.evaluate(comparing(item, rules=parse_rules("tokens_per_s:-5%")), {})
        assert not verdict.failed and verdict.breaches == []
        assert [(c["compare"], c["unavailable"]) for c in verdict.checks] == [
            ("tokens_per_s:-5%", "no tokens_per_s values in either run")]  # named as not checked, never a pass

    def test_a_plain_tests_windows_compare_by_name(self):
        item = comparing(FakeItem())
        item.stash[WINDOWS] = [{"name": "gen", EPT: 2.0}, {"name": None, EPT: 1.0}]
        verdict = gate_compare.evaluate(item, None)
        assert verdict.failed and len(verdict.checks) == 1 and "n=1/1 < 2 cycles: means compared" in verdict.breaches[0]
        item.stash[WINDOWS] = [{"name": "gen", EPT: 1.0}]
        verdict = gate_compare.evaluate(item, None)
        assert not verdict.failed and verdict.checks[0]["alpha"] == 0.01  # the default alpha
        item.stash[WINDOWS] = [{"name": "other", EPT: 9.0}]
        assert gate_compare.evaluate(item, None) is None
        assert gate_compare.evaluate(comparing(FakeItem()), None) is None  # no windows
        two = comparing(FakeItem(), alpha=0.2, saved=SAVED | {"experiments": {
            "test_x.py::test_x::gen": {"metrics": {EPT: [1.0]}}, "test_x.py::test_x::load": {"metrics": {EPT: [1.0]}}}})
        two.stash[WINDOWS] = [{"name": "gen", EPT: 2.0}, {"name": "load", EPT: 3.0}]
        verdict = gate_compare.evaluate(two, None)
        assert len(verdict.breaches) == 2 and [c["alpha"] for c in verdict.checks] == [0.2, 0.2]
        unnamed = comparing(FakeItem(), saved=SAVED | {"experiments": {"test_x.py::test_x::window": {"metrics": {EPT: [1.0]}}}})
        unnamed.stash[WINDOWS] = [{"name": None, EPT: 1.5}]
        assert gate_compare.evaluate(unnamed, None).failed


class TestVerdicts:
    def test_budget_and_comparison_merge_and_the_kind_says_which_failed(self, monkeypatch):
        over, ok = Verdict(["over"], [{"a": 1}]), Verdict([], [{"b": 2}])
        regressed = Verdict(["slower"], [{"compare": "x"}])
        cases = [(over, None, ["over"], verdicts.OVER_BUDGET), (None, regressed, ["slower"], verdicts.REGRESSION),
                 (over, regressed, ["over", "slower"], verdicts.OVER_BUDGET), (ok, regressed, ["slower"], verdicts.REGRESSION)]
        figures = {"energy_j": 1.0}
        for budget, comparison, breaches, kind in cases:
            def fake(item, given, v):
                assert given is figures
                return v

            monkeypatch.setattr(gate_budgets, "evaluate", lambda item, given, v=budget: fake(item, given, v))
            monkeypatch.setattr(gate_compare, "evaluate", lambda item, given, v=comparison: fake(item, given, v))
            item = FakeItem()
            merged = verdicts.evaluate(item, figures)
            assert merged.breaches == breaches and verdicts.gate_kind(item) == kind
            assert merged.checks == [c for v in (budget, comparison) if v is not None for c in v.checks]
        monkeypatch.setattr(gate_budgets, "evaluate", lambda item, figures: None)
        monkeypatch.setattr(gate_compare, "evaluate", lambda item, figures: None)
        item = FakeItem()
        assert verdicts.evaluate(item, {}) is None and verdicts.gate_kind(item) == verdicts.OVER_BUDGET

    @pytest.mark.parametrize(("kind", "title", "status"), [
        (verdicts.OVER_BUDGET, "Energy gate failed", ("failed", "B", "OVER BUDGET")),
        (verdicts.REGRESSION, "Regression against the saved run", ("failed", "R", "REGRESSION")),
    ])
    def test_a_gate_failure_report(self, kind, title, status):
        report = pytest.TestReport("t.py::t", ("t.py", 0, "t"), {}, "passed", None, "call")
        verdicts.fail_report(report, Verdict(["one", "two"]), kind)
        # the first breach on the title line (pytest's short summary shows it), the rest below
        assert report.outcome == "failed" and report.longrepr == f"{title}: one (+1 more)\n  two"
        assert report.user_properties == [(verdicts.GATE_FAILED, ["one", "two"]), (verdicts.GATE_KIND, kind)]
        assert verdicts.pytest_report_teststatus(report, None) == status

    def test_other_reports_keep_their_status(self):
        plain = pytest.TestReport("t.py::t", ("t.py", 0, "t"), {}, "failed", None, "call", user_properties=[("other", 1)])
        assert verdicts.pytest_report_teststatus(plain, None) is None
        setup = pytest.TestReport("t.py::t", ("t.py", 0, "t"), {}, "failed", None, "setup", user_properties=[(verdicts.GATE_FAILED, [])])
        assert verdicts.pytest_report_teststatus(setup, None) is None
        passed = pytest.TestReport("t.py::t", ("t.py", 0, "t"), {}, "passed", None, "call", user_properties=[(verdicts.GATE_FAILED, [])])
        assert verdicts.pytest_report_teststatus(passed, None) is None
        report = pytest.TestReport("t.py::t", ("t.py", 0, "t"), {}, "passed", None, "call")
        verdicts.fail_report(report, Verdict(["x"]))
        assert verdicts.pytest_report_teststatus(report, None) == ("failed", "B", "OVER BUDGET")


class TestCompareOptions:
    def test_compare_fail_needs_a_saved_run(self, pytester):
        result = pytester.runpytest("--lem-compare-fail", "energy:5%")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["ERROR: llenergy: --lem-compare-fail needs --lem-compare [[]NAME|NUM[]] (which saved run?)"])

    def test_a_missing_saved_run_is_a_usage_error(self, pytester):
        result = pytester.runpytest("--lem-compare", "nosuch", "--lem-storage", "store")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*llenergy: --lem-compare: *"])

    def test_storage_is_under_the_rootdir_unless_absolute(self, pytester, tmp_path):
        seen = {}
        pytester.makeconftest("""
            def pytest_configure(config):
                from pytest_llenergy.plugin.gates.compare import compare_alpha, storage_root
                config._seen = (storage_root(config), compare_alpha(config))
        """)

        class Spy:
            def pytest_unconfigure(self, config):
                seen["values"] = config._seen

        pytester.runpytest_inprocess("--lem-storage", "store", "--lem-compare-alpha", "0.05", plugins=[Spy()])
        assert seen["values"] == (pytester.path / "store", 0.05)
        pytester.runpytest_inprocess("--lem-storage", str(tmp_path / "abs"), plugins=[Spy()])
        assert seen["values"] == (tmp_path / "abs", 0.01)

    @pytest.mark.parametrize(("ref", "expected"), [("", "0002_new.json"), ("latest", "0002_new.json"), ("old", "0001_old.json"),
                                                   ("1", "0001_old.json")])
    def test_the_saved_run_is_found_by_name_number_or_latest(self, pytester, ref, expected):
        from pytest_llenergy.results.saved import save_run

        for name in ("old", "new"):
            save_run(pytester.path / "store", {"machine_id": "m", "name": name, "experiments": {}})
        seen = {}

        class Spy:
            def pytest_unconfigure(self, config):
                session = session_of(config)
                seen.update(saved=session.saved, rules=session.compare_rules, alpha=session.compare_alpha)

        pytester.runpytest_inprocess("--lem-storage", "store", "--lem-compare", ref, "--lem-compare-fail", "energy:5%",
                                     "--lem-compare-alpha", "0.03", plugins=[Spy()])
        path = pytester.path / "store" / "m" / expected
        assert seen["saved"] == {"machine_id": "m", "name": expected[5:-5], "experiments": {},
                                 "number": int(expected[:4]), "path": str(path)}
        assert seen["rules"] == parse_rules("energy:5%") and seen["alpha"] == 0.03
