#!/usr/bin/env bash
# The GPU check in one command, for a GPU node that has only the CUDA driver, nvcc and a PyTorch
# install, plus the dependency bundle of scripts/make_gpu_bundle.sh (carried as .gpu_bundle):
# builds cnp against PyTorch's CUDA LibTorch, runs the CUDA tests, benchmarks the forward pass
# (XS bf16, L fp32/bf16) and the end-to-end sweep against the reference-shaped Python evaluation
# (bench/reference_eval.py) on the same GPU, and prints one table. Aim: under 8 minutes.
#
#   scripts/gpu_check.sh [BUNDLE_DIR] [WORK_DIR]     (defaults: .gpu_bundle, /tmp/cnp_gpu_check)
#
# Its log and the build's, tests' and benchmarks' logs go to $OUT when OUT is set (else WORK_DIR).
# CNP_GPU_CHECK_DEVICE=cpu is a dry run of every step on a machine without a GPU (LibTorch found
# the usual way), for checking the script itself before spending GPU time.
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-.gpu_bundle}
WORK=${2:-/tmp/cnp_gpu_check}
DEVICE=${CNP_GPU_CHECK_DEVICE:-cuda}
LOGS=${OUT:-$WORK}
LOG=$LOGS/gpu_check.log
mkdir -p "$WORK" "$LOGS"
exec > >(tee "$LOG") 2>&1
T_START=$(date +%s)
step() { echo; echo "=== $(date +%T) (+$(($(date +%s) - T_START)) s) $*"; }
fail() { echo "gpu_check: FAILED: $*"; exit 1; }
TABLE=()
row() { TABLE+=("$(printf '%-44s %s' "$1" "$2")"); }

[ -d "$BUNDLE/usr" ] || fail "no bundle at $BUNDLE (scripts/make_gpu_bundle.sh makes it)"
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh "$BUNDLE"
export PATH="/usr/local/cuda/bin:$PATH"
PY=${PYTHON:-python3}
B=$CNP_BUNDLE/usr
LIB=$B/lib/x86_64-linux-gnu

step "machine"
if [ "$DEVICE" = cpu ]; then
  GPU="no GPU (dry run)"
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || fail "no GPU"
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
fi
g++ --version | head -1; nvcc --version | tail -2; cmake --version | head -1
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
NPROC=$(nproc)
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' || fail "no torch"
TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
[ "$DEVICE" = cpu ] && TORCH_PREFIX=""  # Debian's LibTorch is found where it is installed
NCCL_HOME=$("$PY" -c 'import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null)
CRYPTO=$(ls /usr/lib/x86_64-linux-gnu/libcrypto.so.3 /lib/x86_64-linux-gnu/libcrypto.so.3 2>/dev/null | head -1)
NCCL_FLAGS=(-DCNP_WITH_NCCL=OFF)
if [ -n "$NCCL_HOME" ] && [ -f "$NCCL_HOME/include/nccl.h" ]; then
  NCCL_FLAGS=(-DCNP_WITH_NCCL=ON -DCNP_NCCL_INCLUDE="$NCCL_HOME/include"
              -DCNP_NCCL_LIB="$(ls "$NCCL_HOME"/lib/libnccl.so* | head -1)")
fi

step "configure + build (LibTorch from ${TORCH_PREFIX:-the system})"
GENERATOR=(-G Ninja)
command -v ninja > /dev/null || GENERATOR=()
cmake -S . -B "$WORK/build" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release ${CNP_GPU_CHECK_CMAKE_ARGS:-} \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$B" -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenCV=ON -DCNP_REQUIRE_CAIRO=OFF \
  -DHDF5_USE_STATIC_LIBRARIES=ON -DHDF5_C_INCLUDE_DIR="$B/include/hdf5/serial" \
  -DHDF5_hdf5_LIBRARY_RELEASE="$LIB/hdf5/serial/libhdf5.a" \
  -DMPI_CXX_COMPILER="$B/bin/mpicxx" -DMPI_C_COMPILER="$B/bin/mpicc" \
  ${CRYPTO:+-DOPENSSL_CRYPTO_LIBRARY="$CRYPTO"} "${NCCL_FLAGS[@]}" \
  > "$LOGS/configure.log" 2>&1 || { tail -60 "$LOGS/configure.log"; fail "configure"; }
grep -E "^-- (cnp|Found Torch|OpenCV|Caffe2|CUDA)" "$LOGS/configure.log" | head -20
TESTS=(${CNP_GPU_TEST_TARGETS:-model_decoder_cuda model_cuda_parity model_parity})
TARGETS=(cnp cnp_sweep "${TESTS[@]}")
# Keep going past a failing file so one run shows every compile error.
KEEP_GOING=(-k 0)
[ ${#GENERATOR[@]} -eq 0 ] && KEEP_GOING=(-k)
if ! cmake --build "$WORK/build" -j"$NPROC" --target "${TARGETS[@]}" -- "${KEEP_GOING[@]}" \
    > "$LOGS/build.log" 2>&1; then
  grep -E -A3 'error|Error' "$LOGS/build.log" | head -80
  row "build ($DEVICE LibTorch, bundle)" "FAILED (what built still runs)"
else
  row "build ($DEVICE LibTorch, bundle)" "ok ($(($(date +%s) - T_START)) s since start)"
fi
CNP=$WORK/build/apps/cnp
SWEEP=$WORK/build/apps/cnp_sweep
[ -x "$CNP" ] && [ -x "$SWEEP" ] || fail "build: cnp or cnp_sweep did not build"

step "CUDA tests"
for t in "${TESTS[@]}"; do
  if (cd "$WORK/build" && ctest -R "^$t\$" --output-on-failure --timeout 180) >> "$LOGS/tests.log" 2>&1; then
    row "ctest $t" "passed"
  else
    tail -30 "$LOGS/tests.log"; row "ctest $t" "FAILED"
  fi
done

step "forward throughput (cnp bench, flip off)"
bench() {  # variant precision batch [extra cnp bench options]
  local json v=$1 p=$2 b=$3
  shift 3
  json=$(timeout 120 "$CNP" bench --variant "$v" --device "$DEVICE" --precision "$p" --batch "$b" \
         --seconds "${CNP_GPU_CHECK_BENCH_SECONDS:-5}" --json "$@" 2>> "$LOGS/bench.log") ||
    { row "bench $v $p batch $b $*" "FAILED"; return; }
  echo "$json" >> "$LOGS/bench.log"
  row "bench $v $p batch $b $* (img/s)" "$(echo "$json" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); s=d["stages"]; print(round(d["images_per_second"]), "backbone/head/decode ms", round(s["backbone_ms"],2), round(s["head_ms"],2), round(s["decode_ms"],2))')"
}
B_BIG=${CNP_GPU_CHECK_BATCH:-256}
bench XS bf16 "$B_BIG"
bench XS fp16 "$B_BIG"
bench XS fp32 "$B_BIG"
bench XS fp32 "$B_BIG" --no-optimize
bench L bf16 "$B_BIG"
bench L fp16 "$B_BIG"
bench L fp32 "$B_BIG"
bench L fp32 "$B_BIG" --no-optimize

step "end-to-end sweep vs reference-shaped Python evaluation (same GPU)"
DATA=$WORK/data
[ -d "$DATA/annotations" ] || "$CNP" synth "$DATA" --kept-frames 16 --variants XS L --epochs 70 \
  > "$WORK/synth.log" 2>&1 || fail "cnp synth"
EVERY=${CNP_GPU_CHECK_SAMPLE_EVERY:-64}
for v in ${CNP_GPU_CHECK_E2E_VARIANTS:-XS L}; do
  cat > "$WORK/e2e_$v.yaml" <<YAML
name: e2e_$v
output: $WORK/results_$v
dataset: {root: $DATA, bbox: gt, sample_every: $EVERY}
model: {checkpoint: "$DATA/checkpoints/{variant}/snapshot_{epoch}.pth.tar"}
sweep: {variants: [$v], epochs: [70], protocols: [2], flip: [true]}
runtime: {device: $DEVICE, precision: fp32, batch_size: 64}
YAML
  rm -rf "$WORK/results_$v"
  t0=$(date +%s.%N)
  timeout 240 "$SWEEP" "$WORK/e2e_$v.yaml" >> "$LOGS/sweep.log" 2>&1 || { tail "$LOGS/sweep.log"; row "sweep $v" "FAILED"; continue; }
  t1=$(date +%s.%N)
  ref=$(timeout 240 "$PY" bench/reference_eval.py --root "$DATA" --variant "$v" --flip --device "$DEVICE" \
        --checkpoint "$DATA/checkpoints/$v/snapshot_70.pth.tar" --workers "$NPROC" --sample-every "$EVERY") ||
        { row "reference $v" "FAILED"; continue; }
  echo "$ref"
  "$PY" - "$WORK/results_$v" "$ref" "$t0" "$t1" <<'PYEOF' | while IFS='|' read -r k val; do row "$k" "$val"; done
import glob, json, sys
out, ref, t0, t1 = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
job = json.load(open(glob.glob(out + "/jobs/*.json")[0]))
ours = job["metrics"]["mpjpe"]; cnp_s = t1 - t0
v = job["job"]["variant"]
print(f"e2e {v}: cnp_sweep / reference seconds|{cnp_s:.1f} / {ref['seconds']:.1f} = {ref['seconds'] / cnp_s:.2f}x")
print(f"e2e {v}: MPJPE cnp vs reference (mm)|{ours:.3f} vs {ref['mpjpe']:.3f} (diff {abs(ours - ref['mpjpe']):.4f})")
PYEOF
  [ -f "$WORK/results_$v/run_summary.json" ] && "$PY" -c "
import json,sys; t=json.load(open('$WORK/results_$v/run_summary.json')).get('timing',{})
for r in t.get('per_rank',[]): print('timing', r)" || true
done

echo
echo "=== gpu_check on $GPU, $CPU ($NPROC cores)"
printf '%s\n' "${TABLE[@]}"
