#!/usr/bin/env bash
# A/B of the CPU inference kernels (one ISA's build) between two source trees on this machine: A = a
# git revision, B = another revision or, by default, the working tree (uncommitted changes
# included). Both are compiled into namespaces of their own and linked into one program,
# bench/kernel_ab.cpp, which runs one block per backbone stage, then the decoder, through A and B in
# alternating pairs and prints the medians of the pairs' speed ratios and the largest output
# difference. On a noisy shared machine this tells apart changes of a few percent that two separate
# runs cannot (see bench/kernel_ab.cpp).
#
#   bench/kernel_ab.sh A_REV [B_REV] [--isa avx512|avx2] [--build DIR] [-- kernel_ab options]
#
# kernel_ab options: --pairs N (21), --images N (8), --channels 48,96,192,384 (ConvNeXtPose-S),
# --dw-kernel 7|3 (the backbone's depthwise size, or the head's),
# --expect-identical (exit 1 where A's and B's outputs differ). --build is the CMake build
# folder (default build/): the harness takes the tile rule from its libcnp_inference_kernels.
set -euo pipefail

fail() {
  echo "kernel_ab.sh: $*" >&2
  exit 2
}

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
revs=()
isa=avx512
build="$root/build"
harness_args=()
while (($#)); do
  case "$1" in
    --isa) isa=${2:-}; shift 2 || fail "--isa needs a value" ;;
    --build) build=${2:-}; shift 2 || fail "--build needs a value" ;;
    --) shift; harness_args=("$@"); break ;;
    -*) fail "unknown option '$1' (usage: bench/kernel_ab.sh A_REV [B_REV] [--isa avx512|avx2] [--build DIR] [-- kernel_ab options])" ;;
    *) revs+=("$1"); shift ;;
  esac
done
((${#revs[@]} >= 1 && ${#revs[@]} <= 2)) || fail "give one or two revisions (A, and B unless the working tree)"
case "$isa" in
  avx512) isa_flags=(-mavx512f -mavx2 -mfma -Wno-maybe-uninitialized) ;;  # as model/CMakeLists.txt
  avx2) isa_flags=(-mavx2 -mfma) ;;
  *) fail "--isa must be avx512 or avx2, not '$isa'" ;;
esac
for lib in model/libcnp_inference_kernels.a common/libcnp_common.a; do
  [[ -f "$build/$lib" ]] || fail "no $build/$lib: build the project first (cmake --build $build)"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cxx=${CXX:-c++}
describe() { git -C "$root" log -1 --format='%h %s' "$1" | cut -c1-72; }

# The sources of side `tag` (a or b): a revision's model/, or the working tree's.
for tag in a b; do
  mkdir -p "$work/$tag"
  index=$([[ $tag == a ]] && echo 0 || echo 1)
  if ((index < ${#revs[@]})); then
    rev=${revs[$index]}
    sha=$(git -C "$root" rev-parse --verify --quiet "$rev^{commit}") ||
      fail "'$rev' is not a commit of $root"
    git -C "$root" archive "$sha" model | tar -x -C "$work/$tag"
    label="$(describe "$sha")"
  else
    cp -r "$root/model" "$work/$tag/"
    label="working tree of $root"
  fi
  [[ -f "$work/$tag/model/inference_kernels_$isa.cpp" ]] ||
    fail "side $tag ($label) has no model/inference_kernels_$isa.cpp"
  echo "$tag: $label" >"$work/$tag.label"
  # Its own namespaces, so that A's and B's kernels (and their inline helpers) never merge.
  ns="ab_${tag}_${isa}"
  sed -i -E "s/\bkernels::${isa}\b/kernels::${ns}/g; s/(CNP_KERNEL_NS) ${isa}\b/\1 ${ns}/; \
s/\bavx512_store\b/${ns}_store/g" "$work/$tag"/model/*.h "$work/$tag/model/inference_kernels_$isa.cpp"
  "$cxx" -O3 -DNDEBUG -std=c++17 "${isa_flags[@]}" -I"$work/$tag" \
    -c "$work/$tag/model/inference_kernels_$isa.cpp" -o "$work/$tag.o"
done

"$cxx" -O3 -DNDEBUG -std=c++17 -I"$root" -DCNP_AB_A="ab_a_$isa" -DCNP_AB_B="ab_b_$isa" \
  -c "$root/bench/kernel_ab.cpp" -o "$work/kernel_ab.o"
"$cxx" "$work/kernel_ab.o" "$work/a.o" "$work/b.o" "$build/model/libcnp_inference_kernels.a" \
  "$build/common/libcnp_common.a" -o "$work/kernel_ab"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "kernel A/B, $isa kernels, on ${cpu:-an unknown CPU} ($(nproc) CPUs)"
cat "$work/a.label" "$work/b.label"
"$work/kernel_ab" "${harness_args[@]}"
