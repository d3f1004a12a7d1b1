"""docs/parameter-impact.md from the result files of the impact campaigns.

    python scripts/gen_parameter_impact.py RESULTS_ROOT [--out docs/parameter-impact.md]

RESULTS_ROOT holds ``impact-<parameter>/<run-id>/`` directories (the default layout of
``pytest energy_suites/ --lem-campaign energy_suites/campaigns/impact/<parameter>.yaml``); the
newest run of each campaign is used. For each parameter: every value's adjusted J per output token
and output tokens/s (mean and 95 % CI over cycles) and its effect relative to the campaign's
reference value (the first in the grid) with a Welch t interval on log values. Parameters are
ranked by their largest effect; those whose every CI of the effect includes 0 are listed as having
no measurable effect. Re-run it on another GPU's results to get that GPU's page.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
CAMPAIGNS = REPO / "energy_suites" / "campaigns" / "impact"
ENERGY = "adjusted_energy_per_output_token_j"
RAW_ENERGY = "energy_per_output_token_j"
SPEED = "output_tokens_per_s"


@dataclass
class Row:
    value: str
    n: int
    energy: tuple[float, float, float]  # mean, low, high
    speed: tuple[float, float, float]
    effect: tuple[float, float, float] | None  # % vs reference: mean, low, high
    speed_effect: tuple[float, float, float] | None
    raw_effect: tuple[float, float, float] | None = None  # on raw (not baseline-adjusted) J/token


def _ci(values: np.ndarray, rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """Mean and its 95 % Student t interval (the plugin's choice below 10 cycles: a percentile
    bootstrap of 5 values covers far less than 95 %, docs/statistics.md)."""
    from scipy import stats

    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan,) * 3
    if values.size == 1:
        return float(values[0]), math.nan, math.nan
    mean, se = float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))
    half = float(stats.t.ppf(0.975, values.size - 1)) * se
    return mean, mean - half, mean + half


def _ratio_ci(a: np.ndarray, ref: np.ndarray, rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """Effect of ``a`` vs ``ref`` in % (ratio of geometric means - 1) with a 95 % Welch t interval on
    log values (the test ``--lem-compare-fail`` uses)."""
    from scipy import stats

    a, ref = a[np.isfinite(a) & (a > 0)], ref[np.isfinite(ref) & (ref > 0)]
    if a.size < 2 or ref.size < 2:
        return (math.nan,) * 3
    la, lr = np.log(a), np.log(ref)
    va, vr = la.var(ddof=1) / a.size, lr.var(ddof=1) / ref.size
    diff, se = float(la.mean() - lr.mean()), math.sqrt(va + vr)
    df = (va + vr) ** 2 / (va**2 / (a.size - 1) + vr**2 / (ref.size - 1)) if va + vr > 0 else a.size + ref.size - 2
    half = float(stats.t.ppf(0.975, df)) * se
    return tuple(100 * (math.exp(x) - 1) for x in (diff, diff - half, diff + half))  # type: ignore[return-value]


def varied_values(campaign_file: Path) -> tuple[str, list[str]]:
    """The varied parameter's name and its values in grid order (as labels)."""
    grid = (yaml.safe_load(campaign_file.read_text()) or {}).get("grid", {})
    for section in (grid.get("shared") or {}, *((grid.get("backend_overrides") or {}).values())):
        for key, values in section.items():
            if isinstance(values, list) and len(values) > 1:
                return key, [_label(v) for v in values]
            if isinstance(values, list) and len(values) == 1:
                continue
    raise ValueError(f"{campaign_file}: no parameter with several values in its grid")


def _label(value: object, drop_false: bool = False) -> str:
    if isinstance(value, dict):
        items = {k: v for k, v in value.items()
                 if v is not None and not _isnan(v) and not (drop_false and v is False or drop_false and v is np.False_)}
        return ", ".join(f"{k}={_label(v)}" for k, v in sorted(items.items())) or "none"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _isnan(v: object) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _value_of(row: pd.Series, key: str) -> str:
    """The varied parameter's value in one row of ``load()``'s frame (flattened ``config.*`` columns)."""
    for col in (f"config.{key}", f"config.transformers.{key}"):
        if col in row.index:
            return _label(row[col])
    for prefix in (f"config.{key}.", f"config.transformers.{key}."):
        sub = {c[len(prefix):]: row[c] for c in row.index if c.startswith(prefix)}
        if sub:
            if key == "decoder":
                sub = {k: sub[k] for k in ("do_sample", "temperature", "top_p") if k in sub}
                if not sub.get("do_sample"):
                    sub = {"do_sample": False}
                return ", ".join(f"{k}={_label(v)}" for k, v in sorted(sub.items()) if v is not None and not _isnan(v))
            return _label(sub, drop_false=True)
    return "?"


def newest_run(root: Path, name: str) -> Path | None:
    runs = sorted(p for p in (root / name).glob("*") if (p / "experiments").is_dir())
    return runs[-1] if runs else None


def conditions(df: pd.DataFrame) -> str:
    """Window length, GPU utilisation and the adjusted share of raw energy: how host-bound the run was."""
    def mean(col: str) -> float:
        return float(df[col].mean()) if col in df and df[col].notna().any() else math.nan

    share = 100 * mean("energy_adjusted_j") / mean("energy_j") if "energy_adjusted_j" in df else math.nan
    gpus = sorted({str(n) for n in df.get("gpu_name", pd.Series(dtype=str)).dropna()})
    parts = [f"windows {mean('window_duration_s'):.2f} s on average",
             f"GPU utilisation {mean('mean_utilization_pct'):.0f} %",
             f"baseline-adjusted energy {share:.0f} % of raw"]
    return "Conditions: " + ", ".join(p for p in parts if "nan" not in p) + (f" ({', '.join(gpus)})" if gpus else "") + "."


def analyse(campaign_file: Path, run_dir: Path, seed: int = 0) -> tuple[str, list[Row], str, str]:
    from pytest_llenergy.results import load

    key, order = varied_values(campaign_file)
    df = load(run_dir)
    df = df[df["status"] == "passed"] if "status" in df else df
    metric = ENERGY if ENERGY in df and df[ENERGY].notna().any() else RAW_ENERGY
    df = df.copy()  # load()'s frame is built column by column: de-fragment before adding one
    df["_value"] = [_value_of(row, key) for _, row in df.iterrows()]
    rng = np.random.default_rng(seed)
    groups = {v: g for v, g in df.groupby("_value")}
    ref = groups.get(order[0])
    rows = []
    for value in order + sorted(set(groups) - set(order)):
        if value not in groups:
            continue
        g = groups[value]
        e, s = g[metric].to_numpy(float), g[SPEED].to_numpy(float)
        effect = speed_effect = raw_effect = None
        if ref is not None and value != order[0]:
            effect = _ratio_ci(e, ref[metric].to_numpy(float), rng)
            speed_effect = _ratio_ci(s, ref[SPEED].to_numpy(float), rng)
            if metric != RAW_ENERGY and RAW_ENERGY in g:
                raw_effect = _ratio_ci(g[RAW_ENERGY].to_numpy(float), ref[RAW_ENERGY].to_numpy(float), rng)
        rows.append(Row(value, len(g), _ci(e, rng), _ci(s, rng), effect, speed_effect, raw_effect))
    return key, rows, metric, f"{run_setup(run_dir, df)} {conditions(df)}".strip()


def _fmt(x: float, digits: int = 4) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}g}"


def _pct(t: tuple[float, float, float] | None) -> str:
    if t is None:
        return "reference"
    m, lo, hi = t
    return "-" if not math.isfinite(m) else f"{m:+.1f} % [{lo:+.1f}, {hi:+.1f}]"


def base_setup() -> str:
    """The fixed model and workload every impact campaign varies one parameter around (from batch_size.yaml)."""
    c = yaml.safe_load((CAMPAIGNS / "batch_size.yaml").read_text())
    d, w = c["defaults"], c["defaults"]["workload"]
    return (f"one parameter varied around {d['model']['name']} with {d['model'].get('weights', 'pretrained')} weights, "
            f"{d.get('precision', 'default precision')}, {w['num_prompts']} prompts of {w['input_tokens']} input + "
            f"{w['output_tokens']} output tokens, batch {w['batch_size']}, {c['cycles']} {c.get('order', 'interleaved')} cycles")


def run_setup(run_dir: Path, df: pd.DataFrame) -> str:
    """What the run itself fixed (prompts per window, cycles configured): results may predate a campaign edit."""
    import json

    manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").is_file() else {}
    col = "config.workload.num_prompts"
    prompts = sorted({int(v) for v in df[col].dropna()}) if col in df else []
    parts = [f"{'/'.join(map(str, prompts))} prompts per window"] if prompts else []
    if manifest.get("cycles"):
        parts.append(f"{manifest['cycles']} cycles configured")
    return f"Run setup: {', '.join(parts)}." if parts else ""


def _half_width(t: tuple[float, float, float]) -> float:
    """Half the CI's width in % of the mean (nan when undefined)."""
    mean, lo, hi = t
    return 100 * (hi - lo) / 2 / mean if all(map(math.isfinite, t)) and mean else math.nan


def _fmt_width(width: float) -> str:
    return f"±{width:.1f} %" if math.isfinite(width) else "-"


def _shown(root: Path) -> str:
    try:
        return str(root.resolve().relative_to(REPO))
    except ValueError:
        return str(root)


def render(root: Path, explanations: dict[str, str]) -> str:
    sections, ranking, widths = [], [], []
    for campaign_file in sorted(CAMPAIGNS.glob("*.yaml")):
        spec = yaml.safe_load(campaign_file.read_text())
        run = newest_run(root, spec["name"])
        if run is None:
            sections.append(f"### `{campaign_file.stem}`\n\n{spec.get('description', '')} "
                            f"{explanations.get(campaign_file.stem, '')}\n\n"
                            f"Not measured (no results under `{_shown(root / spec['name'])}`).\n")
            continue
        key, rows, metric, cond = analyse(campaign_file, run)
        effects = [r.effect for r in rows if r.effect is not None and math.isfinite(r.effect[0])]
        biggest = max((abs(e[0]) for e in effects), default=math.nan)
        measurable = any(lo > 0 or hi < 0 for _, lo, hi in effects)
        ranking.append((biggest if math.isfinite(biggest) else -1, campaign_file.stem, key, measurable, biggest))
        label = "adjusted" if metric == ENERGY else "raw (no baseline on this source)"
        lines = [f"### `{campaign_file.stem}`: {key}", "", explanations.get(campaign_file.stem, ""), "",
                 f"Run `{run.relative_to(root)}`; J per output token {label}. {cond}", "",
                 "| value | n | J/out-token (95 % CI) | CI | effect on J/token | effect on raw J/token | out tok/s | effect on tok/s |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            widths.append(_half_width(r.energy))
            lines.append(f"| {r.value} | {r.n} | {_fmt(r.energy[0])} [{_fmt(r.energy[1])}, {_fmt(r.energy[2])}] | "
                         f"{_fmt_width(_half_width(r.energy))} | {_pct(r.effect)} | {_pct(r.raw_effect) if r.effect else 'reference'} | "
                         f"{_fmt(r.speed[0])} | {_pct(r.speed_effect)} |")
        if not measurable and effects:
            lines += ["", "No measurable effect: every CI of the effect includes 0."]
        sections.append("\n".join(lines) + "\n")
    ranking.sort(reverse=True)
    rank_lines = ["| rank | parameter | largest effect on J/token | measurable |", "|---|---|---|---|"]
    for i, (_, stem, key, measurable, biggest) in enumerate(ranking, 1):
        size = f"{_fmt(biggest, 3)} %" if math.isfinite(biggest) else "not resolved (values missing from the results)"
        rank_lines.append(f"| {i} | `{stem}` ({key}) | {size} | {'yes' if measurable else 'no'} |")
    return "\n".join([
        "# What each parameter does to energy",
        "",
        "Generated by `python scripts/gen_parameter_impact.py RESULTS_ROOT` from the result files of the",
        f"campaigns in `energy_suites/campaigns/impact/` ({base_setup()}). Results: `{_shown(root)}`. Effects",
        "are relative to each campaign's first value (ratio of geometric means) with 95 % Welch t intervals on log",
        "values; each value's mean has a 95 % Student t interval over its cycles. Adjusted energy leaves out",
        "the GPU's idle power over the window, so it favours slow, host-bound settings; the raw column keeps it",
        "(what the GPU drew, idle included). Re-run",
        "the campaigns on your GPU (`pytest energy_suites/ --lem-campaign energy_suites/campaigns/impact/X.yaml`)",
        "and this script to get your hardware's page; `bash scripts/run_impact.sh RESULTS_ROOT BUDGET_S` runs every",
        "campaign within a wall-time budget and then this script (all 22 at 8 cycles: about an hour on one H200).",
        "",
        f"Campaigns measured: {len(ranking)} of {len(sections)}. "
        f"Per-value 95 % CIs of J per output token within ±3 %: {_within(widths, 3.0)} of {len(widths)}.",
        "",
        "## Ranking", "", *rank_lines, "", "## Per parameter", "", *sections, *not_campaigned()])


def _within(widths: list[float], limit: float) -> int:
    return sum(1 for w in widths if w <= limit)  # nan compares False


EXPLANATIONS = {
    "precision": "Weight/activation width sets memory traffic per token and which tensor-core path runs.",
    "batch_size": "More requests per forward turn memory-bound decoding towards compute-bound: fewer joules per token.",
    "attention": "The attention kernel decides memory traffic and fusion of attention (sdpa fuses; eager materialises scores).",
    "kv_cache": "A static cache preallocates the full length and attends over it every step; it pays off with CUDA graphs (see compile), not in eager mode.",
    "compile": "CUDA graphs (reduce-overhead) remove per-kernel launch overhead, the host cost of small decode steps.",
    "output_length": "Per-request costs (prefill, setup) spread over more output tokens; later steps attend over a longer cache.",
    "prompt_length": "Longer prompts cost more prefill per output token and a bigger KV cache for every decode step.",
    "beams": "Beam width multiplies sequences, KV cache and compute per output token.",
    "sampling": "Sampling adds softmax, top-p sorting and a random draw per step.",
    "quantization": "Quantised weights cut memory and weight traffic, but bitsandbytes dequantises in every matmul: at small models and batches that work can outweigh the traffic saved.",
    "streaming": "A streamer runs a host callback and synchronises the GPU after every step: the GPU waits on the host.",
    "repetition_penalty": "Gathers and rescales the logits of every generated token each step.",
    "no_repeat_ngram": "Bans repeated n-grams by scanning each sequence on the host every step.",
    "top_k": "Selects the k most likely tokens over the vocabulary each step before sampling.",
    "num_return_sequences": "Several samples per prompt decode like a larger batch sharing one prompt.",
    "guidance": "Classifier-free guidance runs a second, unconditional forward each step.",
    "use_cache": "Without a KV cache every step recomputes attention over the whole prefix.",
    "prefill_chunk": "Chunked prefill lowers peak memory at the cost of more, smaller kernel launches.",
    "output_scores": "Keeping scores copies a vocabulary-sized tensor per step and holds it to the end.",
    "compile_backend": "inductor fuses kernels and captures CUDA graphs; the cudagraphs backend only captures graphs.",
    "batching": "Sorting prompts by length puts similar lengths together: less padding computed and discarded.",
    "tf32": "TF32 (`high`) lets float32 matmuls use tensor cores instead of IEEE float32 (`highest`) CUDA cores.",
}


NOT_CAMPAIGNED = {
    "speculative decoding (assistant_model, prompt_lookup_num_tokens, assistant_early_exit, use_mtp and their settings)":
        "its saving is the draft acceptance rate, which depends on real weights and real text; random weights "
        "and synthetic prompts would measure only the drafting overhead. Compare on your model with a campaign of your own.",
    "quantized KV cache (transformers.quantized_cache)": "needs optimum-quanto or HQQ, which are not installed on the GPU image used here.",
    "offloaded KV caches, device_map / max_memory / offload_folder": "placement: offloading makes a run bound by host "
        "transfers, a different regime from the GPU-resident setup every other campaign holds fixed.",
    "use_kernels, experts_implementation": "need kernels from the Hub (no network on the GPU machine) or a mixture-of-experts model.",
    "length_penalty, early_stopping": "with output lengths held exact (min = max new tokens) they cannot change the work done.",
    "temperature, min_p": "covered by `sampling` and `top_k`: same-length sampling with a different filter.",
    "low_cpu_mem_usage": "acts on loading only, outside the measured window.",
    "revision, gguf_file, trust_remote_code": "change which model runs, not how it runs.",
    "tp_plan, continuous batching": "not typed settings (see docs/parameters.md).",
    "max_cache_len": "sizes a static cache; `kv_cache` and `compile` use the default (prompt + output length).",
    "output_logits": "the same cost as `output_scores` (campaigned): a vocabulary-sized tensor kept per step.",
    "bitsandbytes sub-settings (bnb_4bit_compute_dtype, bnb_4bit_quant_type, bnb_4bit_use_double_quant, llm_int8_threshold)":
        "variations of `quantization`'s 8-bit and nf4 points; add values to quantization.yaml to measure them.",
}


def not_campaigned() -> list[str]:
    """The section listing energy-relevant parameters without a campaign, and why."""
    return ["## Parameters without a campaign", "",
            *(f"- **{name}**: {why}" for name, why in NOT_CAMPAIGNED.items()), ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="results root holding impact-<parameter>/<run-id>/")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "parameter-impact.md")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"gen_parameter_impact: not a directory: {args.root}", file=sys.stderr)
        return 2
    args.out.write_text(render(args.root, EXPLANATIONS), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
