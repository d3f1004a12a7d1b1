from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .factory import make_config, write_run

CONFIGS = {
    "transformers-gpt2-bs1-bf16-aaaa": make_config(batch_size=1),
    "transformers-gpt2-bs8-bf16-bbbb": make_config(batch_size=8),
    "vllm-gpt2-bs8-bf16-cccc": make_config(backend="vllm", batch_size=8),
}
VALUES = {
    "transformers-gpt2-bs1-bf16-aaaa": [100.0, 104.0, 98.0, 101.0],
    "transformers-gpt2-bs8-bf16-bbbb": [50.0, 52.0, 49.0, 51.0],
    "vllm-gpt2-bs8-bf16-cccc": [70.0, 71.5, 69.0, 70.5],
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run with three experiments x four cycles (adjusted energy = 60 % of raw)."""
    return write_run(tmp_path, VALUES, config_of=CONFIGS).path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.requires("chromium"))


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium) — report rendering not checked")
    return path
