#!/usr/bin/env bash
# Makes the dependency bundle a GPU node needs to build and run cnp when it has only the CUDA
# driver and a PyTorch install (whose CUDA LibTorch, CUDA runtime and NCCL we use): Debian 12's
# packages for MPI, HDF5, yaml-cpp, spdlog/fmt, GoogleTest, OpenCV core+imgproc, TurboJPEG,
# libzip, CLI11, nlohmann-json and OpenSSL headers, downloaded with apt-get and unpacked with
# dpkg -x into one folder (static libraries, docs, Fortran parts, unused Open MPI plugins and every
# header cnp's sources do not reach pruned; at most 48 MiB).
#
#   scripts/make_gpu_bundle.sh [OUT_DIR]      (default: .gpu_bundle)
#
# It then checks the bundle: every shared library it holds must find each library it needs either
# in the bundle or in the base set any Linux with PyTorch has (glibc, libstdc++, zlib, OpenSSL 3).
# scripts/gpu_env.sh BUNDLE sets the paths to use it.
set -euo pipefail
OUT=${1:-.gpu_bundle}
# 47.3 MiB as made on 2026-11-26 (du -sm --apparent-size rounds up: 48). The floor is set by what
# runs: Debian's OpenCV core needs reference LAPACK, BLAS, gfortran and the X11/GLX dispatch
# libraries (about 12 MiB; it is linked with BIND_NOW and cnp calls cv::SVD), static HDF5 is
# 8 MiB, PMIx 2 MiB (docs/gpu.md).
MAX_MIB=48
PACKAGES=(
  # MPI: the library, mpirun, and what libmpi needs at run time
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libevent-core-2.1-7
  libevent-pthreads-2.1-7 libhwloc15 libpmix2 libnuma1 libltdl7 libgfortran5 libquadmath0
  libudev1 libmunge2 libatomic1 libuuid1
  # HDF5 (serial), linked statically: the shared library needs libcurl and a dozen libraries
  # behind it (for reading from S3, never used here); the static one links without them
  libhdf5-dev libhdf5-103-1 libsz2 libaec0 libaec-dev
  # the rest of the build
  libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libgtest-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-core406 libopencv-imgproc406
  libtbb12 libblas3 liblapack3 libturbojpeg0-dev libturbojpeg0 libzip-dev libzip4
  libzstd1 libbz2-1.0 liblzma5 libcli11-dev nlohmann-json3-dev libssl-dev
  # OpenCV core links OpenGL's dispatch library (never called here)
  libglx0 libglvnd0 libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0
)
# Sonames every node with a PyTorch install has (and must not be taken from Debian's copies).
BASE_SONAMES='^(ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libutil|libresolv|libstdc\+\+|libgcc_s|libz|libssl|libcrypto|libgomp|libcuda|libnvidia-ml)\.so'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get download "${PACKAGES[@]}" 2>&1 | grep -v "unsandboxed as root" >&2 ) || {
  echo "make_gpu_bundle: apt-get download failed (run 'apt-get update' first?)" >&2; exit 1; }
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$OUT.tmp"; done
# The links Debian's maintainer scripts (update-alternatives) would make.
lib="$OUT.tmp/usr/lib/x86_64-linux-gnu"
ln -sf blas/libblas.so.3 "$lib/libblas.so.3"
ln -sf lapack/liblapack.so.3 "$lib/liblapack.so.3"
for tool in mpicc mpicxx mpirun mpiexec; do ln -sf "$tool.openmpi" "$OUT.tmp/usr/bin/$tool"; done
ln -sf hdf5/serial/libhdf5.a "$lib/libhdf5.a"
# One node, shared memory and TCP, point-to-point and collectives only (cnp uses no MPI-IO, no
# one-sided MPI_Win, no Fortran, Java or C++ bindings' classes): Open MPI's interconnect plugins
# (UCX, libfabric, verbs, PSM), OpenSHMEM, MPI-IO (io, fs, fbtl, fcoll, sharedfp), one-sided
# (osc), monitoring, message logging (vprotocol), the cm PML (it needs an MTL), tree-matching
# topologies, Flux/JSM/Grid Engine launch support, the Fortran and Java bindings, the tracing
# library and the debugger's message-queue library are dropped with the libraries they need.
find "$lib/openmpi/lib/openmpi3" "$lib/openmpi/lib" "$lib" -maxdepth 1 -regextype posix-extended \
  -regex '.*/(mca_.*(ucx|ofi|openib|psm|verbs|usnic|netlink).*|libmca_common_(ucx|ofi|verbs|ompio|monitoring).*|liboshmem.*|mca_(atomic|memheap|scoll|spml|sshmem)_.*)' \
  -delete
find "$lib/openmpi/lib/openmpi3" "$lib/openmpi/lib" "$lib" -maxdepth 1 -regextype posix-extended \
  -regex '.*/(mca_(io|fs|fbtl|fcoll|sharedfp|osc|vprotocol)_.*|mca_.*monitoring.*|ompi_monitoring_prof.so|mca_pml_cm.so|mca_topo_treematch.so|mca_(pmix|schizo)_(flux|jsm).so|mca_ras_(gridengine|simulator).so|libompi_dbg_msgq.so|libmpi_(java|mpifh|mpifh-gfortran).so.*|libompitrace.so.*)' \
  -delete
# Prune what a build never reads: docs, manuals, static archives (GoogleTest's excepted: Debian
# ships it only static), Fortran modules and bindings, Java and Python parts.
rm -rf "$OUT.tmp"/usr/share/{doc,man,lintian,locale,bug,info} "$OUT.tmp"/usr/lib/x86_64-linux-gnu/fortran
find "$OUT.tmp" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' ! -name 'libhdf5_serial.a' \
  ! -name 'libhdf5.a' -delete
find "$OUT.tmp" -name 'libhdf5*.so*' -delete
# Open MPI's internal headers serve plugin authors; mpi.h needs only its C++ binding headers.
rm -rf "$lib"/openmpi/include/openmpi/{opal,orte,oshmem}
find "$OUT.tmp" \( -name '*.mod' -o -name 'libhdf5*fortran*' -o -name 'libmpi_use*' -o -name '*.jar' \) -delete

# Headers: only those cnp's sources reach. The external headers this checkout's sources include
# (its own headers and the LibTorch, CUDA, NCCL and C++ library ones are not in the bundle) are
# preprocessed one by one with g++ -M against the bundle's include folders - in C++17 and C++20,
# with and without the definitions the build passes (spdlog/fmt as shared libraries, NDEBUG) and
# the AVX-512 flags some of its files use - and every bundle header that none of them opens is
# deleted (about half of the headers' 11 MiB). CMake and pkg-config files stay.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$OUT.tmp/usr" && pwd)
INCLUDE_DIRS=("$B/include" "$B/lib/x86_64-linux-gnu/openmpi/include")
INCLUDE_FLAGS=(-I"$B/include" -I"$B/include/x86_64-linux-gnu" -I"$B/include/opencv4"
               -I"$B/include/hdf5/serial" -I"$B/lib/x86_64-linux-gnu/openmpi/include"
               -I"$B/lib/x86_64-linux-gnu/openmpi/include/openmpi")
BUILD_DEFS="-DNDEBUG -D_GLIBCXX_USE_CXX11_ABI=1 -DFMT_SHARED -DSPDLOG_COMPILED_LIB -DSPDLOG_SHARED_LIB"
BUILD_DEFS+=" -DSPDLOG_FMT_EXTERNAL -DGTEST_HAS_PTHREAD=1"
VARIANTS=("-std=c++17" "-std=c++20" "-std=gnu++17 $BUILD_DEFS" "-std=gnu++20 $BUILD_DEFS -mavx512f -mavx2 -mfma -fopenmp")
includes=$(cd "$ROOT" && grep -rhoE --include='*.cpp' --include='*.h' --include='*.cu' --include='*.cuh' \
  --include='*.in' '^\s*#\s*include\s*<[^>]+>' apps bench common data fuzz jobs model pipeline slurm tests |
  sed -E 's/^\s*#\s*include\s*/#include /' | sort -u)
[ "$(wc -l <<<"$includes")" -gt 20 ] || { echo "make_gpu_bundle: no sources under $ROOT" >&2; exit 1; }
keep=$work/keep_headers
for variant in "${VARIANTS[@]}"; do
  while read -r inc; do
    # shellcheck disable=SC2086  # the variant is a list of flags
    echo "$inc" | g++ $variant -M -x c++ - "${INCLUDE_FLAGS[@]}" 2>/dev/null || true
  done <<<"$includes"
done | tr " \\\\" '\n' | { grep "^$B/" || true; } | sort -u > "$work/deps"
# Each path as named, and the file behind it where it is a symbolic link.
{ xargs -r -d '\n' realpath -ms < "$work/deps"; xargs -r -d '\n' realpath -m < "$work/deps"; } |
  sort -u > "$keep"
for h in mpi.h opencv2/imgproc.hpp hdf5.h spdlog/spdlog.h; do
  grep -q "/$h\$" "$keep" || { echo "make_gpu_bundle: header closure without $h (g++ -M failed?)" >&2; exit 1; }
done
find "${INCLUDE_DIRS[@]}" \( -type f -o -type l ! -xtype d \) | sort -u | comm -23 - "$keep" | xargs -r -d '\n' rm -f
# OpenSSL's configuration headers sit in Debian's multiarch folder, which the build does not
# search (a node without OpenSSL headers of its own would miss them): beside the others.
mv "$B"/include/x86_64-linux-gnu/openssl/*.h "$B/include/openssl/"
find "${INCLUDE_DIRS[@]}" -depth -type d -empty -delete
# libtorch-free sanity: no stray libstdc++/libz from Debian shadowing the node's own
find "$OUT.tmp" -regextype posix-extended -regex '.*/(libstdc\+\+|libz|libgcc_s)\.so.*' -delete

# Check: every shared object resolves its needs inside the bundle or in the base set.
have=$(find "$lib" "$OUT.tmp/lib/x86_64-linux-gnu" -maxdepth 1 -name '*.so*' -printf '%f\n' 2>/dev/null | sort -u)
missing=$(find "$OUT.tmp" -type f -name '*.so*' -print0 | { xargs -0 -r objdump -p 2>/dev/null || true; } |
  awk '/NEEDED/ {print $2}' | sort -u | while read -r need; do
    grep -qxF "$need" <<<"$have" || [[ $need =~ $BASE_SONAMES ]] || echo "$need"
  done)
if [ -n "$missing" ]; then
  echo "make_gpu_bundle: libraries needed by the bundle but neither in it nor in the base set:" >&2
  echo "$missing" | sed 's/^/  /' >&2
  exit 1
fi
size_mib=$(du -sm --apparent-size "$OUT.tmp" | cut -f1)
if [ "$size_mib" -gt "$MAX_MIB" ]; then
  echo "make_gpu_bundle: bundle is $size_mib MiB, over the $MAX_MIB MiB budget" >&2
  du -sm "$OUT.tmp"/usr/lib/x86_64-linux-gnu/* "$OUT.tmp"/usr/include/* 2>/dev/null | sort -n | tail -12 >&2
  exit 1
fi
rm -rf "$OUT"; [ -n "${KEEP_OVERSIZE:-}" ] && cp -r "$OUT.tmp" "$OUT.big"
mv "$OUT.tmp" "$OUT"
echo "make_gpu_bundle: $OUT: ${#PACKAGES[@]} packages, $size_mib MiB"
