#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh) and runs the whole test suite.
# Uses cargo-nextest when installed (each test in its own process, as libtorch's global
# state needs); falls back to `cargo test`. Extra arguments go to the test runner.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doc tests; run them first so nextest's summary closes the output.
  cargo test --doc --quiet
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
