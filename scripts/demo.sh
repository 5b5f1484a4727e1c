#!/usr/bin/env bash
# `make demo`: synthetic Human3.6M + checkpoints (once), the MPI sweep of
# configs/demo.yaml on 2 ranks, the second epoch of XS by override (resuming the
# rest), then the comparison of everything in results/demo.
# Env: BUILD (build directory, default build), MPIRUN (default "mpirun --oversubscribe").
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MPIRUN=${MPIRUN:-mpirun --oversubscribe}
CNP="$BUILD/apps/cnp"
SWEEP="$BUILD/apps/cnp_sweep"
for exe in "$CNP" "$SWEEP"; do
  [ -x "$exe" ] || { echo "demo: $exe not built (run make build)" >&2; exit 1; }
done

if [ ! -d demo/data/annotations ] || [ ! -f demo/data/checkpoints/L/snapshot_69.pth.tar ]; then
  echo "== cnp synth demo/data"
  "$CNP" synth demo/data --variants XS,S,M,L --epochs 69,70
fi

echo "== $MPIRUN -np 2 cnp_sweep configs/demo.yaml (all variants, epoch 70)"
$MPIRUN -np 2 "$SWEEP" configs/demo.yaml

echo "== second epoch of XS: --set sweep.variants=[XS] --set sweep.epochs=[69,70] (epoch 70 resumes)"
$MPIRUN -np 2 "$SWEEP" configs/demo.yaml --set 'sweep.variants=[XS]' --set 'sweep.epochs=[69,70]'

echo "== cnp compare results/demo (tables, paired bootstrap intervals and pictures from samples.h5)"
"$CNP" compare results/demo --output results/demo >/dev/null
cat results/demo/comparison.md
echo "== results in results/demo (jobs/, predictions/, samples.h5, run_summary.json, logs/)"
echo "== report:   $PWD/results/demo/comparison.html (open in a browser; also comparison.md, comparison.json)"
for picture in epochs actions joints; do
  echo "== picture:  $PWD/results/demo/$picture.svg ($picture.png beside it)"
done
