#!/usr/bin/env bash
# bench/engine_vs_reference.py --pairs: cnp (bench --rounds-from-stdin) and the Python reference
# kept loaded and alternated in rounds, in two blocks of fresh processes. Checks that the table
# comes out with XS's row and ratios, one ratio per block, and that a child that dies or a bad
# option ends the script with a message instead of a hang.
#   check_engine_vs_reference.sh PYTHON CNP BENCH_CPU_PEAK WORK_DIR
set -euo pipefail
python=$1 cnp=$2 peak=$3 work=$4
script="$(dirname "$0")/../../bench/engine_vs_reference.py"
mkdir -p "$work"
out="$work/engine_vs_reference.out"

fail() { echo "check_engine_vs_reference: $*" >&2; cat "$out" >&2; exit 1; }

timeout 300 "$python" "$script" --cnp "$cnp" --peak "$peak" --variants XS --batch 1 --threads 1 \
  --pairs 4 --restarts 2 --slice 0.05 > "$out" 2>&1 || fail "exit $?"
grep -q "4 paired rounds of ~0.05 s per process (order reversed every other round) in 2 blocks" \
  "$out" || fail "no paired-rounds header"
# variant, 3 rates, straight/ref, opt/ref, range, cpu ratio, 2 shares, ceiling, 2 peak MB.
grep -Eq '^ +XS +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x +[0-9.]+x +[0-9.]+-[0-9.]+x +[0-9.]+x +[0-9]+% +[0-9]+% +[0-9.]+x +[0-9]+ +[0-9]+$' \
  "$out" || fail "no XS row with ratios"
grep -Eq 'XS done: .*opt/ref per block: [0-9.]+x [0-9.]+x\)$' "$out" || fail "not one ratio per block"

# A cnp that exits at once: the script says which program failed, and exits non-zero.
if timeout 120 "$python" "$script" --cnp /bin/false --peak "$peak" --variants XS --batch 1 \
  --threads 1 --pairs 2 --slice 0.05 > "$out" 2>&1; then
  fail "a failing cnp passed"
fi
grep -q "/bin/false exited with 1" "$out" || fail "no message naming the failed program"
if "$python" "$script" --cnp "$cnp" --pairs -1 > "$out" 2>&1; then fail "--pairs -1 accepted"; fi
grep -q "\-\-pairs must be 0 or more" "$out" || fail "no message for --pairs -1"
echo "check_engine_vs_reference: passed"
