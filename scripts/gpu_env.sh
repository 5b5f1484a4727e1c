# Source this: `source scripts/gpu_env.sh BUNDLE_DIR` points the build and the programs at a
# bundle made by scripts/make_gpu_bundle.sh (Debian's packages unpacked outside /usr).
_b=$(cd "${1:?usage: source scripts/gpu_env.sh BUNDLE_DIR}" && pwd)
export CNP_BUNDLE=$_b
export PATH="$_b/usr/bin:$PATH"
export LD_LIBRARY_PATH="$_b/usr/lib/x86_64-linux-gnu:$_b/lib/x86_64-linux-gnu:$_b/usr/lib/x86_64-linux-gnu/blas:$_b/usr/lib/x86_64-linux-gnu/lapack${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CMAKE_PREFIX_PATH="$_b/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PKG_CONFIG_PATH="$_b/usr/lib/x86_64-linux-gnu/pkgconfig:$_b/usr/share/pkgconfig"
# Open MPI finds its plugins, help files and wrapper data relative to OPAL_PREFIX.
export OPAL_PREFIX="$_b/usr"
export OPAL_LIBDIR="$_b/usr/lib/x86_64-linux-gnu/openmpi/lib"
export PMIX_INSTALL_PREFIX="$_b/usr"
# Known, harmless: on a node with its own Open MPI, the bundle's PMIx still loads that
# install's optional zlib compression plugin from its build-time prefix and says "dlopen error:
# ... pmix_mca_pcompress_zlib.so: undefined symbol" (seen on the H100 node; pointing
# PMIX_MCA_mca_base_component_path at the bundle did not change it). PMIx runs without it.
# One node, shared memory and TCP (the bundle carries no interconnect plugins).
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_mtl=^ofi,psm,psm2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset _b
