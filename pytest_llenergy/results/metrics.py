"""Metric names: the short names used in campaign YAML, the columns they mean, and display labels."""

from __future__ import annotations

# Short name (campaign YAML, CLI) -> column of ``load()``'s frame.
METRIC_ALIASES: dict[str, str] = {
    "energy": "energy_j",
    "adjusted_energy": "energy_adjusted_j",
    "energy_per_output_token": "energy_per_output_token_j",
    "adjusted_energy_per_output_token": "adjusted_energy_per_output_token_j",
    "energy_per_token": "energy_per_token_j",
    "adjusted_energy_per_token": "adjusted_energy_per_token_j",
    "tokens_per_s": "tokens_per_s",
    "output_tokens_per_s": "output_tokens_per_s",
    "mean_power": "mean_power_w",
    "ttft": "ttft_ms_mean",
    "itl": "itl_ms_mean",
    "gco2e": "gco2e",
    "cost": "cost",
}

# Column -> (label, unit) for tables and charts.
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "energy_j": ("Energy (raw)", "J"),
    "energy_adjusted_j": ("Energy (baseline-adjusted)", "J"),
    "energy_per_output_token_j": ("Energy per output token (raw)", "J"),
    "energy_per_token_j": ("Energy per token (raw)", "J"),
    "adjusted_energy_per_output_token_j": ("Energy per output token (adjusted)", "J"),
    "adjusted_energy_per_token_j": ("Energy per token (adjusted)", "J"),
    "tokens_per_s": ("Throughput (all tokens)", "tok/s"),
    "output_tokens_per_s": ("Throughput (output tokens)", "tok/s"),
    "mean_power_w": ("Mean power", "W"),
    "ttft_ms_mean": ("Time to first token", "ms"),
    "itl_ms_mean": ("Inter-token latency", "ms"),
    "gco2e": ("Emissions per item", "gCO2e"),
    "cost": ("Electricity cost per item", "currency"),
    "gco2e_per_1k_prompts": ("Emissions per 1,000 prompts", "gCO2e"),
    "cost_per_1k_prompts": ("Electricity cost per 1,000 prompts", "currency"),
}

# Column -> short header for narrow tables.
METRIC_SHORT: dict[str, str] = {
    "energy_j": "J raw", "energy_adjusted_j": "J adj", "energy_per_output_token_j": "J/out-token raw",
    "energy_per_token_j": "J/token raw", "adjusted_energy_per_output_token_j": "J/out-token adj",
    "adjusted_energy_per_token_j": "J/token adj", "tokens_per_s": "tok/s", "output_tokens_per_s": "out tok/s",
    "mean_power_w": "W", "ttft_ms_mean": "TTFT ms", "itl_ms_mean": "ITL ms",
}

MAIN_METRICS: tuple[str, ...] = ("adjusted_energy_per_output_token_j", "energy_per_output_token_j")


def metric_column(name: str) -> str:
    """The frame column for a short metric name (``energy_per_output_token``) or a column name itself."""
    if name in METRIC_ALIASES:
        return METRIC_ALIASES[name]
    if name in METRIC_ALIASES.values():
        return name
    known = ", ".join(sorted(METRIC_ALIASES))
    raise ValueError(f"unknown metric {name!r}; known metrics: {known}")


def metric_label(column: str) -> str:
    """``Energy per output token (adjusted) [J]``, or the column name when it has no label."""
    label, unit = METRIC_LABELS.get(column, (column, ""))
    return f"{label} [{unit}]" if unit else label
