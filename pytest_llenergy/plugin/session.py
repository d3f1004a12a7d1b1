"""The run's state in one object: :class:`LemSession`, one per pytest process.

Every part of the plugin (collection, measurement, gates, reporting, dispatch) keeps what outlives one
test item here, in a named attribute, instead of in a ``config.stash`` key of its own; and one part
reaches another's objects only through this object (or ``plugin/base.py``), never by importing the
other part's modules (``tests/test_architecture.py`` enforces it). What one part offers the others
is declared below as a small ``Protocol`` (``MeasurementView``, ``BackendsView``, ``GatesView``).

Lifecycle, in every process (the controller, each xdist worker, each dispatched container run):

1. **created** empty by ``base.session_of(config)`` (kept in ``config.stash[base.SESSION]``) the first
   time it is asked for: in practice by the first configure step;
2. **configured** by ``plugin/lifecycle.py``: its one ``pytest_configure`` runs ``CONFIGURE_STEPS`` in
   order (load the campaign into ``run``, check the results directory, load the saved run to compare
   with, install the gates, the measurement context, threads, carbon settings, the search race, then
   the reporting, resume and dispatch plugins). That happens when the plugin activates
   (``plugin/activation.py``): at configure time, or after collection when a test first uses it;
3. **used** by the hooks of collection, each item's run and the reports; per-item state stays in
   ``item.stash`` (``base.RECORDER``, ``base.WINDOWS``, ``base.HANDLES``, ``base.FAILED_GATE``);
4. **finished** at session end: the reporting plugins write the outputs and
   ``measurement/runtest.py`` closes the resident backend sessions (``backends``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import pytest

from pytest_llenergy.config.carbon import CarbonConfig
from pytest_llenergy.config.measurement import MeasurementConfig
from pytest_llenergy.energy.threads import ThreadPlan, load_warning
from pytest_llenergy.plugin.options import DEFAULT_ALPHA
from pytest_llenergy.plugin.state import LemRun
from pytest_llenergy.results.budgets import Verdict
from pytest_llenergy.results.compare import CompareRule
from pytest_llenergy.results.manifest import ManifestWriter


class MeasurementView(Protocol):
    """What other parts read of the process's measurement context (``measurement/context.py``)."""

    settings: MeasurementConfig
    source: Any
    reason: str
    #: wall seconds spent measuring or re-checking the baseline in this process
    baseline_s: float

    def ensure_source(self) -> Any:
        """The energy source, resolved on first use (a usage error when it cannot be)."""


class BackendsView(Protocol):
    """The process's resident backend sessions (``measurement/runtest.py``)."""

    def load_counts(self) -> dict[str, Any]:
        """Loads, reuses and evictions so far (``walltime.json``)."""

    def close(self) -> None:
        """Unload every resident session."""


class GatesView(Protocol):
    """Budgets and the comparison with a saved run (``gates/verdicts.py``), as a finished item's run asks."""

    def judge(self, item: pytest.Item, figures: dict[str, Any] | None) -> Verdict | None:
        """The merged verdict of the item's gates; None when it has none."""

    def fail(self, report: pytest.TestReport, verdict: Verdict, item: pytest.Item) -> None:
        """Turn the item's passed report into the gate failure the verdict names."""


@dataclass(eq=False)
class LemSession:
    """One process's run state (see the module docstring for its lifecycle)."""

    config: pytest.Config
    #: the campaign run (plan, order, seed, run directory); None without a campaign
    run: LemRun | None = None

    # measurement/ -------------------------------------------------------------------------------
    #: source, settings, baseline: made on first use by ``new_context`` (installed by its configure step)
    context: MeasurementView | None = None
    new_context: Callable[[], MeasurementView] | None = None
    #: loaded backend sessions kept resident between items
    backends: BackendsView | None = None
    #: CPU threads chosen for inference in this process
    threads: ThreadPlan | None = None
    #: carbon and cost settings, resolved once
    carbon: CarbonConfig | None = None
    #: the item the last thermal gap followed (local runs and docker dispatch alike)
    previous_item: pytest.Item | None = None

    # gates/ -------------------------------------------------------------------------------------
    gates: GatesView | None = None
    #: the saved run ``--lem-compare`` names (with its ``path``), None when not comparing
    saved: dict[str, Any] | None = None
    compare_rules: list[CompareRule] = field(default_factory=list)
    compare_alpha: float = DEFAULT_ALPHA

    # collection/ --------------------------------------------------------------------------------
    #: the search race's plugin (``collection/search.py``), when the campaign races
    search: Any = None
    #: what ``--lem-resume`` found, shown after collection
    resume_lines: list[str] = field(default_factory=list)

    # reporting/ ---------------------------------------------------------------------------------
    #: plain-test windows collected on the controller (``reporting/plain.py``)
    plain: Any = None
    #: the run's manifest, open from the run loop's start (controller)
    manifest: ManifestWriter | None = None

    # dispatch/ ----------------------------------------------------------------------------------
    #: what the docker preflight found in docker mode, reported by the run's preflight with its own
    docker_problems: list[str] = field(default_factory=list)
    #: a persistent container's protocol streams (taken before pytest captured stdin/stdout)
    serve_streams: tuple[BinaryIO, BinaryIO] | None = None

    def measurement(self) -> MeasurementView:
        """The measurement context, made on first use (nothing touches NVML until a test asks for energy)."""
        if self.context is None:
            if self.new_context is None:
                raise RuntimeError("llenergy: the measurement context is not installed (configure steps not run)")
            self.context = self.new_context()
        return self.context

    def thread_lines(self) -> list[str]:
        """``threads: ...`` and, on a loaded machine, a warning."""
        plan = self.threads
        lines = [f"threads: {plan.describe()}"] if plan is not None else []
        warning = load_warning(plan.cores if plan is not None else None)
        return lines + ([f"WARNING: {warning}"] if warning else [])
