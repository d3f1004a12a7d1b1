#!/usr/bin/env bash
# Run impact campaigns one after another within a wall-time budget (GPU machine), then generate
# docs/parameter-impact.md from their results:
#   scripts/run_impact.sh ROOT BUDGET_S [NAME ...]     (NAME: a file stem in energy_suites/campaigns/impact/;
#                                                     none: every campaign there, in name order)
# A campaign is started only while at least 60 s of the budget are left; each runs under `timeout`
# with what is left, so the script ends within the budget; finished items are kept either way.
set -uo pipefail
root=${1:?results root}; budget=${2:?budget seconds}; shift 2
start=$(date +%s)
# Where the plugin is not installed (the GPU machine: the repository on PYTHONPATH), load it by name.
plugin=()
python3 -c 'import importlib.metadata as m, sys; sys.exit(not any(e.value.startswith("pytest_llenergy") for e in m.entry_points(group="pytest11")))' \
  || plugin=(-p pytest_llenergy.plugin)
if [ "$#" -eq 0 ]; then
  set -- $(for f in energy_suites/campaigns/impact/*.yaml; do basename "$f" .yaml; done)
fi
for name in "$@"; do
  left=$(( budget - ($(date +%s) - start) ))
  if [ "$left" -lt 60 ]; then echo "run_impact: budget spent; not started: $name"; continue; fi
  echo "run_impact: $name (${left}s left)"
  timeout --signal=INT "$left" python3 -m pytest "${plugin[@]}" energy_suites/test_inference.py -p no:randomly \
    --lem-campaign "energy_suites/campaigns/impact/$name.yaml" --lem-results-dir "$root" -q 2>&1 | tail -n 25
done
python3 scripts/gen_parameter_impact.py "$root" --out "${IMPACT_DOC:-docs/parameter-impact.md}"
