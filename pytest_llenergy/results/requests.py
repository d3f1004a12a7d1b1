"""Per-request energy tables (``requests/<item-id>.parquet``) and the phase columns of result rows.

Per-request energy is an *attribution*, not a measurement: the window's measured joules shared out
by token work (see docs/methodology.md, "Per-request energy"). Every row says so in ``method``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llenergy.config.files import write_atomically
from pytest_llenergy.results.schema import ExperimentResult

if TYPE_CHECKING:
    import pandas as pd

#: columns of a request table, in order (ids are added by ``load(..., level="request")``)
REQUEST_COLUMNS = (
    "request_id", "method", "arrival_s", "start_s", "first_token_s", "end_s", "input_tokens", "output_tokens",
    "prefill_energy_j", "decode_energy_j", "other_energy_j", "energy_j", "adjusted_energy_j",
    "energy_per_output_token_j", "ttft_s", "e2e_s",
)
ID_COLUMNS = ("campaign", "run_id", "experiment_id", "cycle", "item_id", "backend", "model", "batch_size")
PHASE_FIGURES = ("energy_j", "adjusted_energy_j", "uncertainty_j", "duration_s", "tokens", "energy_per_token_j",
                 "adjusted_energy_per_token_j")


def write_requests(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write the rows atomically (temp file, rename): never a partial table."""
    import pandas as pd

    df = pd.DataFrame.from_records(rows, columns=list(REQUEST_COLUMNS))
    return write_atomically(path, lambda partial: df.to_parquet(partial, index=False))


def phase_columns(result: ExperimentResult) -> dict[str, Any]:
    """``prefill_energy_j``, ``decode_uncertainty_j``, ``steady_energy_per_output_token_j`` ... for one row."""
    row: dict[str, Any] = {"requests_path": result.requests_path}
    if result.phase_info is not None:  # e.g. split_unverified: beside the phase figures it qualifies
        row["phase_flags"] = ",".join(result.phase_info.flags)
    for name, phase in (result.phases or {}).items():
        for key in PHASE_FIGURES:
            row[f"{name}_{key}"] = getattr(phase, key)
        row[f"{name}_below_resolution"] = "below_resolution" in phase.flags
    serving = result.serving
    if serving is not None:
        for metric in ("ttft_ms", "itl_ms", "e2e_ms"):
            for q, value in getattr(serving, metric).items():
                row[f"serving_{metric.replace('_ms', '')}_ms_{q}"] = value
        row["serving_achieved_rate_rps"] = serving.achieved_rate_rps
        if serving.steady_state is not None:
            ss = serving.steady_state
            row.update(steady_duration_s=ss.duration_s, steady_energy_j=ss.energy_j,
                       steady_energy_per_output_token_j=ss.energy_per_output_token_j,
                       steady_adjusted_energy_per_output_token_j=ss.adjusted_energy_per_output_token_j)
    return row


def request_frame(items: Iterable[tuple[ExperimentResult, Path | None]]) -> pd.DataFrame:
    """One row per request of every result that has a request table, with the result's ids."""
    import pandas as pd

    frames = []
    for result, run_dir in items:
        if not result.requests_path or run_dir is None:
            continue
        path = run_dir / result.requests_path
        if not path.is_file():
            continue
        df = pd.read_parquet(path)
        workload: dict[str, Any] = result.config["workload"] if isinstance(result.config.get("workload"), dict) else {}
        ids = {"campaign": result.campaign, "run_id": result.run_id, "experiment_id": result.experiment_id,
               "cycle": result.cycle, "item_id": result.item_id, "backend": result.backend, "model": result.model,
               "batch_size": workload.get("batch_size")}
        for i, (key, value) in enumerate(ids.items()):
            df.insert(i, key, value)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[*ID_COLUMNS, *REQUEST_COLUMNS])
    return pd.concat(frames, ignore_index=True)
