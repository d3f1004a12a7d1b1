"""A search's inputs from a run directory: the spec written at the start, and one observation per result.

``search/spec.json`` (written by the controller when a search starts) holds the campaign's ``search``
section, the configurations racing, the reference and the most rounds; it lets ``lem report`` rebuild
the answer from the files alone. Observations read each result's objective, constrained figures and
GPU-seconds (item wall time x GPUs measured).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llenergy.config.search import SearchConfig
from pytest_llenergy.results.frame import result_row
from pytest_llenergy.results.schema import ExperimentResult
from pytest_llenergy.results.search import Observation, RaceRules
from pytest_llenergy.results.store import SEARCH_SPEC_FILE, RunDirectory, load_result_file

_OBJECTIVE_COLUMNS = {
    "adjusted_energy_per_output_token": "adjusted_energy_per_output_token_j",
    "energy_per_output_token": "energy_per_output_token_j",
    "adjusted_energy_per_token": "adjusted_energy_per_token_j",
    "energy_per_token": "energy_per_token_j",
    "adjusted_energy_per_request": "energy_adjusted_j",
    "energy_per_request": "energy_j",
}


@dataclass(frozen=True)
class SearchSpec:
    """What a run races: the search section, its configurations (ids), the reference and the most rounds."""

    search: SearchConfig
    configs: list[str]
    reference: str
    max_rounds: int

    @property
    def rules(self) -> RaceRules:
        return RaceRules.from_search(self.search, self.max_rounds, self.reference)

    def to_json(self) -> dict[str, Any]:
        return {"search": self.search.model_dump(mode="json"), "configs": self.configs, "reference": self.reference,
                "max_rounds": self.max_rounds}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchSpec:
        return cls(SearchConfig.model_validate(data["search"]), [str(c) for c in data["configs"]],
                   str(data["reference"]), int(data["max_rounds"]))


def write_spec(run_dir: Path, spec: SearchSpec) -> Path:
    return RunDirectory(run_dir).write_json(SEARCH_SPEC_FILE, spec.to_json())


def read_spec(run_dir: Path) -> SearchSpec | None:
    """The run's search spec, or None when the run was no search (or the file is unreadable)."""
    try:
        return SearchSpec.from_json(json.loads(RunDirectory(run_dir).search_spec_path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _requests(result: ExperimentResult) -> int | None:
    if result.serving is not None:
        return result.serving.requests
    workload = result.config.get("workload")
    value = workload.get("num_prompts") if isinstance(workload, dict) else None
    return int(value) if isinstance(value, int) and value > 0 else None


def objective_value(result: ExperimentResult, objective: str, row: dict[str, Any] | None = None) -> float | None:
    row = row if row is not None else result_row(result)
    value = row.get(_OBJECTIVE_COLUMNS[objective])
    if value is None:
        return None
    if objective.endswith("_per_request"):
        requests = _requests(result)
        return float(value) / requests if requests else None
    return float(value)


def constraint_value(result: ExperimentResult, metric: str, row: dict[str, Any]) -> float | None:
    """A constrained figure of one result (None: not measured by this configuration)."""
    latency = result.latency
    if metric == "batch_latency_p95_s":
        return latency.batch_latency_s_p95 if latency is not None else None
    if metric == "batch_latency_mean_s":
        return latency.batch_latency_s_mean if latency is not None else None
    if metric in ("tokens_per_s", "output_tokens_per_s", "peak_memory_mb", "mean_power_w"):
        value = row.get(metric)
        return float(value) if value is not None else None
    name, quantile, _ = metric.split("_")  # ttft_p95_ms
    if result.serving is not None:
        value = getattr(result.serving, f"{name}_ms").get(quantile)
        if value is not None:
            return float(value)
    if latency is not None and name in ("ttft", "itl"):
        value = getattr(latency, f"{name}_ms_{quantile}", None)
        return float(value) if value is not None else None
    return None


def gpu_seconds(result: ExperimentResult) -> float:
    """The item's wall time (gap, load, baseline, warmup and window) times the GPUs it measured."""
    timing = result.timing
    wall = timing.wall_s if timing is not None and timing.wall_s is not None else None
    if wall is None:
        wall = sum(w.duration_s for w in result.windows) or (result.duration_s or 0.0)
    window = result.energy
    gpus = len([d for d in window.devices if d.device.startswith("gpu")]) if window is not None else 0
    return float(wall) * max(1, gpus)


def steady_gpu_seconds(result: ExperimentResult) -> float:
    """gpu_seconds without the item's model load and warmup (paid once per model and shape)."""
    timing, total = result.timing, gpu_seconds(result)
    if timing is None or timing.wall_s is None or not timing.wall_s:
        return total
    return total * max(0.0, timing.wall_s - timing.load_s - timing.warmup_s) / timing.wall_s


def observation(result: ExperimentResult, search: SearchConfig) -> Observation:
    row = result_row(result)
    passed = result.status == "passed"
    return Observation(
        result.experiment_id, result.cycle, passed,
        objective_value(result, search.objective, row) if passed else None,
        {k.metric: constraint_value(result, k.metric, row) for k in search.constraints} if passed else {},
        gpu_seconds(result), result.error, steady_gpu_seconds(result))


class ObservationCache:
    """Observations of a run directory's results, re-read only when a file changes (rounds re-read often)."""

    def __init__(self, search: SearchConfig) -> None:
        self.search = search
        self._seen: dict[Path, tuple[int, Observation | None]] = {}

    def read(self, run_dirs: list[Path], configs: set[str]) -> list[Observation]:
        out: dict[tuple[str, int], Observation] = {}
        for run_dir in run_dirs:
            for path in RunDirectory(run_dir).result_files():
                try:
                    stamp = path.stat().st_mtime_ns
                except OSError:
                    continue
                cached = self._seen.get(path)
                if cached is None or cached[0] != stamp:
                    result = load_result_file(path)
                    cached = (stamp, observation(result, self.search) if result is not None else None)
                    self._seen[path] = cached
                obs = cached[1]
                if obs is not None and obs.config in configs:
                    out[(obs.config, obs.round)] = obs
        return list(out.values())
