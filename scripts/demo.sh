#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), builds Segno and walks through what it does so
# far: the command line, the compute devices, and a round trip of DaCapo config files
# through a project (import → list → show → export → validate).
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
step "$segno" config import assets/examples/configs --project "$project"
step "$segno" config list --project "$project"
step "$segno" config show tasks example_distance_task --project "$project"
out=$(mktemp -d)
step "$segno" config export runs example_run_bench_132_f1 -o "$out/run.yaml" --project "$project"
step "$segno" config validate "$out/run.yaml"
if cmp -s "$out/run.yaml" "$project/configs/runs/example_run_bench_132_f1.yaml"; then
  echo "round trip: the exported run is byte-identical to the stored one"
else
  echo "round trip: the exported run differs from the stored one" >&2
  exit 1
fi
rm -rf "$out"
printf '\nDemo project: %s\n' "$project"
