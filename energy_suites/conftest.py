"""The suites users run. ``pytest energy_suites/`` runs the campaign and the examples; the smoke
suite runs only when asked for (``pytest energy_suites/smoke``), so the main job stays short."""

from pathlib import Path

SMOKE = Path(__file__).parent / "smoke"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if collection_path == SMOKE:
        asked = any(Path(str(arg).split("::")[0]).resolve().is_relative_to(SMOKE) for arg in config.args)
        return None if asked else True
    return None
