#!/usr/bin/env bash
# Installs everything Segno needs to build, test and run, idempotently:
#   - Debian packages for software Vulkan rendering (GUI tests) and a headless X server;
#   - a project-local Python venv `.venv` holding the libtorch that `tch` links against
#     (PyPI's torch 2.13.0 wheel), exposed at the stable path `.venv/libtorch`;
#   - a venv `.venv-zarr` with zarr-python, which interop tests and benchmarks compare against.
# Safe to run again: finished steps are detected and skipped.
# Environment: SEGNO_TORCH=cpu|cuda forces the wheel flavour (default: cuda when
# `nvidia-smi` sees a GPU, cpu otherwise). SEGNO_SKIP_APT=1 skips the Debian packages.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

TORCH_VERSION=2.13.0
say() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------
apt_packages=(mesa-vulkan-drivers libvulkan1 xvfb xauth)
if [ "${SEGNO_SKIP_APT:-0}" != 1 ] && command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
      if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        say "missing Debian packages: ${missing[*]} (run this script as root or install them yourself)"
        exit 1
      fi
    fi
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "Debian packages present"
  fi
fi

# --- libtorch from PyPI ----------------------------------------------------------------
flavour=${SEGNO_TORCH:-}
if [ -z "$flavour" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then flavour=cuda; else flavour=cpu; fi
fi
case "$flavour" in cpu|cuda) ;; *) say "SEGNO_TORCH must be cpu or cuda, got '$flavour'"; exit 1;; esac

stamp=".venv/.segno-torch"
want="torch==$TORCH_VERSION $flavour"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f .venv/libtorch/lib/libtorch_cpu.so ]; then
  say "libtorch present ($want)"
else
  python=${PYTHON:-python3}
  command -v "$python" >/dev/null 2>&1 || { say "python3 not found: install Python 3.9 or newer"; exit 1; }
  [ -x .venv/bin/python ] || { say "creating .venv"; "$python" -m venv .venv; }
  say "installing $want into .venv (about 1.2 GB for cpu, 4.7 GB for cuda)"
  if [ "$flavour" = cpu ]; then
    # libtorch_cpu.so needs only the CUDA runtime and CUPTI shared objects, not the rest of
    # torch's Python dependencies.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
      "torch==$TORCH_VERSION" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
  else
    .venv/bin/python -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
  fi
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  [ -f "$site/torch/lib/libtorch_cpu.so" ] || { say "torch wheel has no lib/libtorch_cpu.so under $site/torch"; exit 1; }
  ln -sfn "$site/torch" .venv/libtorch
  echo "$want" > "$stamp"
  # torch-sys caches the libtorch it was built against: force a rebuild after a change.
  rm -rf target/*/build/torch-sys-* 2>/dev/null || true
fi

# --- zarr-python (interop tests and array benchmarks compare against it) ---------------
if [ "${SEGNO_SKIP_ZARR_PYTHON:-0}" != 1 ]; then
  if ! bash scripts/zarr-python-venv.sh >/dev/null; then
    say "zarr-python could not be installed into .venv-zarr: the zarr-python interop tests will be skipped"
  fi
fi
say "ready: LIBTORCH=$root/.venv/libtorch"
