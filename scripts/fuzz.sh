#!/usr/bin/env bash
# Coverage-guided fuzzing (AFL++ through cargo-afl, stable Rust) of every parser that reads
# user files: config YAML/JSON, zarr v2/v3 and N5 metadata (with OME-NGFF attributes),
# DataSplit CSV, view-state JSON, torch pickle archives and safetensors headers.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]     (default 60 s, every target)
#
# Seed corpora are in scripts/fuzz/corpus/<target>; findings go to
# scripts/fuzz/out/<target>/default/crashes (not committed). Prints one line per target:
# executions, executions per second, crashes and hangs, and ends non-zero when a target
# found a crash. Every crash found becomes a unit test next to the parser.
set -euo pipefail
here="$(cd "$(dirname "$0")/fuzz" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config zarr_meta n5_meta datasplit_csv view_state torch_pickle safetensors)
fi

if ! command -v cargo-afl >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-afl (once)"
  cargo install cargo-afl --locked --quiet
fi
# AFL++ itself, built by cargo-afl into its data directory (once).
cargo afl config --build >/dev/null 2>&1 || true

cd "$here"
echo "[fuzz] building the targets with AFL++ instrumentation"
cargo afl build --release --quiet
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
export AFL_NO_AFFINITY=1
export LD_LIBRARY_PATH="$root/.venv/libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
for t in "${targets[@]}"; do
  out="$here/out/$t"
  rm -rf "$out"
  mkdir -p "$out"
  # The coverage map of a large Rust binary exceeds AFL++'s default; the target reports
  # the size it needs.
  AFL_MAP_SIZE=$(AFL_DUMP_MAP_SIZE=1 "$here/target/release/$t" 2>/dev/null | tail -1 || true)
  export AFL_MAP_SIZE
  # -V: stop after the given time; -t: a 2 s limit per execution counts as a hang.
  cargo afl fuzz -i "$here/corpus/$t" -o "$out" -V "$secs" -t 2000 \
    "$here/target/release/$t" > "$out/log.txt" 2>&1 || true
  stats="$out/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    echo "$t: the fuzzer did not start; see $out/log.txt"
    tail -20 "$out/log.txt"
    status=1
    continue
  fi
  get() { awk -F: -v k="$1" '$1 ~ "^"k" *$" {gsub(/ /, "", $2); print $2}' "$stats"; }
  crashes=$(get saved_crashes)
  hangs=$(get saved_hangs)
  printf '%s: %s executions (%s/s), %s crashes, %s hangs, %s paths\n' "$t" "$(get execs_done)" \
    "$(get execs_per_sec)" "$crashes" "$hangs" "$(get corpus_count)"
  if [ "${crashes:-0}" != "0" ]; then
    ls "$out/default/crashes" | sed "s|^|  $out/default/crashes/|"
    status=1
  fi
done
exit $status
