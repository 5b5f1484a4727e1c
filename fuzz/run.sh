#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) into BUILD_DIR and runs each one
# for SECONDS from its committed seed corpus, fuzz/corpus/<target>. New inputs go to
# BUILD_DIR/corpus/<target> (the committed corpus is only read); a crash leaves its input
# in BUILD_DIR/crash-<target>-* and fails the script.
#   bash fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:?usage: run.sh BUILD_DIR [SECONDS] [TARGET...]}"
seconds="${2:-5}"
shift $(( $# < 2 ? $# : 2 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(checkpoint pickle sweep_yaml annotations)

for tool in clang-14 clang++-14; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool not found (scripts/install_deps.sh installs it)" >&2; exit 1; }
done
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$here" -B "$build" "${launcher[@]}" >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log" >&2; exit 1; }
fi
cmake --build "$build" -j"${CNP_FUZZ_JOBS:-2}" -- -s >/dev/null

status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  log="$build/$t.log"
  if "$build/fuzz_$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/crash-$t-" \
      "$build/corpus/$t" "$here/corpus/$t" >"$log" 2>&1; then
    echo "fuzz_$t: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs," \
         "$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}') exec/s, no crash"
  else
    echo "fuzz_$t: FAILED (input saved as $build/crash-$t-*); the end of its log:" >&2
    tail -40 "$log" >&2
    status=1
  fi
done
exit $status
