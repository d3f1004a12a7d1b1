"""Phase, per-request and serving settings: ``measurement.phases`` and ``workload.arrivals``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pytest_llenergy.config.base import StrictModel


class PhaseSettings(StrictModel):
    """Prefill/decode split of each window and per-request energy attribution."""

    enabled: bool = Field(True, description="Split each window into prefill and decode where the backend reports phase boundaries.")
    min_samples: int = Field(
        2, ge=1, le=1000,
        description="A phase interval expected to hold fewer power samples than this is flagged `below_resolution`.")
    repeats: int = Field(
        0, ge=0, le=1000,
        description="Phase-resolved averaging: extra runs of the measured workload at random phase offsets, "
                    "aligned on the boundaries and averaged (0: off).")
    sample_lag_s: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Seconds each power sample lags the power it reports (half the driver's averaging window); "
                    "samples are moved back by this before phases are integrated.")
    sample_window_s: float | None = Field(
        0.04, ge=0.0, le=1.0,
        description="Phase-resolved averaging: seconds of power each sample averages, ending at its stamp "
                    "(0: point samples). 0.04 reproduced a counter-measured prefill within 2.2 % at batch 1, 8 "
                    "and 32 on an H200 (docs/validation/h200-phases.md); re-calibrate on other GPUs with "
                    "scripts/validate_h200_phases.py. Null: chosen per item by the smallest fit residual over "
                    "0-2 sample periods (and a lag of 0-1 period beyond `sample_lag_s`).")
    requests: bool = Field(True, description="Attribute each window's energy to requests and write `requests/<item>.parquet`.")


class ArrivalSettings(StrictModel):
    """Serving workload: requests arrive over time instead of all at once (vLLM)."""

    process: Literal["poisson", "trace"] = Field(description="poisson: exponential gaps at `rate_rps`; trace: offsets read from `trace`.")
    rate_rps: float | None = Field(None, gt=0, le=1e6, description="Mean requests per second (poisson).")
    trace: str | None = Field(None, description="File of arrival offsets in seconds, one per line (relative to the campaign file).")
    seed: int | None = Field(None, ge=0, description="Seed of the arrival process (default: the workload seed).")

    @model_validator(mode="after")
    def _complete(self) -> ArrivalSettings:
        if self.process == "poisson" and self.rate_rps is None:
            raise ValueError("process poisson needs rate_rps")
        if self.process == "trace" and not self.trace:
            raise ValueError("process trace needs trace: a file of arrival offsets")
        if self.process == "poisson" and self.trace:
            raise ValueError("trace applies to process trace only")
        return self
