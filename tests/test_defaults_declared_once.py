"""Each default is declared once, in the config model; the lower layers' keyword defaults are that
declaration (issue 30): changing a config default changes theirs."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from pytest_llenergy.config.base import default_of
from pytest_llenergy.config.campaign import NotificationsConfig
from pytest_llenergy.config.carbon import CarbonConfig
from pytest_llenergy.config.dispatch import DispatchConfig
from pytest_llenergy.config.measurement import BaselineSettings, MeasurementConfig, WarmupSettings
from pytest_llenergy.dispatch.dispatcher import DispatchSettings
from pytest_llenergy.energy.baseline import measure_baseline
from pytest_llenergy.energy.meter import EnergyMeter
from pytest_llenergy.energy.sampler import Sampler
from pytest_llenergy.energy.thermal import wait_until_settled
from pytest_llenergy.energy.warmup import run_warmup
from pytest_llenergy.results.carbon import footprint
from pytest_llenergy.results.notify import WebhookSender


def _keyword_default(fn: Any, name: str) -> Any:
    return inspect.signature(fn).parameters[name].default


@pytest.mark.parametrize(("fn", "param", "model", "field"), [
    *[(run_warmup, f, WarmupSettings, f) for f in ("mode", "cv_threshold", "window", "min_iterations", "max_iterations",
                                                   "iterations")],
    (Sampler, "hz", MeasurementConfig, "sample_hz"),
    (EnergyMeter, "sample_hz", MeasurementConfig, "sample_hz"),
    (wait_until_settled, "hz", MeasurementConfig, "sample_hz"),
    (measure_baseline, "hz", BaselineSettings, "sample_hz"),
    (footprint, "pue", CarbonConfig, "pue"),
    (footprint, "currency", CarbonConfig, "currency"),
])
def test_keyword_defaults_are_the_config_defaults(fn: Any, param: str, model: Any, field: str) -> None:
    assert _keyword_default(fn, param) == default_of(model, field)


@pytest.mark.parametrize(("record", "name", "model"), [
    (WebhookSender, "timeout_s", NotificationsConfig),
    (WebhookSender, "retries", NotificationsConfig),
    (DispatchSettings, "output_tail_lines", DispatchConfig),
])
def test_record_defaults_are_the_config_defaults(record: Any, name: str, model: Any) -> None:
    assert {f.name: f.default for f in dataclasses.fields(record)}[name] == default_of(model, name)


def test_default_of_calls_a_default_factory() -> None:
    assert default_of(MeasurementConfig, "baseline") == BaselineSettings()
