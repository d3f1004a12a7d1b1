#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the modules whose correctness the numbers rest on, one module at a
# time, each against the tests that exercise it (a narrow selection: mutation runs are slow).
#
#   bash scripts/ci_mutation.sh TARGET...     TARGET: ordering config stats bootstrap measurement edges baseline
#   uncertainty warmup compare budgets gates first-cycle phases baseline-precision thermal search vllm-stamps
#   (or all), or a part of
#   config/: config-core config-campaign config-experiment config-measurement config-backends
#   tox -e mutation -- ordering config
#
# Works in a throwaway copy (the tree is never touched), prints killed/total per target and the
# surviving mutants (`mutmut show NAME` there shows each diff), and exits 1 when a target kills
# fewer than LEM_MUTATION_MIN (default 85) percent. Not part of .ci/run: minutes per module.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
MIN=${LEM_MUTATION_MIN:-85}
KEEP=${LEM_MUTATION_DIR:-}
export HF_HUB_OFFLINE=1
# mutmut forks each mutant from a parent whose tests already ran torch: GNU OpenMP's thread pool does not
# survive a fork, and a child that runs torch again waits at its barrier forever (no CPU, so mutmut's CPU-time
# limit never fires). One OpenMP thread starts no pool.
export OMP_NUM_THREADS=1
unset PYTHONPATH  # the mutated copy must be the pytest_llenergy that the tests import

source_of() {
  case $1 in
    ordering) echo "pytest_llenergy/config/ordering.py" ;;
    config) echo "pytest_llenergy/config/" ;;
    config-core) echo "pytest_llenergy/config/units.py,pytest_llenergy/config/budgets.py,pytest_llenergy/config/paths.py,pytest_llenergy/config/ids.py" ;;
    config-campaign) echo "pytest_llenergy/config/campaign.py,pytest_llenergy/config/plan.py,pytest_llenergy/config/loading.py,pytest_llenergy/config/errors.py" ;;
    config-experiment) echo "pytest_llenergy/config/experiment.py,pytest_llenergy/config/fields.py,pytest_llenergy/config/sections.py,pytest_llenergy/config/registry.py,pytest_llenergy/config/reuse.py,pytest_llenergy/config/files.py" ;;
    config-measurement) echo "pytest_llenergy/config/measurement.py,pytest_llenergy/config/phases.py,pytest_llenergy/config/timeline.py,pytest_llenergy/config/carbon.py,pytest_llenergy/config/dispatch.py,pytest_llenergy/config/sharding.py,pytest_llenergy/config/reference.py" ;;
    config-backends) echo "pytest_llenergy/config/transformers_section.py,pytest_llenergy/config/vllm_section.py,pytest_llenergy/config/tensorrt_section.py" ;;
    stats) echo "pytest_llenergy/results/stats.py" ;;
    bootstrap) echo "pytest_llenergy/results/bootstrap.py" ;;
    measurement) echo "pytest_llenergy/energy/measurement.py" ;;
    edges) echo "pytest_llenergy/energy/edges.py" ;;
    baseline) echo "pytest_llenergy/energy/baseline.py" ;;
    uncertainty) echo "pytest_llenergy/energy/uncertainty.py" ;;
    warmup) echo "pytest_llenergy/energy/warmup.py" ;;
    compare) echo "pytest_llenergy/results/compare.py" ;;
    budgets) echo "pytest_llenergy/results/budgets.py" ;;
    gates) echo "pytest_llenergy/plugin/gates/" ;;
    first-cycle) echo "pytest_llenergy/results/first_cycle.py" ;;
    baseline-precision) echo "pytest_llenergy/energy/baseline_precision.py" ;;
    thermal) echo "pytest_llenergy/energy/thermal.py" ;;
    phases) echo "pytest_llenergy/energy/phase_average.py,pytest_llenergy/energy/phase_fit.py,pytest_llenergy/energy/attribution.py" ;;
    search) echo "pytest_llenergy/results/search.py,pytest_llenergy/results/search_variance.py,pytest_llenergy/results/search_data.py,pytest_llenergy/config/search.py" ;;
    vllm-stamps) echo "pytest_llenergy/backends/vllm/phases.py,pytest_llenergy/backends/vllm/metrics.py" ;;
    *) return 1 ;;
  esac
}
tests_of() {  # the fast tests that exercise each target
  case $1 in
    ordering) echo "tests/test_ordering.py" ;;
    config) echo "tests/config tests/backends/test_section.py tests/backends/test_introspection.py" ;;
    config-core) echo "tests/config" ;;
    config-campaign|config-experiment|config-measurement) echo "tests/config" ;;
    config-backends) echo "tests/config tests/backends/test_section.py tests/backends/test_introspection.py tests/backends_vllm/test_vllm_parameters.py" ;;
    stats) echo "tests/results/test_stats.py tests/results/test_stats_intervals.py tests/results/test_width.py" ;;
    bootstrap) echo "tests/results/test_bootstrap.py tests/results/test_stats.py" ;;
    measurement) echo "tests/energy/test_measurement.py tests/energy/test_meter.py" ;;
    edges) echo "tests/energy/test_edges.py tests/energy/test_edges_worked.py tests/energy/test_measurement.py" ;;
    baseline) echo "tests/energy/test_baseline.py tests/energy/test_baseline_adaptive.py tests/energy/test_baseline_steps.py tests/energy/test_baseline_tracking.py" ;;
    uncertainty) echo "tests/energy/test_uncertainty.py tests/energy/test_measurement.py" ;;
    warmup) echo "tests/energy/test_warmup_thermal.py" ;;
    compare) echo "tests/results/test_compare.py tests/results/test_gate_boundaries.py" ;;
    budgets) echo "tests/results/test_gate_boundaries.py tests/config/test_units_budgets.py" ;;
    gates) echo "tests/test_gate_rules.py" ;;  # test_gates.py runs whole campaigns: minutes per mutant
    first-cycle) echo "tests/results/test_first_cycle.py" ;;
    baseline-precision) echo "tests/energy/test_baseline_adaptive.py tests/energy/test_baseline_steps.py tests/energy/test_baseline_precision_edges.py" ;;
    thermal) echo "tests/energy/test_warmup_thermal.py tests/energy/test_thermal_edges.py" ;;
    phases) echo "tests/energy/test_phase_edges.py tests/energy/test_phase_fit.py tests/energy/test_phases.py" ;;
    search) echo "tests/results/test_search_race.py tests/results/test_search_answer.py tests/results/test_search_edges.py tests/config/test_search_section.py tests/test_search.py" ;;
    vllm-stamps) echo "tests/backends_vllm/test_vllm_stamps.py tests/backends_vllm/test_vllm_serving.py tests/backends_vllm/test_vllm_session.py" ;;
  esac
}

targets=("$@")
[ "${#targets[@]}" = 0 ] || [ "${targets[0]}" = all ] && targets=(ordering config-core config-campaign config-experiment config-measurement config-backends stats bootstrap measurement
  edges baseline uncertainty warmup compare budgets gates first-cycle phases
  baseline-precision thermal search vllm-stamps)
status=0
for target in "${targets[@]}"; do
  src=$(source_of "$target") || { echo "ci_mutation: unknown target $target"; exit 2; }
  selection=""
  for t in $(tests_of "$target"); do [ -e "$t" ] && selection="$selection $t"; done
  work=${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/lem-mutation.XXXXXX")}/$target
  rm -rf "$work" && mkdir -p "$work"
  cp -r pytest_llenergy tests docs scripts energy_suites pyproject.toml "$work"/  # docs, scripts: generated-doc checks; energy_suites: its tests
  {  # list values: one per line
    echo "[mutmut]"
    echo "source_paths="; echo "    pytest_llenergy"  # the whole package is copied; only these files mutate
    echo "only_mutate="; tr ',' '\n' <<<"$src" | sed -e 's/^/    /' -e 's#/$#/*#'
    printf "also_copy=\n    docs\n    scripts\n    energy_suites\n"  # mutmut runs in mutants/: tests read these
    printf 'pytest_add_cli_args=\n    -p\n    no:cacheprovider\n    -q\n    -x\n'
    echo "pytest_add_cli_args_test_selection="; for t in $selection; do echo "    $t"; done
  } > "$work/setup.cfg"
  echo "== ci_mutation: $target: mutating $src against$selection"
  started=$(date +%s)
  (cd "$work" && mutmut run >run.log 2>&1; mutmut export-cicd-stats >/dev/null 2>&1)
  stats="$work/mutants/mutmut-cicd-stats.json"
  if [ ! -f "$stats" ]; then
    echo "ci_mutation: $target: mutmut did not finish (log: $work/run.log)"; tail -n 20 "$work/run.log"; status=1; continue
  fi
  python - "$stats" "$target" "$MIN" "$(( $(date +%s) - started ))" <<'PY' || status=1
import json, sys
s = json.load(open(sys.argv[1])); target, minimum, secs = sys.argv[2], float(sys.argv[3]), sys.argv[4]
judged = s["total"] - s["skipped"]
score = 100.0 * (s["killed"] + s["timeout"]) / judged if judged else 0.0
print(f"ci_mutation: {target}: killed {s['killed'] + s['timeout']}/{judged} = {score:.1f} % "
      f"(survived {s['survived']}, no tests {s['no_tests']}, suspicious {s['suspicious']}) in {secs} s")
sys.exit(0 if score >= minimum else 1)
PY
  (cd "$work" && mutmut results 2>/dev/null | grep -E "survived|no tests" | sed "s/^/ci_mutation: $target: /" | head -50)
done
exit "$status"
