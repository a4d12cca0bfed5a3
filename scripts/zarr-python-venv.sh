#!/usr/bin/env bash
# Creates, idempotently, the Python venv `.venv-zarr` at the repository root holding
# zarr-python (>=3.1,<3.2), numcodecs and numpy from PyPI, for the zarr-python benchmark
# and read helpers in this folder (array benchmarks and interop tests). When the venv already exists and imports them at the
# right versions, nothing is done.
# The interpreter is $PYTHON when set, else python3, and must be Python 3.11 or newer.
# Messages go to stderr; the last line on stdout is the venv's python path.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv-zarr"
vpy="$venv/bin/python"
say() { printf '[zarr-python-venv] %s\n' "$*" >&2; }

check='
import sys
import numpy, numcodecs, zarr
major, minor = (int(p) for p in zarr.__version__.split(".")[:2])
sys.exit(0 if (major, minor) == (3, 1) else 1)
'

if [ -x "$vpy" ] && "$vpy" -c "$check" >/dev/null 2>&1; then
  say "venv ready: $venv"
  echo "$vpy"
  exit 0
fi

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  say "'$python' not found: install Python 3.11 or newer (or set PYTHON)"
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  say "Python 3.11 or newer is needed (zarr-python 3.1); '$python' is $("$python" -c 'import sys; print(sys.version.split()[0])')"
  exit 1
fi

if [ ! -x "$vpy" ] || ! "$vpy" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  say "creating $venv with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
say "installing zarr>=3.1,<3.2, numcodecs and numpy into $venv"
"$vpy" -m pip install -q --disable-pip-version-check 'zarr>=3.1,<3.2' numcodecs numpy >&2
if ! "$vpy" -c "$check" >&2; then
  say "the venv at $venv does not import zarr 3.1, numcodecs and numpy"
  exit 1
fi
say "installed: $("$vpy" -c 'import numpy, numcodecs, zarr; print("zarr", zarr.__version__, "numcodecs", numcodecs.__version__, "numpy", numpy.__version__)')"
echo "$vpy"
