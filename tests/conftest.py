"""Suite-wide setup: offline Hugging Face, libraries loaded once, and required components (LEM_REQUIRE,
in ``require_components.py``: a ``requires("name")`` test that skips fails where CI requires the name)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# pytester's in-process runs drop every module first imported during a run, so a library the plugin
# imports lazily would be imported again (and, for a pytest plugin's package, assertion-rewritten
# again: PYTHONDONTWRITEBYTECODE leaves no cached rewrite) by every run: matplotlib alone costs ~1 s a
# run. Import them once here so they stay. pandas + pyarrow cannot even be imported twice in one
# process (pyarrow re-registers its extension types).
import contextlib  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402

import numpy.fft  # noqa: E402,F401  (compiled modules load only once per process)
import pandas  # noqa: E402
import pyarrow  # noqa: E402,F401
import scipy.special  # noqa: E402,F401
import scipy.stats  # noqa: E402,F401

pandas.DataFrame({"x": [1.0]}).to_parquet(io.BytesIO())  # loads the parquet engine and its extension types
for _name in ("pyarrow.dataset", "pandas.io.formats.csvs", "psutil", "matplotlib.figure",
              "matplotlib.backends.backend_agg", "unittest.mock", "html.entities", "xml.parsers.expat"):
    importlib.import_module(_name)
with contextlib.suppress(ImportError):  # its pytest plugin (when installed) imports it inside each run
    importlib.import_module("hypothesis")

from require_components import (  # noqa: E402,F401  (the LEM_REQUIRE hooks, a plugin of their own)
    pytest_configure,
    pytest_runtest_logreport,
    pytest_runtest_makereport,
    pytest_sessionfinish,
)


@pytest.fixture(autouse=True)
def _not_inside_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``-n 2`` the runs a test starts (pytester, subprocesses) must not inherit the worker's
    identity: they behave as at top level, as they do in a serial run."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
