import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# pytester's in-process runs drop modules first imported during a run; pandas + pyarrow cannot be
# imported twice in one process (pyarrow re-registers its extension types), so import them once here.
import io  # noqa: E402

import numpy.fft  # noqa: E402,F401  (compiled modules load only once per process)
import pandas  # noqa: E402
import pyarrow  # noqa: E402,F401
import scipy.special  # noqa: E402,F401
import scipy.stats  # noqa: E402,F401

pandas.DataFrame({"x": [1.0]}).to_parquet(io.BytesIO())  # loads the parquet engine and its extension types
