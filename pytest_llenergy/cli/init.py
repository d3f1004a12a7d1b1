"""``lem init``: detect the machine, then write a campaign, an ini block and a test file for it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

CAMPAIGN = """\
# Written by lem init for this machine ({machine}).
name: {name}
description: "Starter campaign written by lem init"
cycles: 3
order: interleaved
seed: 1234
defaults:
  backend: {backend}
  model: {{name: tiny-llama, weights: random}}
  precision: {precision}
  workload: {{prompts: synthetic, num_prompts: {prompts}, input_tokens: 32, output_tokens: 32, batch_size: 4}}
grid:
  shared: {{workload.batch_size: [{batches}]}}
measurement: {{energy_source: {source}}}
group_by: [workload.batch_size]
"""

TEST = '''\
def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    energy.warmup(lambda: lem_session.run(workload.head(1)))
    with energy.measure("generate") as window:
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    lem_result.record_generation(stats)
'''

INI_KEYS = "lem_campaign = {campaign}\nlem_energy_source = {source}\n"


@dataclass(frozen=True)
class Machine:
    gpus: list[str]
    source: str
    backend: str

    def describe(self) -> str:
        gpus = f"{len(self.gpus)} GPU(s): {', '.join(self.gpus)}" if self.gpus else "no GPU"
        return f"{gpus}; energy source {self.source}; backend {self.backend}"


def detect() -> Machine:
    """GPUs (NVML), the energy source auto would pick, and the best available backend."""
    from pytest_llenergy.backends.base import BackendNotFound, get_backend
    from pytest_llenergy.energy import resolve_source
    from pytest_llenergy.energy.environment import gpu_environment

    gpus = [str(d.get("name")) for d in (gpu_environment().get("devices") or [])]
    try:
        source, _ = resolve_source("auto")
        kind = source.kind
        source.close()
    except Exception:
        kind = "estimate"
    backend = "transformers"
    if gpus:
        try:
            if get_backend("vllm").available()[0]:
                backend = "vllm"
        except BackendNotFound:
            pass
    return Machine(gpus, kind, backend)


def ini_block(campaign: Path, source: str, root: Path) -> tuple[Path, str, str]:
    """Where the ini block goes and how: appended to pyproject.toml or pytest.ini, else a new pytest.ini."""
    keys = INI_KEYS.format(campaign=campaign.relative_to(root) if campaign.is_relative_to(root) else campaign,
                           source=source)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        return pyproject, "[tool.pytest.ini_options]", "".join(
            f'{k.strip()} = "{v.strip()}"\n' for k, _, v in (line.partition("=") for line in keys.splitlines()))
    return root / "pytest.ini", "[pytest]", keys


def write_ini(path: Path, header: str, body: str) -> str:
    text = path.read_text() if path.is_file() else ""
    if "lem_campaign" in text:
        return f"kept {path} (already has lem_campaign)"
    if header in text:
        return f"add under {header} in {path}:\n{body}"
    with path.open("a") as out:
        out.write(("\n" if text and not text.endswith("\n\n") else "") + f"{header}\n{body}")
    return f"wrote the {header} block to {path}"


def init(args: argparse.Namespace) -> int:
    root, folder = Path.cwd(), Path(args.dir)
    machine = detect()
    print(f"machine: {machine.describe()}")
    name = args.name
    if not args.non_interactive and sys.stdin.isatty():
        name = input(f"campaign name [{name}]: ").strip() or name
    gpu = bool(machine.gpus)
    campaign = folder / "campaigns" / f"{name}.yaml"
    files = {campaign: CAMPAIGN.format(machine=machine.describe(), name=name, backend=machine.backend,
                                       precision="bfloat16" if gpu else "float32", prompts=64 if gpu else 8,
                                       batches="1, 8, 32" if gpu else "1, 4", source=machine.source),
             folder / "test_energy.py": TEST}
    for path, text in files.items():
        if path.exists():
            print(f"kept {path} (exists)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    print(write_ini(*ini_block(campaign.resolve(), machine.source, root)))
    print(f"run it: pytest {folder}   (or pytest {folder} --lem-campaign {campaign})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="detect this machine; write a campaign, an ini block and a test file")
    p.add_argument("dir", nargs="?", default="energy_suites", help="where to write (default energy_suites)")
    p.add_argument("--name", default="my-campaign", help="campaign name (default my-campaign)")
    p.add_argument("--non-interactive", action="store_true", help="ask nothing; use the defaults")
    p.set_defaults(func=init)
