"""Phases, per-request tables and phase-resolved averaging through the plugin (fake engine, replay source)."""

from __future__ import annotations

import textwrap

import pytest

from .engines import CAMPAIGN, FAKE_PHASE_CONFTEST, PHASE_TEST


def run_campaign(pytester, campaign: str):
    pytester.makeconftest(FAKE_PHASE_CONFTEST)
    pytester.makepyfile(test_suite=PHASE_TEST)
    (pytester.path / "campaign.yaml").write_text(textwrap.dedent(campaign))
    out = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    out.assert_outcomes(passed=1)
    run_dir = next((pytester.path / "lem-results" / "phases").iterdir())
    from pytest_llenergy.results.store import load_result_file

    result = load_result_file(next((run_dir / "experiments").glob("*.json")))
    return run_dir, result


def with_phases(text: str) -> str:
    return CAMPAIGN.replace("  warmup: {mode: off}\n", f"  warmup: {{mode: off}}\n  phases: {text}\n")


@pytest.mark.slow
def test_phases_requests_and_closure(pytester):
    from pytest_llenergy.results import load

    run_dir, result = run_campaign(pytester, CAMPAIGN)
    phases = result.phases
    assert set(phases) == {"prefill", "decode", "other"}
    pre, dec = phases["prefill"], phases["decode"]
    # two batches of (0.06 s prefill, 0.12 s decode), stamped by the engine
    assert pre.intervals == 2 and dec.intervals == 2
    assert pre.duration_s >= 0.12 - 1e-3 and dec.duration_s >= 0.24 - 1e-3  # a sleep never ends early
    assert pre.tokens == 4 * 8 and dec.tokens == 4 * 4
    total = sum(p.energy_j for p in phases.values())
    assert total == pytest.approx(result.energy.energy_j, rel=1e-6)
    assert all(p.uncertainty_j > 0 and p.method == "direct" for p in phases.values())
    assert result.phase_info.source == "fake engine" and result.phase_info.requests == 4
    assert result.phase_info.flags == ["stamps_late"]  # the engine's caveats on its stamps, kept
    df = load(run_dir, level="request")
    assert len(df) == 4 and set(df["method"]) == {"attribution:token_work"}
    assert df["energy_j"].sum() == pytest.approx(result.energy.energy_j, rel=0.005)
    assert (df["experiment_id"] == result.experiment_id).all()
    per_batch = df.drop_duplicates(["start_s", "first_token_s", "end_s"])  # the engine's own stamps
    assert pre.duration_s == pytest.approx((per_batch["first_token_s"] - per_batch["start_s"]).sum(), abs=1e-9)
    assert dec.duration_s == pytest.approx((per_batch["end_s"] - per_batch["first_token_s"]).sum(), abs=1e-9)
    assert (df["arrival_s"] <= df["start_s"] + 1e-9).all()
    row = load(run_dir).iloc[0]
    assert row["prefill_energy_j"] == pytest.approx(pre.energy_j) and row["decode_uncertainty_j"] > 0
    assert row["phase_flags"] == "stamps_late"  # the caveat sits beside the figures it qualifies


def test_requests_off_and_phases_off(pytester):
    run_dir, result = run_campaign(pytester, with_phases("{requests: false}"))
    assert result.phases is not None and result.requests_path is None
    assert not (run_dir / "requests").exists()


def test_phases_disabled(pytester):
    _, result = run_campaign(pytester, with_phases("{enabled: false}"))
    assert result.phases is None


@pytest.mark.slow
def test_repeats_give_phase_resolved_figures(pytester):
    _, result = run_campaign(pytester, with_phases("{repeats: 2}"))
    pre = result.phases["prefill"]
    assert pre.method.startswith("phase_fit:3runs") and pre.direct_energy_j is not None
    assert result.phase_info.repeats == 2


@pytest.mark.slow
def test_sample_window_fixes_the_sensor_model_of_the_fit(pytester):
    import shutil

    def fitted_method(phases: str) -> str:
        shutil.rmtree(pytester.path / "lem-results", ignore_errors=True)  # one run dir per campaign run
        return run_campaign(pytester, with_phases(phases))[1].phases["prefill"].method

    assert "window40ms:lag0ms" in fitted_method("{repeats: 2}")
    assert "window50ms:lag0ms" in fitted_method("{repeats: 2, sample_window_s: 0.05}")
    # null: chosen by residual within 2 sample periods (40 ms), never the 50 ms given above
    assert "window50ms" not in fitted_method("{repeats: 2, sample_window_s: null}")


def test_report_shows_phase_timeline_and_request_histogram(pytester):
    from pytest_llenergy.results import build_outputs

    run_dir, result = run_campaign(pytester, CAMPAIGN)
    summary = build_outputs(run_dir)
    html = (run_dir / "report.html").read_text()
    assert "per-request energy" in html
    hist = [p for n, p in summary.outputs.items() if "per-request energy" in n]
    assert hist and all(__import__("pathlib").Path(p).is_file() for p in hist)
    from pytest_llenergy.results import load
    from pytest_llenergy.results.phase_plots import phase_spans, request_table

    spans = phase_spans(request_table(load(run_dir).iloc[0]))
    assert len(spans["prefill"]) == 2 and len(spans["decode"]) == 2


@pytest.mark.slow
def test_min_samples_and_sample_lag_reach_the_split(pytester):
    _, result = run_campaign(pytester, with_phases("{min_samples: 1000, sample_lag_s: 0.05}"))
    assert "below_resolution" in result.phases["prefill"].flags  # 0.06 s holds far fewer than 1000 samples
    assert result.phase_info.lag_s == 0.05


def test_bad_phase_settings_are_a_one_line_error(pytester):
    pytester.makeconftest(FAKE_PHASE_CONFTEST)
    pytester.makepyfile(test_suite=PHASE_TEST)
    (pytester.path / "campaign.yaml").write_text(textwrap.dedent(with_phases("{repeats: -1, lag: 2}")))
    out = pytester.runpytest("--lem-campaign", "campaign.yaml", "-p", "no:cacheprovider")
    text = out.stdout.str() + out.stderr.str()
    assert "measurement.phases.repeats" in text and "Traceback" not in text
