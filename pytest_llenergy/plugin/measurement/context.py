"""Per-process measurement context: energy source, settings and baseline, created on first use.

Nothing touches NVML until a test asks for energy (``pytest --help`` and plain test runs stay
fast). Baselines persist in the pytest cache; xdist workers hand theirs to the controller, which
alone writes the cache.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any, cast

import pytest
from pydantic import ValidationError

from pytest_llenergy.config.errors import problems_from_validation
from pytest_llenergy.config.measurement import MeasurementConfig
from pytest_llenergy.plugin.base import GPU_KINDS, get_run, session_of, status_line
from pytest_llenergy.plugin.options import resolve
from pytest_llenergy.plugin.session import LemSession
from pytest_llenergy.plugin.xdist import is_worker

if TYPE_CHECKING:
    from pytest_llenergy.energy.priming import GpuPrimer

__all__ = ["GPU_KINDS", "MeasurementContext", "get_context", "install", "measurement_settings"]
#: A replayed trace needs no 30 s idle baseline: its first two seconds (the shipped H200 trace starts
#: with 6 s of idle) is as good, and the trace's later phases must not be averaged into it.
REPLAY_BASELINE_S = 2.0


def measurement_settings(config: pytest.Config) -> MeasurementConfig:
    """The campaign's ``measurement:`` (or defaults), with ``--lem-*`` / ini values resolved over it."""
    run = get_run(config)
    campaign = run.plan.campaign if run is not None else None
    data = (campaign.measurement if campaign is not None else MeasurementConfig()).model_dump()
    data["energy_source"] = resolve(config, "lem_energy_source", campaign)
    data["sample_hz"] = resolve(config, "lem_sample_hz", campaign)
    data["baseline"]["enabled"] = not resolve(config, "lem_no_baseline", campaign)
    try:
        return MeasurementConfig.model_validate(data)
    except ValidationError as exc:
        raise pytest.UsageError("llenergy: " + "; ".join(problems_from_validation(exc, ("measurement",)))) from None


def cuda_sync_function() -> Callable[[], None] | None:
    """``torch.cuda.synchronize`` when CUDA is initialised in this process, else None."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            return torch.cuda.synchronize
    except RuntimeError:  # a broken CUDA runtime: windows are then timed without a device sync
        return None
    return None


class PytestBaselineStore:
    """The energy layer's :class:`~pytest_llenergy.energy.baseline.BaselineStore` over pytest's cache:
    entries set in this process are read back from memory; an xdist worker hands them to the
    controller (``workeroutput``), which alone writes the cache."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.pending: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        cache = getattr(self.config, "cache", None)
        return self.pending.get(key) or (cache.get(key, None) if cache is not None else None)

    def set(self, key: str, value: Any) -> None:  # noqa: A003 - pytest's cache's own name
        self.pending[key] = value
        if is_worker(self.config):
            output = getattr(self.config, "workeroutput", None)
            if output is not None:
                output.setdefault("lem_baseline", {})[key] = value
        elif getattr(self.config, "cache", None) is not None:
            self.config.cache.set(key, value)


@dataclass
class MeasurementContext:
    """The source, its description, and the baseline this process subtracts."""

    config: pytest.Config
    settings: MeasurementConfig
    source: Any = None
    reason: str = ""
    baseline: Any = None
    baseline_method: str = "none"
    baseline_cache: Any = None
    experiments_done: int = 0
    _primer: GpuPrimer | None = None
    #: Idle-power drift (W per device) the next item's windows carry (baseline re-checks).
    drift_w: dict[str, float] | None = None
    #: the idle re-check before the current item (recorded in its baseline info)
    recheck_before_w: dict[str, float] | None = None
    #: The item after the latest re-check, whose drift the next re-check settles.
    recheck_pending: Any = None
    #: wall seconds spent measuring or re-checking the baseline in this process
    baseline_s: float = 0.0
    _warmed: Any = field(default_factory=weakref.WeakKeyDictionary)
    _warmed_plain: set[Hashable] = field(default_factory=set)
    _warmed_ids: dict[int, set[Hashable]] = field(default_factory=dict)

    def warmed(self, owner: Any = None) -> set[Hashable]:
        """Warmup keys already paid for: per loaded session (forgotten when it is freed), or process-wide."""
        if owner is None:
            return self._warmed_plain
        try:
            return self._warmed.setdefault(owner, set())
        except TypeError:  # not weak-referenceable: key by identity
            return self._warmed_ids.setdefault(id(owner), set())

    def ensure_source(self) -> Any:
        if self.source is None:
            from pytest_llenergy.energy import resolve_source
            from pytest_llenergy.energy.sources import SourceError

            try:
                self.source, self.reason = resolve_source(
                    self.settings.energy_source, cpu_core_power_w=self.settings.cpu_core_power_w)
            except (ValueError, SourceError) as exc:
                raise pytest.UsageError(f"llenergy: energy source {self.settings.energy_source!r}: {exc}") from None
        return self.source

    def ensure_baseline(self) -> tuple[Any, str]:
        """The baseline reading and how it was obtained; (None, "none") for CPU sources or when off."""
        source = self.ensure_source()
        settings = self.settings.baseline
        if not settings.enabled or source.kind not in GPU_KINDS:
            return None, "none"
        if self.baseline_cache is None:
            from pytest_llenergy.energy import BaselineCache

            if source.kind != "nvml":  # a replayed trace: a short fixed baseline
                short = min(settings.duration_s, REPLAY_BASELINE_S)
                settings = settings.model_copy(update={"duration_s": short, "min_duration_s": min(settings.min_duration_s, short)})
            duration = (f"{settings.duration_s:g} s" if settings.duration_s <= settings.min_duration_s
                        else f"{settings.min_duration_s:g}-{settings.duration_s:g} s")
            self.baseline_cache = BaselineCache(
                PytestBaselineStore(self.config), settings, campaign_ci_target=self._campaign_ci_target(),
                primer=self.primer if source.kind == "nvml" else None)
            refresh = bool(resolve(self.config, "lem_baseline_refresh"))
            if refresh or self.baseline_cache.cached(source) is None:
                status_line(self.config, f"measuring the idle baseline ({source.kind}, {duration}) before the first "
                            f"energy window; kept {settings.ttl_s:g} s in the pytest cache "
                            "(--lem-no-baseline: raw energy only)", min_verbosity=-1)
            if source.kind == "nvml":
                # The H200 reports P0 even in deep idle (79 W vs 122 W after any work), so the
                # P-state cannot tell them apart: always bring the GPU to the state workloads run in.
                self.primer.prime()
            started = perf_counter()
            self.baseline, self.baseline_method = self.baseline_cache.obtain(source, refresh=refresh)
            self.baseline_s += perf_counter() - started
        return self.baseline, self.baseline_method

    def no_baseline_reason(self) -> str | None:
        """Why windows here have no baseline-adjusted figure (None when they have one)."""
        source = self.ensure_source()
        if source.kind not in GPU_KINDS:
            return f"the {source.kind} source has no idle baseline"
        if not self.settings.baseline.enabled:
            return "baseline off (--lem-no-baseline)"
        return None

    def _campaign_ci_target(self) -> float | None:
        """The campaign's adaptive-cycles CI target (what an adaptive baseline is sized for), if any."""
        run = get_run(self.config)
        cycles = run.plan.campaign.cycles if run is not None else None
        return getattr(cycles, "target_ci_halfwidth", None)

    @property
    def primer(self) -> GpuPrimer:
        """The GPU priming burst handed to the baseline cache (energy/ loads only when a test measures)."""
        if self._primer is None:
            from pytest_llenergy.energy.priming import GpuPrimer

            self._primer = GpuPrimer()
        return self._primer

    @property
    def primed(self) -> bool | None:
        """None: no priming attempted (not NVML); False: see ``prime_problem``."""
        return self._primer.primed if self._primer is not None else None

    @property
    def prime_problem(self) -> str:
        return self._primer.problem if self._primer is not None else ""

    def next_experiment(self) -> None:
        """Count an experiment and re-validate the baseline when due."""
        self.experiments_done += 1
        if self.baseline_cache is not None:
            started = perf_counter()
            checked = self.baseline_cache.maybe_revalidate(self.source, self.experiments_done)
            self.baseline_s += perf_counter() - started
            if checked is not None:
                self.baseline, self.baseline_method = checked

    def baseline_info(self) -> dict[str, Any] | None:
        if self.baseline is None:
            return None
        age = self.baseline_cache.age(self.baseline) if self.baseline_cache is not None else None
        return self.baseline.to_info(self.baseline_method, age, primed=self.primed,
                                     recheck_before_w=self.recheck_before_w)


def get_context(config: pytest.Config) -> MeasurementContext:
    """The process's measurement context (``LemSession.context``), made on first use."""
    session = session_of(config)
    if session.new_context is None:  # a unit test's bare config: no configure steps ran
        _set_factory(session)
    return cast(MeasurementContext, session.measurement())


def _set_factory(session: LemSession) -> None:
    config = session.config
    session.new_context = lambda: MeasurementContext(config, measurement_settings(config))


def install(session: LemSession) -> None:
    """Configure step: how the context is made (on first use); with a campaign, made now so a bad
    setting is a usage error before any test; under xdist the controller collects workers' baselines."""
    config = session.config
    _set_factory(session)
    if session.run is not None:
        session.measurement()
    if config.pluginmanager.hasplugin("xdist") and not is_worker(config):
        config.pluginmanager.register(BaselineCollector(config), "llenergy-baseline-collector")


class BaselineCollector:
    """Controller side of xdist: writes the baselines workers measured into the pytest cache."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        cache = getattr(self.config, "cache", None)
        for key, value in (output.get("lem_baseline") or {}).items():
            if cache is not None:
                cache.set(key, value)
