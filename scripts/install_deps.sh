#!/usr/bin/env bash
# Installs every Debian package that the build, the demo and the tests need.
# Idempotent: skips apt entirely when everything is already present.
set -euo pipefail
PACKAGES=(
  cmake make g++ pkg-config clang-format
  libtorch-dev libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools
  libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libopencv-dev libturbojpeg0-dev nlohmann-json3-dev libcli11-dev libssl-dev libzip-dev libcairo2-dev
  python3-torch python3-torchvision python3-opencv python3-numpy python3-h5py
  munge slurmctld slurmd slurm-client
  # fuzz/ (ctest fuzz_smoke): clang with libFuzzer and the sanitizer runtimes.
  clang-14 libclang-rt-14-dev libfuzzer-14-dev
  # Debian's libtorch calls the generic BLAS; OpenBLAS (via alternatives) makes the
  # 1x1 convolutions that dominate ConvNeXtPose 3-5x faster on CPU.
  libopenblas0-openmp
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
