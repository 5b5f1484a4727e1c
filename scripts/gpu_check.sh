#!/usr/bin/env bash
# The GPU check in one command, for a GPU node that has only the CUDA driver, nvcc and a PyTorch
# install, plus the dependency bundle of scripts/make_gpu_bundle.sh (carried as .gpu_bundle):
# builds cnp against PyTorch's CUDA LibTorch, runs the CUDA tests, benchmarks the forward pass
# (XS bf16, L fp32/bf16) and the end-to-end sweep against the reference-shaped Python evaluation
# (bench/reference_eval.py) on the same GPU, and prints one table. Aim: under 8 minutes.
# CNP_GPU_CHECK_CPU_ENGINE=1 adds bench/engine_vs_reference.py on the node's CPU (two pinned
# cores, native and AVX2; about 3 more minutes); =only builds cnp alone and runs just that.
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
  -DCNP_PYTHON="$(command -v "$PY")" \
  ${CRYPTO:+-DOPENSSL_CRYPTO_LIBRARY="$CRYPTO"} "${NCCL_FLAGS[@]}" \
  > "$WORK/configure.log" 2>&1 || { tail -60 "$WORK/configure.log"; fail "configure"; }
grep -E "^-- (cnp|Found Torch|OpenCV|Caffe2|CUDA)" "$WORK/configure.log" | head -20
TESTS=(${CNP_GPU_TEST_TARGETS:-model_decoder_cuda model_cuda_parity model_parity})
TARGETS=(cnp cnp_sweep bench_datapath bench_crop_dump bench_cpu_peak "${TESTS[@]}")
ENGINE_ONLY=$([ "${CNP_GPU_CHECK_CPU_ENGINE:-}" = only ] && echo 1)
[ -n "$ENGINE_ONLY" ] && TARGETS=(cnp bench_cpu_peak)
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
[ -x "$CNP" ] || fail "build: cnp did not build"

# Every GPU step, skipped with CNP_GPU_CHECK_CPU_ENGINE=only.
gpu_steps() {
[ -x "$SWEEP" ] || fail "build: cnp_sweep did not build"

step "CUDA tests"
for t in "${TESTS[@]}"; do
  if (cd "$WORK/build" && ctest -R "^$t\$" -V --timeout 180) > "$WORK/test.log" 2>&1; then
    # ctest counts a test that reported itself skipped (exit 77) as passed
    if grep -q "Skipped" "$WORK/test.log"; then row "ctest $t" "SKIPPED"; else row "ctest $t" "passed"; fi
  else
    tail -30 "$WORK/test.log"; row "ctest $t" "FAILED"
  fi
  cat "$WORK/test.log" >> "$LOGS/tests.log"
done
grep -h "\[ cuda \]" "$LOGS/tests.log" || true

step "forward throughput (cnp bench, flip off)"
bench() {  # variant precision batch [extra cnp bench options]
  local json v=$1 p=$2 b=$3
  shift 3
  json=$(timeout 120 "$CNP" bench --variant "$v" --device "$DEVICE" --precision "$p" --batch "$b" \
         --seconds "${CNP_GPU_CHECK_BENCH_SECONDS:-5}" --json "$@" 2>> "$LOGS/bench.log") ||
    { row "bench $v $p batch $b $*" "FAILED"; return; }
  echo "$json" >> "$LOGS/bench.log"
  row "bench $v $p batch $b $* (img/s)" "$(echo "$json" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); s=d["stages"]; print(round(d["images_per_second"]), d["input"], "input/backbone/head/decode ms", round(s["input_ms"],2), round(s["backbone_ms"],2), round(s["head_ms"],2), round(s["decode_ms"],2), "staging ms", d["staging_ms"] and round(d["staging_ms"],2))')"
}
B_BIG=${CNP_GPU_CHECK_BATCH:-256}
if [ -z "${CNP_GPU_CHECK_SKIP_BENCH:-}" ]; then
bench XS bf16 "$B_BIG"
bench XS fp16 "$B_BIG"
bench XS fp32 "$B_BIG"
bench XS fp32 "$B_BIG" --no-optimize
bench L bf16 "$B_BIG"
bench L fp16 "$B_BIG"
bench L fp32 "$B_BIG"
bench L fp32 "$B_BIG" --no-optimize
fi

step "data path per core, and the staged input step on the device (bench_datapath)"
# JPEG -> crop, HDF5 cache -> crop and CPU normalisation per CPU second, then what this node's
# cores feed; last, stage_crops + prepare_staged (pinned copy, transfer, normalise, flip) on the
# device, the step the forward of the batch before hides.
if timeout 180 "$WORK/build/bench/bench_datapath" "$WORK/datapath" "$NPROC" "$DEVICE" \
    > "$LOGS/datapath.log" 2>&1; then
  cat "$LOGS/datapath.log"
  while IFS='|' read -r k val; do row "$k" "$val"; done < <(sed -n \
    -e 's/^ *\(JPEG -> uint8 crop\): *\(.*\)/data path per core: \1|\2/p' \
    -e 's/^ *\(HDF5 cache -> uint8 crop\): *\(.*\)/data path per core: \1|\2/p' \
    -e 's/^ *from the cache: \(.*\)/data path node from the cache|\1/p' \
    -e 's/^uint8 -> normalised + flipped on \([^ ]*\).*: \(.*\)/uint8 -> normalised + flipped on \1|\2/p' \
    "$LOGS/datapath.log")
else
  tail -40 "$LOGS/datapath.log"; row "bench_datapath" "FAILED (stack in datapath.log)"
  # Which part fails: the same without the device step, then under gdb where the node has it.
  timeout 180 "$WORK/build/bench/bench_datapath" "$WORK/datapath" "$NPROC" >> "$LOGS/datapath.log" 2>&1
  row "bench_datapath without the device step: exit code" "$?"
  if command -v gdb > /dev/null; then
    timeout 120 gdb -batch -ex run -ex bt --args "$WORK/build/bench/bench_datapath" \
      "$WORK/datapath" "$NPROC" "$DEVICE" >> "$LOGS/datapath.log" 2>&1
    grep -A30 "received signal" "$LOGS/datapath.log"
  else
    row "gdb" "not on this node"
  fi
fi

step "end-to-end sweep vs reference-shaped Python evaluation (same GPU)"
# A sweep of eight checkpoints (XS, S, M, L, two epochs each, protocol 2, flip test) against the
# reference evaluation run once per checkpoint, as it is used; the same numbers to 0.01 mm.
DATA=$WORK/data
VARIANTS=(${CNP_GPU_CHECK_E2E_VARIANTS:-XS S M L})
EPOCHS=(69 70)
EVERY=${CNP_GPU_CHECK_SAMPLE_EVERY:-64}
[ -d "$DATA/annotations" ] || timeout 300 "$CNP" synth "$DATA" --kept-frames 16 \
  --variants "${VARIANTS[@]}" --epochs "${EPOCHS[@]}" > "$WORK/synth.log" 2>&1 || { tail "$WORK/synth.log"; fail "cnp synth"; }
join() { local IFS=,; echo "$*"; }
cat > "$WORK/e2e.yaml" <<YAML
name: e2e
output: $WORK/results
dataset: {root: $DATA, bbox: gt, sample_every: $EVERY}
model: {checkpoint: "$DATA/checkpoints/{variant}/snapshot_{epoch}.pth.tar"}
sweep: {variants: [$(join "${VARIANTS[@]}")], epochs: [$(join "${EPOCHS[@]}")], protocols: [2], flip: [true]}
runtime: {device: $DEVICE, precision: fp32, batch_size: ${CNP_GPU_CHECK_E2E_BATCH:-256}}
YAML
rm -rf "$WORK/results" "$WORK/reference.jsonl"
t0=$(date +%s.%N)
timeout 300 "$SWEEP" "$WORK/e2e.yaml" >> "$LOGS/sweep.log" 2>&1 || { tail "$LOGS/sweep.log"; row "sweep" "FAILED"; }
t1=$(date +%s.%N)
for v in "${VARIANTS[@]}"; do
  for e in "${EPOCHS[@]}"; do
    timeout 240 "$PY" bench/reference_eval.py --root "$DATA" --variant "$v" --flip \
      --device "$DEVICE" --checkpoint "$DATA/checkpoints/$v/snapshot_$e.pth.tar" \
      --workers "$NPROC" --sample-every "$EVERY" | sed "s/^{/{\"epoch\": $e, /" \
      >> "$WORK/reference.jsonl" || row "reference $v e$e" "FAILED"
  done
done
cat "$WORK/reference.jsonl"
while IFS='|' read -r k val; do row "$k" "$val"; done < <("$PY" - "$WORK/results" \
    "$WORK/reference.jsonl" "$t0" "$t1" <<'PYEOF'
import glob, json, sys
out, ref_file, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
refs = [json.loads(line) for line in open(ref_file)]
jobs = {}
for f in glob.glob(out + "/jobs/*.json"):
    j = json.load(open(f))
    jobs[(j["job"]["variant"], j["job"]["epoch"])] = j["metrics"]["mpjpe"]
ref_s = sum(r["seconds"] for r in refs)
cnp_s = t1 - t0
print(f"e2e sweep of {len(jobs)} checkpoints: reference / cnp_sweep s|{ref_s:.1f} / {cnp_s:.1f} = {ref_s / cnp_s:.2f}x")
for r in refs:
    ours = jobs.get((r["variant"], r["epoch"]))
    if ours is None:
        print(f"e2e {r['variant']} e{r['epoch']} MPJPE|missing in the sweep's results")
    else:
        print(f"e2e {r['variant']} e{r['epoch']} MPJPE cnp vs reference mm|{ours:.4f} vs {r['mpjpe']:.4f} (diff {abs(ours - r['mpjpe']):.4f})")
summary = json.load(open(out + "/run_summary.json")).get("timing", {})
# The main thread's parts (they sum to the wall time); between_passes_* and background overlap them.
PARTS = ["checkpoint_read_s", "model_build_s", "data_wait_s", "forward_s", "collective_s", "metrics_write_s"]
for rank in summary.get("per_rank", []):
    parts = {k: rank.get(k, 0.0) for k in PARTS}
    print(f"timing rank {rank.get('rank')}: parts sum / wall s|{sum(parts.values()):.2f} / {rank['wall_s']:.2f} " +
          " ".join(f"{k[:-2]}={v:.2f}" for k, v in parts.items()))
    background = rank.get("background", {})
    print(f"timing rank {rank.get('rank')}: between passes total / max s, background read / build / write s|" +
          f"{rank.get('between_passes_s', 0):.3f} / {rank.get('between_passes_max_s', 0):.3f}, " +
          " / ".join(f"{background.get(k, 0):.2f}" for k in ["checkpoint_read_s", "model_build_s", "metrics_write_s"]))
PYEOF
)

step "fidelity: one checkpoint on the GPU and on the CPU, cnp and the reference"
# Which side moves when the device changes: cnp_sweep and the reference evaluation, each on
# this GPU and on this machine's CPU, XS epoch 70, 1 frame in 512.
FID_EVERY=${CNP_GPU_CHECK_FID_EVERY:-512}
for dev in $DEVICE cpu; do
  sed -e "s|output: .*|output: $WORK/fid_$dev|" -e "s|sample_every: [0-9]*|sample_every: $FID_EVERY|" \
      -e "s|variants: \[[^]]*\]|variants: [XS]|" -e "s|epochs: \[[^]]*\]|epochs: [70]|" \
      -e "s|device: [a-z]*|device: $dev|" "$WORK/e2e.yaml" > "$WORK/fid_$dev.yaml"
  rm -rf "$WORK/fid_$dev"
  timeout 120 "$SWEEP" "$WORK/fid_$dev.yaml" >> "$LOGS/sweep.log" 2>&1 || row "fidelity sweep $dev" "FAILED"
  ours=$("$PY" -c "import glob,json; print(json.load(open(glob.glob('$WORK/fid_$dev/jobs/*.json')[0]))['metrics']['mpjpe'])" 2>/dev/null)
  ref=$(timeout 120 "$PY" bench/reference_eval.py --root "$DATA" --variant XS --flip --device "$dev" \
        --checkpoint "$DATA/checkpoints/XS/snapshot_70.pth.tar" --workers "$NPROC" \
        --sample-every "$FID_EVERY" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['mpjpe'])")
  row "fidelity XS e70 on $dev: MPJPE cnp / reference mm" "${ours:-?} / ${ref:-?}"
done
if [ "$DEVICE" != cpu ]; then
  ref=$(timeout 120 "$PY" bench/reference_eval.py --root "$DATA" --variant XS --flip --device "$DEVICE" \
        --checkpoint "$DATA/checkpoints/XS/snapshot_70.pth.tar" --workers "$NPROC" --no-cudnn \
        --sample-every "$FID_EVERY" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['mpjpe'])")
  row "fidelity XS e70: reference on $DEVICE without cuDNN mm" "${ref:-?}"
fi

step "resume on $DEVICE: the same sweep again over its finished output, with a stale temporary"
# Rerunning into an existing output walks it (stale temporaries, the finished jobs): the code
# that must not use the std::filesystem iterators PyTorch's libtorch_cpu.so exports its own
# copy of (pytorch/pytorch#133437).
TORCH_CPU=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))' 2>/dev/null)
if [ -f "$TORCH_CPU" ] && command -v nm > /dev/null; then
  nm -D --defined-only "$TORCH_CPU" | grep St10filesystem > "$WORK/torch_filesystem_symbols.txt"
  row "libtorch_cpu.so: exported std::filesystem symbols" \
    "$(wc -l < "$WORK/torch_filesystem_symbols.txt") (recursive_directory_iterator: $(grep -c recursive_directory_iterator "$WORK/torch_filesystem_symbols.txt"))"
fi
STALE=$WORK/fid_$DEVICE/jobs/stale.json.tmp.$(hostname).999999999
mkdir -p "$(dirname "$STALE")" && echo partial > "$STALE"
timeout 120 "$SWEEP" "$WORK/fid_$DEVICE.yaml" > "$WORK/resume.log" 2>&1
rc=$?
tail -3 "$WORK/resume.log"
row "resume: exit code, stale temporary removed, jobs line" \
  "$rc, $([ -e "$STALE" ] && echo no || echo yes), $(grep -o 'jobs: .*total' "$WORK/resume.log" | tail -1)"

step "crop fidelity: this machine's cv2 against cnp's decoding, affine matrix and warp"
# Which preprocessing step moves the reference when its cv2 is not Debian's (PyPI's wheel here).
if timeout 120 "$WORK/build/bench/bench_crop_dump" "$DATA" "$WORK/crop_dump" "$FID_EVERY" 48 \
    > "$WORK/crop_fidelity.log" 2>&1 &&
   timeout 120 "$PY" bench/crop_fidelity.py "$WORK/crop_dump" >> "$WORK/crop_fidelity.log" 2>&1; then
  grep -v '|' "$WORK/crop_fidelity.log"
  while IFS='|' read -r k val; do row "$k" "$val"; done < <(grep '|' "$WORK/crop_fidelity.log")
else
  tail -5 "$WORK/crop_fidelity.log"; row "crop fidelity" "FAILED"
fi

step "ranks per node: mpirun -np 2 on this node's $DEVICE"
# On a GPU, two ranks on a one-GPU node must be refused with both numbers; on the CPU dry run the
# same two ranks must give the one-rank MPJPE.
rm -rf "$WORK/fid_2ranks"
sed -e "s|output: .*|output: $WORK/fid_2ranks|" "$WORK/fid_$DEVICE.yaml" > "$WORK/fid_2ranks.yaml"
timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 "$SWEEP" "$WORK/fid_2ranks.yaml" \
  > "$LOGS/two_ranks.log" 2>&1
rc=$?
cat "$LOGS/two_ranks.log"
msg=$(grep -v "dlopen" "$LOGS/two_ranks.log" | grep -m1 -E "GPU|rror")
two=$("$PY" -c "import glob,json; print(json.load(open(glob.glob('$WORK/fid_2ranks/jobs/*.json')[0]))['metrics']['mpjpe'])" 2>/dev/null)
row "2 ranks, $DEVICE: exit code, MPJPE, first error" "$rc, ${two:-none}, ${msg:-none}"
}
[ -z "$ENGINE_ONLY" ] && gpu_steps

ENGINE_LOGS=()
if [ -n "${CNP_GPU_CHECK_CPU_ENGINE:-}" ]; then
  step "CPU engine vs the reference forward (issue 9) on two physical cores each, native and AVX2"
  # A GPU node's host is a many-core CPU with nothing else running: a quieter place than a
  # shared 2-core VM for bench/engine_vs_reference.py's 2-thread table. Each run is pinned to two
  # CPUs on distinct physical cores (not hyperthread siblings), skipping CPU 0; the native and
  # the AVX2-held runs go side by side on disjoint cores.
  mapfile -t CORES < <(lscpu -p=CPU,CORE,SOCKET | grep -v '^#' | awk -F, '!seen[$2","$3]++ && $1 != 0 {print $1}')
  if [ ${#CORES[@]} -lt 4 ]; then
    row "CPU engine" "skipped: ${#CORES[@]} physical cores besides CPU 0, 4 needed"
  else
    # CNP_GPU_CHECK_DEADLINE_S (seconds from the check's start) stops these runs in time for the
    # table to print inside a device call's limit; each variant's ratio is logged as it ends.
    limit=400
    [ -n "${CNP_GPU_CHECK_DEADLINE_S:-}" ] && limit=$((CNP_GPU_CHECK_DEADLINE_S - $(date +%s) + T_START))
    [ "$limit" -lt 30 ] && limit=30
    pids=()
    for i in 0 1; do
      isa=$([ $i -eq 0 ] && echo native || echo avx2)
      ENGINE_LOGS+=("$LOGS/engine_$isa.log")
      taskset -c "${CORES[$((2 * i))]},${CORES[$((2 * i + 1))]}" timeout "$limit" "$PY" \
        bench/engine_vs_reference.py --cnp "$CNP" --peak "$WORK/build/bench/bench_cpu_peak" \
        --isa "$isa" --threads 2 ${CNP_GPU_CHECK_CPU_ENGINE_ARGS:---repeats 3 --seconds 1.5} \
        > "$LOGS/engine_$isa.log" 2>&1 &
      pids+=($!)
      echo "engine_vs_reference --isa $isa on CPUs ${CORES[$((2 * i))]},${CORES[$((2 * i + 1))]}"
    done
    for i in 0 1; do
      wait "${pids[$i]}" || row "CPU engine ${ENGINE_LOGS[$i]##*/}" "FAILED (exit $?)"
    done
  fi
fi

echo
echo "=== gpu_check on $GPU, $CPU ($NPROC cores)"
printf '%s\n' "${TABLE[@]}"
for f in "${ENGINE_LOGS[@]}"; do echo; echo "--- ${f##*/}"; cat "$f"; done
