# Entry points: `make demo` (synthetic data end to end) and `make test` (all tests).
# Both install their Debian packages first (scripts/install_deps.sh).
BUILD ?= build
JOBS ?= $(shell nproc)
# The NCCL path compiles wherever CUDA's NCCL headers exist (CI checks that it links).
NCCL ?= $(if $(wildcard /usr/local/cuda/include/nccl.h),ON,OFF)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DCNP_WITH_NCCL=$(NCCL)
MPIRUN ?= mpirun --oversubscribe
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

.PHONY: deps configure build build-apps test demo format clean

deps:
	bash scripts/install_deps.sh

configure: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# The demo needs only the two programs, not the test binaries.
build-apps: configure
	cmake --build $(BUILD) -j$(JOBS) --target cnp cnp_sweep

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 900 -j$(JOBS)

demo: build-apps
	BUILD=$(BUILD) MPIRUN="$(MPIRUN)" bash scripts/demo.sh

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
