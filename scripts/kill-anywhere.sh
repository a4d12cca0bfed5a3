#!/usr/bin/env bash
# Kills `segno train` and `segno predict` with SIGKILL at many random moments, resuming
# each time, and checks that they end exactly as uninterrupted runs do
# (tests/kill_anywhere.rs). CI runs it with 20 kills; by hand, give more:
#   scripts/kill-anywhere.sh 200 [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export SEGNO_KILLS="${1:-100}"
export SEGNO_KILL_SEED="${2:-$RANDOM$RANDOM}"
echo "kills: $SEGNO_KILLS, seed: $SEGNO_KILL_SEED"
cargo nextest run --test kill_anywhere --no-capture
