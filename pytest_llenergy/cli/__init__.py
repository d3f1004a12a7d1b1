"""``lem``: the companion command. Campaigns run through pytest; this inspects, reports, compares.

    lem doctor                      what this machine can measure and run
    lem init [DIR]                  a starter campaign and test file
    lem config list [DIR]           campaign files and their size
    lem config show FILE            the expanded plan (ids, dropped points), and what would stop it
    lem config params [--coverage]  every backend parameter / typed coverage
    lem report DIR [DIR ...]        rebuild summary, plots and report from stored results
    lem slurm submit CAMPAIGN       a Slurm job array (one task per shard) + a merge job
    lem compare A B [--fail RULES]  compare two saved runs or result directories
    lem schedule --at HH:MM ...     run a campaign at set times (daemon mode)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_llenergy.cli import doctor, init


def _config_list(args: argparse.Namespace) -> int:
    from pytest_llenergy.config import CampaignError, load_plan

    files = sorted(Path(args.dir).rglob("*.yaml")) + sorted(Path(args.dir).rglob("*.yml"))
    if not files:
        print(f"no campaign files under {args.dir}")
    for path in files:
        try:
            plan = load_plan(path)
        except CampaignError as exc:
            print(f"{path}: INVALID: {exc.problems[0]}")
            continue
        c = plan.campaign
        print(f"{path}: {c.name}: {len(plan.experiments)} experiments x {c.max_cycles} cycles, order {c.order}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    from pytest_llenergy.backends.checks import experiment_problems
    from pytest_llenergy.config import CampaignError, load_plan

    try:
        plan = load_plan(args.file)
    except CampaignError as exc:
        print(exc, file=sys.stderr)
        return 2
    for exp in plan.experiments:
        print(exp.id)
    for line in plan.dropped_summary():
        print(line)
    if plan.duplicates:
        print(f"{plan.duplicates} duplicate grid points merged")
    if plan.campaign.search is not None:
        from pytest_llenergy.config.search import describe_search

        print("\n".join(describe_search(plan.campaign, plan.experiments)))
    problems = experiment_problems(plan.experiments, plan.base_dir)
    for problem in problems:  # the same check (and text) as pytest's preflight
        print(f"lem config show: {problem}", file=sys.stderr)
    return 2 if problems else 0


def _config_params(args: argparse.Namespace) -> int:
    from pytest_llenergy.backends.introspection import format_coverage_report, render_parameters_doc

    print(format_coverage_report(args.backend) if args.coverage else render_parameters_doc())
    return 0


def _report(args: argparse.Namespace) -> int:
    from pytest_llenergy.results.report import build_outputs

    dirs = [Path(d) for d in args.dirs]
    missing = [d for d in dirs if not d.exists()]
    if missing:
        print(f"lem report: not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else None
    if out is None and len(dirs) == 1 and not _is_run_dir(dirs[0]):
        runs = _runs_inside(dirs[0])  # a campaign folder: never write into it (it holds only runs)
        if len(runs) == 1:
            print(f"lem report: {dirs[0]} is a campaign folder: reporting its one run, {runs[0]}")
            dirs = runs
        elif runs:
            print(f"lem report: {dirs[0]} holds {len(runs)} runs ({', '.join(r.name for r in runs[:3])}"
                  f"{', ...' if len(runs) > 3 else ''}): name one run directory, or merge them with --out DIR",
                  file=sys.stderr)
            return 2
    if out is None and len(dirs) > 1:
        print("lem report: --out DIR is required when merging several run directories", file=sys.stderr)
        return 2
    group_by = None if args.group_by is None else [p for p in args.group_by.split(",") if p]
    try:
        summary = build_outputs(dirs if len(dirs) > 1 else dirs[0], group_by=group_by, seed=args.seed, out_dir=out)
    except ValueError as exc:
        print(f"lem report: {exc}", file=sys.stderr)
        return 2
    print(f"wrote summary and report for {summary.n_experiments} experiments to {out or dirs[0]}")
    if summary.search is not None:
        from pytest_llenergy.results.search_report import search_lines

        print("\n".join(search_lines(summary.search)))
    return 0


def _is_run_dir(path: Path) -> bool:
    from pytest_llenergy.results.store import RunDirectory

    return RunDirectory.looks_like(path)


def _runs_inside(path: Path) -> list[Path]:
    """The run directories directly under ``path`` (a campaign folder), oldest first."""
    return sorted(p for p in path.iterdir() if p.is_dir() and _is_run_dir(p)) if path.is_dir() else []


def _compare(args: argparse.Namespace) -> int:
    from pytest_llenergy.results.compare import (
        DEFAULT_ALPHA,
        compare_records,
        format_comparisons,
        parse_rules,
    )

    try:
        old, new = _as_record(args.a), _as_record(args.b)
        rules = parse_rules(args.fail or "energy_per_output_token:5% tokens_per_s:-5%")
    except (OSError, ValueError) as exc:
        print(f"lem compare: {exc}", file=sys.stderr)
        return 2
    alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
    if not 0 < alpha < 0.5:
        print(f"lem compare: --alpha {alpha:g} is not a probability between 0 and 0.5", file=sys.stderr)
        return 2
    comparisons = compare_records(old, new, rules, alpha)
    for line in format_comparisons(comparisons, old, new):
        print(line)
    return 1 if args.fail and any(c.regression for c in comparisons) else 0


def _as_record(ref: str) -> dict:
    """A saved-run file, or a results directory turned into the same record."""
    from pytest_llenergy.results import load
    from pytest_llenergy.results.saved import load_saved, run_record
    from pytest_llenergy.results.store import ENVIRONMENT_FILE

    path = Path(ref)
    if path.is_file():
        return load_saved(path)
    if path.is_dir():
        frame = load(path)
        if frame.empty:
            raise ValueError(f"{path}: no results found")
        env_file = next(iter(sorted(path.rglob(ENVIRONMENT_FILE))), None)
        environment = __import__("json").loads(env_file.read_text()) if env_file else {}
        return run_record(frame, name=path.name, campaign=str(frame["campaign"].iloc[0]),
                          run_id=str(frame["run_id"].iloc[0]), environment=environment)
    raise FileNotFoundError(f"{ref}: no such saved run or results directory")


def _schedule(args: argparse.Namespace) -> int:
    from pytest_llenergy.cli.scheduling import run_schedule

    return run_schedule(args.at, args.every, args.total, args.pytest_args, dry_run=args.dry_run)


def _slurm_submit(args: argparse.Namespace) -> int:
    from pytest_llenergy.cli.slurm import (
        SlurmError,
        SlurmRequest,
        plan_submission,
        submit,
        write_scripts,
    )

    pytest_args = [a for a in args.pytest_args if a != "--"] or ["energy_suites/"]
    request = SlurmRequest(campaign=Path(args.campaign), nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                           results_root=Path(args.results_root), pytest_args=pytest_args,
                           exclusive=not args.shared, partition=args.partition, time_limit=args.time,
                           cpus_per_task=args.cpus_per_task, extra_sbatch=args.sbatch or [])
    try:
        plan = plan_submission(request)
        for k, ids in enumerate(plan.shard_experiments, 1):
            print(f"shard {k}/{plan.shards}: {len(ids)} experiment(s): {', '.join(ids)}")
        if args.dry_run:
            array, merge = write_scripts(plan)
            print(f"wrote {array} and {merge} (not submitted: --dry-run)")
            return 0
        array_id, merge_id = submit(plan)
    except SlurmError as exc:
        print(f"lem slurm: {exc}", file=sys.stderr)
        return 2
    print(f"submitted array job {array_id} ({plan.shards} task(s)) and merge job {merge_id} (after it)")
    print(f"shard results: {plan.root}/shard-K/{plan.campaign_name}/{plan.run_id}; merged: {plan.merged_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lem", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s (pytest-llenergy) {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    doctor.add_parser(sub)
    init.add_parser(sub)
    config = sub.add_parser("config", help="inspect campaigns and parameters").add_subparsers(dest="what", required=True)
    p = config.add_parser("list", help="campaign files and their size")
    p.add_argument("dir", nargs="?", default="energy_suites/campaigns", help="folder searched for *.yaml (default energy_suites/campaigns)")
    p.set_defaults(func=_config_list)
    p = config.add_parser("show", help="the expanded plan of one campaign")
    p.add_argument("file", help="campaign YAML file")
    p.set_defaults(func=_config_show)
    p = config.add_parser("params", help="backend parameters (docs) or typed coverage")
    p.add_argument("--coverage", action="store_true", help="typed-coverage report instead of the parameter docs")
    p.add_argument("--backend", default=None, help="only this backend (with --coverage)")
    p.set_defaults(func=_config_params)
    p = sub.add_parser("report", help="rebuild summary, plots and report from stored results")
    p.add_argument("dirs", nargs="+", help="run directories (several are merged: --out is then required)")
    p.add_argument("--out", default=None, help="output directory (default: the first DIR; required with several)")
    p.add_argument("--group-by", default=None,
                   help="comma-separated config paths to group by (default: the run's, from manifest.json; '' for none)")
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default: the run's, from manifest.json)")
    p.set_defaults(func=_report)
    p = sub.add_parser("compare", help="compare two saved runs or result directories")
    p.add_argument("a", help="the old run: a saved-run JSON file or a results directory")
    p.add_argument("b", help="the new run: a saved-run JSON file or a results directory")
    p.add_argument("--fail", default=None, help="rules such as 'energy_per_output_token:5%% tokens_per_s:-10%%'")
    p.add_argument("--alpha", type=float, default=None,
                   help="false-alarm rate: fail when the one-sided p-value is below it (default 0.01)")
    p.set_defaults(func=_compare)
    p = sub.add_parser("schedule", help="run pytest at set times (daemon mode)")
    p.add_argument("--at", default=None, help="first start, HH:MM local time (default: now)")
    p.add_argument("--every", default="24h", help="interval between starts")
    p.add_argument("--for", dest="total", default="24h", help="stop scheduling after this long")
    p.add_argument("--dry-run", action="store_true", help="print the start times, run nothing")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest arguments")
    p.set_defaults(func=_schedule)
    slurm = sub.add_parser("slurm", help="run a campaign on a Slurm cluster").add_subparsers(dest="what", required=True)
    p = slurm.add_parser("submit", help="one array task per shard (exclusive nodes) + a dependent merge job")
    p.add_argument("campaign", help="campaign YAML file")
    p.add_argument("--nodes", type=int, default=1, help="shards = array tasks, one node each (default 1)")
    p.add_argument("--gpus-per-node", type=int, default=1, help="GPUs per task, one xdist worker each; 0 for CPU")
    p.add_argument("--results-root", default="lem-results/slurm", help="shared results root (default lem-results/slurm)")
    p.add_argument("--partition", default=None, help="Slurm partition")
    p.add_argument("--time", default=None, help="time limit per task, e.g. 04:00:00")
    p.add_argument("--cpus-per-task", type=int, default=None, help="CPUs per task")
    p.add_argument("--shared", action="store_true", help="do not ask for exclusive nodes (CPU tries, CI)")
    p.add_argument("--sbatch", action="append", metavar="OPTION", help="extra #SBATCH option, repeatable")
    p.add_argument("--dry-run", action="store_true", help="write the job scripts, print the split, submit nothing")
    p.add_argument("pytest_args", nargs="*", help="-- then pytest arguments (default energy_suites/)")
    p.set_defaults(func=_slurm_submit)
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pytest-llenergy")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    """Run ``lem``; a closed pipe (``lem config params | head``) ends quietly."""
    try:
        return _main(argv)
    except BrokenPipeError:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout at exit: make that a no-op
        return 0


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tail: list[str] | None = None
    if "--" in argv:  # everything after -- is pytest's (schedule, slurm submit)
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if tail is not None and hasattr(args, "pytest_args"):
        args.pytest_args = tail
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
