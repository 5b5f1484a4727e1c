# Every third-party dependency, found the same way on a Debian machine (system packages) and on a
# GPU node that has only a PyTorch install plus the bundle of scripts/make_gpu_bundle.sh, which
# holds Debian's libraries unpacked outside /usr without their package-config helpers
# (no OpenCVConfig.cmake, no pkg-config, no h5cc): each lookup falls back to plain find_path /
# find_library there.
find_package(Threads REQUIRED)
find_package(Torch REQUIRED)
find_package(MPI REQUIRED COMPONENTS CXX)

# HDF5: the GPU bundle links the static library (the shared one needs libcurl and a dozen
# libraries behind it); static HDF5 needs its compression and system libraries spelled out.
find_package(HDF5 REQUIRED COMPONENTS C)
if(HDF5_USE_STATIC_LIBRARIES)
  find_library(CNP_SZIP_LIBRARY NAMES sz REQUIRED)
  list(APPEND HDF5_C_LIBRARIES ${CNP_SZIP_LIBRARY} z dl m)
endif()

find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)

# Only core + imgproc (the reference's warpAffine): JPEGs are decoded with TurboJPEG, which keeps
# a GPU node's dependency bundle small (imgcodecs pulls GDAL and dozens of libraries).
find_package(OpenCV QUIET COMPONENTS core imgproc)
if(NOT OpenCV_FOUND)
  find_path(OpenCV_INCLUDE_DIRS opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
  find_library(CNP_OPENCV_CORE NAMES opencv_core REQUIRED)
  find_library(CNP_OPENCV_IMGPROC NAMES opencv_imgproc REQUIRED)
  set(OpenCV_LIBS ${CNP_OPENCV_IMGPROC} ${CNP_OPENCV_CORE})
  message(STATUS "OpenCV core + imgproc without OpenCVConfig.cmake: ${OpenCV_LIBS}")
endif()
find_path(TURBOJPEG_INCLUDE_DIR turbojpeg.h REQUIRED)
find_library(TURBOJPEG_LIBRARY NAMES turbojpeg REQUIRED)

find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(OpenSSL REQUIRED)
find_path(LIBZIP_INCLUDE_DIR zip.h REQUIRED)
find_library(LIBZIP_LIBRARY NAMES zip REQUIRED)
# Cairo draws the report's pictures. CI and desktops have it (install_deps.sh); a GPU node's
# bundle does not: there the sweep writes every table and `cnp compare` draws the pictures
# elsewhere (pipeline/plots_without_cairo.cpp). CNP_REQUIRE_CAIRO=OFF allows building without.
option(CNP_REQUIRE_CAIRO "Fail configuration when Cairo is missing" ON)
find_path(CAIRO_INCLUDE_DIR cairo.h PATH_SUFFIXES cairo)
find_library(CAIRO_LIBRARY NAMES cairo)
add_library(cnp_cairo INTERFACE)
if(CAIRO_INCLUDE_DIR AND CAIRO_LIBRARY)
  set(CNP_HAVE_CAIRO ON)
  target_include_directories(cnp_cairo SYSTEM INTERFACE ${CAIRO_INCLUDE_DIR})
  target_link_libraries(cnp_cairo INTERFACE ${CAIRO_LIBRARY})
elseif(CNP_REQUIRE_CAIRO)
  message(FATAL_ERROR "Cairo not found (libcairo2-dev); -DCNP_REQUIRE_CAIRO=OFF builds without "
                      "the report's pictures")
else()
  set(CNP_HAVE_CAIRO OFF)
  message(STATUS "Cairo not found: the report's pictures are not drawn by this build")
endif()
add_library(cnp_libzip INTERFACE)
target_include_directories(cnp_libzip SYSTEM INTERFACE ${LIBZIP_INCLUDE_DIR})
target_link_libraries(cnp_libzip INTERFACE ${LIBZIP_LIBRARY})

# LibTorch's compile flags carry its C++ ABI (_GLIBCXX_USE_CXX11_ABI). Every target passes
# std::string and friends to or through the model library, so every target gets them; and since
# Debian's libraries (yaml-cpp, spdlog, ...) use the C++11 ABI, a LibTorch built with the old one
# cannot link with them: say so now rather than with undefined symbols later.
separate_arguments(CNP_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")
add_compile_options(${CNP_TORCH_CXX_FLAGS})
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
  message(FATAL_ERROR "LibTorch at ${Torch_DIR} uses the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=0); "
                      "cnp's other libraries use the C++11 ABI. Use a LibTorch built with "
                      "_GLIBCXX_USE_CXX11_ABI=1 (PyTorch 2.7 or newer wheels, or Debian's).")
endif()
# LibTorch's headers are not -Wextra clean; treat them as system headers so our
# own warnings stay visible and the build stays warning-free.
add_library(cnp_torch INTERFACE)
target_include_directories(cnp_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_link_libraries(cnp_torch INTERFACE ${TORCH_LIBRARIES})
# A CUDA LibTorch registers its CUDA backend from libtorch_cuda.so's static initialisers; no symbol
# of ours names it, so a linker defaulting to --as-needed (Ubuntu's) would drop it and
# torch::cuda::is_available() would say false.
if(TARGET torch_cuda OR TORCH_LIBRARIES MATCHES "torch_cuda")
  target_link_options(cnp_torch INTERFACE "LINKER:--no-as-needed")
  message(STATUS "cnp: CUDA LibTorch ${Torch_VERSION}")
endif()
# PyTorch 2.12 and newer need C++20 to include ATen.
if(DEFINED Torch_VERSION AND Torch_VERSION VERSION_GREATER_EQUAL 2.12)
  set(CMAKE_CXX_STANDARD 20)
endif()
