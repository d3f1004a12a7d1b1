"""Every default that docs/methodology.md, the README and quickstart.yaml state, checked against the code."""

from __future__ import annotations

from pathlib import Path

from pytest_llenergy.config.campaign import MAX_CYCLES, GapsConfig
from pytest_llenergy.config.measurement import (
    BASELINE_CI_TARGET,
    BaselineSettings,
    MeasurementConfig,
    WarmupSettings,
)
from pytest_llenergy.energy.baseline import ADOPT_DRIFT

ROOT = Path(__file__).parents[1]
METHODOLOGY = (ROOT / "docs" / "methodology.md").read_text()
REFERENCE = (ROOT / "docs" / "campaign-reference.md").read_text()


def default(model, name):
    return model.model_fields[name].default


def number(value: float) -> str:
    return f"{value:g}"


def flat(text: str) -> str:
    return " ".join(text.split())


def test_methodology_states_the_codes_defaults():
    gaps = GapsConfig.model_fields
    warm, base = WarmupSettings.model_fields, BaselineSettings.model_fields
    statements = [
        f"`power_tolerance` ({number(gaps['power_tolerance'].default * 100)} %)",
        f"`temp_tolerance_c` ({number(gaps['temp_tolerance_c'].default)} C)",
        f"(defaults {number(warm['cv_threshold'].default * 100)} %, window {warm['window'].default}, "
        f"min {warm['min_iterations'].default}, max {warm['max_iterations'].default})",
        f"(adaptive, below, sampled at {number(base['sample_hz'].default)} Hz",
        f"**Floor** `min_duration_s` ({number(base['min_duration_s'].default)} s;",
        f"**cap** `duration_s` ({number(base['duration_s'].default)} s)",
        f"else {number(BASELINE_CI_TARGET * 100)} %); `ci_share` ({number(base['ci_share'].default)})",
        f"`adjusted_fraction` ({number(base['adjusted_fraction'].default)})",
        f"a `revalidate_duration_s` ({number(base['revalidate_duration_s'].default)} s) reading",
        f"TTL (default {number(base['ttl_s'].default / 3600)} h)",
        f"every N experiments (default {base['revalidate_every'].default})",
        f"a drift above {number(ADOPT_DRIFT * 100)} %",
        f"drifted past {number(base['drift_threshold'].default * 100)} %",
        f"(1-100 Hz, default {number(MeasurementConfig.model_fields['sample_hz'].default)})",
    ]
    text = flat(METHODOLOGY)
    assert [s for s in statements if s not in text] == []


def test_campaign_reference_renders_cycles_with_its_bounds():
    line = next(line for line in REFERENCE.splitlines() if line.startswith("| `cycles` |"))
    assert "Annotated" not in line and f"<= {MAX_CYCLES}" in line and "int \\| AdaptiveCycles" in line


def test_shipped_time_claims_agree():
    claim = "under 2 minutes on an idle 2-core machine"
    assert claim in flat((ROOT / "README.md").read_text())
    assert claim in flat((ROOT / "energy_suites" / "campaigns" / "quickstart.yaml").read_text().replace("#", ""))
