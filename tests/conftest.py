"""Suite-wide setup: offline Hugging Face, libraries loaded once and kept across pytester runs
(``kept_modules.py``), crashed workers' tests rerun once (``crash_reruns.py``), and required
components (LEM_REQUIRE, in ``require_components.py``: a ``requires("name")`` test that skips fails
where CI requires the name)."""

import contextlib
import importlib
import io
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from crash_reruns import rerun_crashed_tests_once  # noqa: E402
from kept_modules import keep_installed_libraries  # noqa: E402
from require_components import pytest_configure as _require_components_configure  # noqa: E402
from require_components import (  # noqa: E402,F401  (the LEM_REQUIRE hooks, a plugin of their own)
    pytest_make_collect_report,
    pytest_runtest_logreport,
    pytest_runtest_makereport,
    pytest_runtest_protocol,
    pytest_sessionfinish,
)


def pytest_configure(config: pytest.Config) -> None:
    _require_components_configure(config)
    rerun_crashed_tests_once(config)
    keep_installed_libraries(config)

# pytester's in-process runs drop every module first imported during a run; kept_modules.py keeps
# installed libraries (torch, pyarrow, ... cannot be imported twice in one process). These are also
# loaded before the first test (not in an xdist controller, which runs none), so that no test's
# timing or output depends on being the first to import them (matplotlib alone costs ~1 s).
_LOADED_ONCE = ("numpy.fft", "pandas", "pyarrow", "pyarrow.dataset", "scipy.special", "scipy.stats",
                "pandas.io.formats.csvs", "psutil", "matplotlib.figure", "matplotlib.backends.backend_agg",
                "unittest.mock", "html.entities", "xml.parsers.expat")


@pytest.fixture(scope="session", autouse=True)
def _libraries_loaded_once() -> None:
    for name in _LOADED_ONCE:
        importlib.import_module(name)
    pandas = importlib.import_module("pandas")
    pandas.DataFrame({"x": [1.0]}).to_parquet(io.BytesIO())  # loads the parquet engine and its extension types
    with contextlib.suppress(ImportError):  # its pytest plugin (when installed) imports it inside each run
        importlib.import_module("hypothesis")


@pytest.fixture(autouse=True)
def _not_inside_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``-n 2`` the runs a test starts (pytester, subprocesses) must not inherit the worker's
    identity: they behave as at top level, as they do in a serial run."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
