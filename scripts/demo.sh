#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), builds Segno and runs its main job on synthetic
# data: `segno demo` writes EM-like volumes with ground truth and the configs of an
# experiment, trains a small U-Net (validating every 100 iterations) and prints the scores.
# Then it shows what `array info` says about the data and round-trips DaCapo config files
# through a project (import → list → show → export → re-import elsewhere → compare).
# The demo project is ./demo-project unless SEGNO_DEMO_DIR names another directory.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
cargo build --quiet
segno="$root/target/debug/segno"
project=${SEGNO_DEMO_DIR:-$root/demo-project}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$segno" --help
step "$segno" info
step "$segno" demo --project "$project"
step "$segno" array info "$project/data/synthetic.zarr/raw"
step "$segno" array info "$project/data/synthetic.zarr/labels/crop3/mito"
step "$segno" config import assets/examples/configs --project "$project"
step "$segno" config list --project "$project"
step "$segno" config show tasks example_distance_task --project "$project"
step "$segno" config describe DistanceTaskConfig

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run=example_run_bench_132_f1
step "$segno" config export runs "$run" -o "$out/$run.yaml" --project "$project"
step "$segno" config validate "$out/$run.yaml"
step "$segno" config import "$out/$run.yaml" --project "$out/second-project"
if cmp -s <("$segno" config show runs "$run" --project "$project") \
          <("$segno" config show runs "$run" --project "$out/second-project"); then
  echo "round trip: the run reads back identically after export and re-import"
else
  echo "round trip: the run changed between the two projects" >&2
  exit 1
fi
printf '\nDemo project: %s\n' "$project"
