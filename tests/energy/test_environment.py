"""collect_environment and the import rules of the energy package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pytest_llenergy.energy import NvmlSource, collect_environment
from pytest_llenergy.energy.environment import git_state, package_versions

from .fake_pynvml import FakeGpu


def test_environment_with_nvml(install_nvml, monkeypatch) -> None:
    monkeypatch.setenv("LLENERGY_TEST_SECRET", "hunter2-token")
    install_nvml([FakeGpu(0), FakeGpu(1, name="NVIDIA H100")])
    env = collect_environment(NvmlSource(devices=[1]))
    text = json.dumps(env)  # JSON-serialisable
    assert "hunter2-token" not in text and "LLENERGY_TEST_SECRET" not in text
    gpu = env["gpu"]
    assert (gpu["driver_version"], gpu["cuda_driver_version"]) == ("580.159.04", "13.0")
    assert gpu["nvml_version"] == "13.580.159.04"
    (dev,) = gpu["devices"]
    assert dev["index"] == 1 and dev["name"] == "NVIDIA H100"
    assert (dev["power_limit_w"], dev["default_power_limit_w"], dev["persistence_mode"]) == (700.0, 700.0, True)
    assert dev["mig_mode"] is None and (dev["pcie_gen"], dev["pcie_width"]) == (5, 16)
    assert env["source"] == {"kind": "nvml", "estimated": False, "simulated": False, "devices": ["gpu1"]}


def test_environment_without_nvml(no_nvml) -> None:
    env = collect_environment()
    json.dumps(env)
    assert env["gpu"]["devices"] == [] and env["gpu"]["driver_version"] is None
    assert env["cpu"]["logical_cores"] >= 1 and env["cpu"]["ram_gb"] > 0
    assert env["os"]["kernel"] and env["python"]["version"].count(".") == 2
    assert set(env["container"]) == {"in_container", "dockerenv", "cgroup_hints"}
    assert env["source"] is None


def test_package_versions_and_git(tmp_path: Path) -> None:
    versions = package_versions()
    assert versions["numpy"] and versions["pytest_llenergy"] == "0.1.0"
    assert set(versions) >= {"torch", "transformers", "vllm", "tensorrt_llm", "pynvml"}
    assert git_state(tmp_path) is None
    here = git_state(Path(__file__).parent)
    assert here is not None and len(here["commit"]) == 40 and isinstance(here["dirty"], bool)


def test_import_pulls_in_nothing_heavy() -> None:
    """No engine, pandas or pytest behind ``pytest_llenergy.energy``. It may use config/ (DESIGN: energy
    uses config; the allowed sources, warmup modes and gap defaults are declared there once), and so
    pydantic, which GPU runs carry as wheels."""
    code = (
        "import sys, pytest_llenergy.energy as e\n"
        "from pytest_llenergy.energy import collect_environment, resolve_source\n"
        "collect_environment(resolve_source('replay')[0])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('pytest', '_pytest', 'torch', 'transformers', 'vllm', 'pandas')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "[]"
