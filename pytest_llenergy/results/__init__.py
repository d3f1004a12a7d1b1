"""Results: schema, store, statistics, exports, report and gates (no pytest)."""

from .schema import SCHEMA_VERSION, ExperimentResult, result_key
from .store import RunDirectory, atomic_write_json

__all__ = ["SCHEMA_VERSION", "ExperimentResult", "RunDirectory", "atomic_write_json", "result_key"]
