#!/usr/bin/env bash
# Checks that DaCapo 0.3.5 reads the config files Segno writes: Segno encodes one sample of
# every config type (the samples of tests/config_roundtrip.rs) and DaCapo's own converter
# structures each of them. Installs DaCapo into its own venv on first use (~5 GB, a few
# minutes): DACAPO_VENV overrides the location (default ~/segno-peer/.venv).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${DACAPO_VENV:-$HOME/segno-peer/.venv}
if ! "$venv/bin/python" -c 'import dacapo' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q dacapo-ml==0.3.5 torch==2.13.0 daisy==1.2.3 universal_pathlib==0.2.6
fi
bash scripts/setup.sh
out=$(mktemp -d)
SEGNO_EXPORT_SAMPLES_TO="$out" cargo test --quiet --test config_roundtrip export_samples_for_dacapo
"$venv/bin/python" scripts/dacapo_interop.py "$out"
rm -rf "$out"
