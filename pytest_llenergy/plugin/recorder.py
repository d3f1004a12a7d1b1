"""Collects what one campaign item produced and turns it into an ExperimentResult.

Shared by the parts that fill it (``measurement/``) and the one that rebuilds it from a container's
report (``dispatch/``); kept in ``item.stash[base.RECORDER]``.
"""

from __future__ import annotations

import datetime as dt
import socket
import statistics
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from pytest_llenergy.backends.base import GenerationStats
from pytest_llenergy.dispatch.provenance import container_provenance
from pytest_llenergy.plugin.state import CampaignItem, LemRun
from pytest_llenergy.results.schema import ExperimentResult, ItemTiming, LatencyStats, LoadInfo
from pytest_llenergy.results.store import ENVIRONMENT_FILE


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def latency_stats(stats: GenerationStats) -> LatencyStats | None:
    """Latency figures named by how they were measured; TTFT/ITL only when streamed."""
    if not stats.batch_latencies_s and not stats.ttft_s:
        return None
    out: dict[str, Any] = {"mode": stats.latency_mode}
    if stats.batch_latencies_s:
        out["batch_latency_s_mean"] = statistics.fmean(stats.batch_latencies_s)
        out["batch_latency_s_p95"] = _percentile(stats.batch_latencies_s, 0.95)
    for name, values in (("ttft", stats.ttft_s), ("itl", stats.itl_s)):
        if values:
            ms = [v * 1000 for v in values]
            out[f"{name}_ms_mean"] = statistics.fmean(ms)
            for q in (50, 95, 99):
                out[f"{name}_ms_p{q}"] = _percentile(ms, q / 100)
    return LatencyStats(**out)


@dataclass
class ItemRecorder:
    """The mutable record of one running campaign item (kept in ``item.stash``)."""

    run: LemRun
    item: CampaignItem
    nodeid: str
    started_at: str = field(default_factory=_now)
    stats: GenerationStats | None = None
    windows: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    warmup: dict[str, Any] | None = None
    load: LoadInfo | None = None
    gap: dict[str, Any] | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timeseries_path: str | None = None
    environment_file: str | None = ENVIRONMENT_FILE
    extra: dict[str, Any] = field(default_factory=dict)
    #: phases, phase_info, serving, requests_path (plugin/measurement/phases.py)
    phase_fields: dict[str, Any] = field(default_factory=dict)
    #: seconds per piece of the item's wall time (warmup_s, baseline_s, measured_s, load_s)
    timing: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("warmup_s", "baseline_s", "measured_s", "load_s"), 0.0))
    clock_started: float = field(default_factory=perf_counter)

    def item_timing(self) -> ItemTiming:
        """The item's wall time so far and its pieces (gap from the gap record)."""
        gap = float((self.gap or {}).get("waited_s") or 0.0)
        return ItemTiming(wall_s=perf_counter() - self.clock_started, gap_s=gap, **self.timing)

    def record_generation(self, stats: GenerationStats) -> None:
        """Record the measured generation (tokens, duration, latencies, warnings)."""
        self.stats = stats
        self.warnings.extend(w for w in stats.warnings if w not in self.warnings)

    def build(self, status: str, error: str | None) -> ExperimentResult:
        """The result as it stands now; unmeasured figures stay None."""
        exp, stats = self.item.experiment, self.stats
        config = exp.config
        fields: dict[str, Any] = {}
        if stats is not None:
            duration = stats.duration_s if stats.duration_s > 0 else None
            fields.update(
                duration_s=duration,
                input_tokens=stats.input_tokens,
                output_tokens=stats.output_tokens,
                total_tokens=stats.total_tokens,
                tokens_per_s=stats.total_tokens / duration if duration else None,
                output_tokens_per_s=stats.output_tokens / duration if duration else None,
                latency=latency_stats(stats),
                peak_memory_mb=stats.peak_memory_bytes / 2**20 if stats.peak_memory_bytes else None,
            )
        return ExperimentResult(
            campaign=self.run.name,
            campaign_hash=self.run.plan.file_hash,
            run_id=self.run.run_id,
            experiment_id=exp.id,
            experiment_index=self.item.index,
            experiments_total=self.item.experiments_total,
            cycle=self.item.cycle,
            cycles_total=self.item.cycles_total,
            item_id=self.item.id,
            status=status,
            error=error,
            config=config.model_dump(mode="json"),
            backend=config.backend,
            model=config.model.name if config.model else "",
            started_at=self.started_at,
            ended_at=_now(),
            energy=self.windows[0] if self.windows else None,
            windows=self.windows,
            baseline=self.baseline,
            warmup=self.warmup,
            load=self.load,
            gap=self.gap,
            timing=self.item_timing(),
            engine=self.engine,
            environment_file=self.environment_file,
            host=socket.gethostname(),
            warnings=self.warnings,
            timeseries_path=self.timeseries_path,
            container=container_provenance(),
            **self.phase_fields,
            **fields,
        )
