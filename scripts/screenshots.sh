#!/usr/bin/env bash
# Takes the README's screenshots of the app on the demo project, one per section, in a
# virtual X display (xvfb-run, installed by scripts/setup.sh).
#   scripts/screenshots.sh [DEMO_DIR]
# DEMO_DIR (default target/screenshot-demo) gets the demo project first if it has none
# (`segno demo --no-gui`, a few minutes). SEGNO picks the binary (default: the release
# build, built when missing). The PNGs go to assets/screenshots/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$root/target/screenshot-demo}
segno=${SEGNO:-$root/target/release/segno}
out=$root/assets/screenshots
size=1280x800
if [ ! -x "$segno" ]; then
  (cd "$root" && cargo build --release --bin segno)
fi
if [ ! -f "$dir/demo.view.json" ]; then
  "$segno" demo --no-gui -p "$dir"
fi
mkdir -p "$out"
shot() {
  xvfb-run -a -s "-screen 0 ${size}x24 -dpi 96" "$segno" gui "$dir" --size "$size" "$@"
}
for section in configs datasplit runs; do
  shot --section "$section" --screenshot "$out/$section.png"
done
shot --view "$dir/demo.view.json" --screenshot "$out/viewer.png"
ls -l "$out"
