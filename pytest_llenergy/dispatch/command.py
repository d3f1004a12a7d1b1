"""What the container runs for one item: the same node id, ids, seed and run directory as the host.

The controller decides every id; the container never invents one. Host paths become container
paths through the two mounts the compose file makes: the project (pytest's rootdir) and the
results root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pytest_llenergy.dispatch.errors import DispatchError
from pytest_llenergy.dispatch.worker import SERVE_FLAG


@dataclass(frozen=True)
class PathMap:
    """Host directories mounted into the containers, and where."""

    host_project: Path
    container_project: str
    host_results: Path
    container_results: str

    def mounts(self) -> list[tuple[Path, str]]:
        """Most specific first (the results root often lies inside the project)."""
        pairs = [(Path(self.host_project).resolve(), self.container_project),
                 (Path(self.host_results).resolve(), self.container_results)]
        return sorted(pairs, key=lambda pair: len(pair[0].parts), reverse=True)

    def to_container(self, host_path: Path | str) -> str:
        path = Path(host_path).resolve()
        for host, container in self.mounts():
            if path == host or host in path.parents:
                return str(PurePosixPath(container, *path.relative_to(host).parts))
        raise DispatchError(
            f"{path} is not inside the directories mounted into the containers (project {self.host_project} "
            f"-> {self.container_project}, results {self.host_results} -> {self.container_results}); "
            "move it inside the project"
        )


# Options of the host that the container must not inherit: it gets its own values for these
# (ids, run directory, dispatch), and controller-only work (resume, sharding, comparing, reports)
# stays on the host.
NOT_FORWARDED = frozenset({
    "lem_campaign", "lem_run_id", "lem_seed", "lem_seed_drawn", "lem_cycles", "lem_order", "lem_results_dir",
    "lem_dispatched", "lem_resume", "lem_resume_reset", "lem_dispatch", "lem_container_strategy",
    "lem_keep_containers", "lem_dispatch_report", "lem_dispatch_gap", "lem_shard", "lem_group_by",
    "lem_dispatch_serve",
})
NOT_FORWARDED_PREFIXES = ("lem_compare", "lem_report", "lem_webhook")


def forwarded_options(options: dict[str, object]) -> list[str]:
    """``--lem-*`` flags for the host's non-default ``lem_*`` option values (``config.option`` vars).

    Follows the plugin's convention that ``--lem-foo-bar`` stores into ``lem_foo_bar``.
    """
    argv: list[str] = []
    for dest in sorted(options):
        value = options[dest]
        if not dest.startswith("lem_") or dest in NOT_FORWARDED or dest.startswith(NOT_FORWARDED_PREFIXES):
            continue
        flag = "--" + dest.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value in (None, False, "", []) or isinstance(value, dict):
            continue
        elif isinstance(value, (list, tuple)):
            argv += [f"{flag}={v}" for v in value]
        else:
            argv.append(f"{flag}={value}")
    return argv


@dataclass(frozen=True)
class ItemCommand:
    """The pytest command line that runs one campaign item inside a container."""

    nodeid: str
    campaign: str
    run_id: str
    seed: int
    seed_drawn: bool
    cycles: int
    order: str
    results_dir: str
    report_path: str
    gap: dict | None = None
    forwarded: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    pytest: tuple[str, ...] = ("pytest",)
    extra: tuple[str, ...] = field(default=())
    cache: bool = True
    """Whether the host uses pytest's cache: the container then reads it (idle baselines) but never
    writes it; without it (``-p no:cacheprovider`` here) the container has none either."""

    def _cache_flags(self) -> list[str]:
        if not self.cache:
            return ["-p", "no:cacheprovider"]
        return ["-p", "no:lfplugin", "-p", "no:nfplugin", "-p", "no:stepwise"]

    def argv(self) -> list[str]:
        """One container, one item (ephemeral)."""
        return self._argv([self.nodeid], [f"--lem-dispatch-report={self.report_path}"]
                          + self._gap_flags())

    def serve_argv(self, nodeids: list[str]) -> list[str]:
        """A worker that collects ``nodeids`` and runs them one by one as the host asks (persistent)."""
        return self._argv(list(nodeids), [SERVE_FLAG])

    def _gap_flags(self) -> list[str]:
        if self.gap is None:
            return []
        return ["--lem-dispatch-gap=" + json.dumps(self.gap, separators=(",", ":"), sort_keys=True, default=str)]

    def _argv(self, nodeids: list[str], mode: list[str]) -> list[str]:
        argv = [
            *self.pytest, *nodeids,
            f"--lem-campaign={self.campaign}",
            f"--lem-run-id={self.run_id}",
            f"--lem-seed={self.seed}",
            f"--lem-cycles={self.cycles}",
            f"--lem-order={self.order}",
            f"--lem-results-dir={self.results_dir}",
            "--lem-dispatched",
            "--lem-dispatch=local",
            *mode,
        ]
        if self.seed_drawn:
            argv.append("--lem-seed-drawn")
        for override in self.overrides:
            argv += ["-o", override]
        return argv + [*self.forwarded, *self._cache_flags(), "-q", "-rfEs", "--tb=short", "--color=no", *self.extra]
