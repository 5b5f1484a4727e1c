#pragma once
// The kernels of inference_kernels.h written once over a small vector abstraction V
// (ScalarLanes here, Avx2Lanes and Avx512Lanes in their .cpp files). Included by one
// translation unit per instruction set (inference_kernels.cpp, _avx2.cpp, _avx512.cpp), each
// inside its own namespace (CNP_KERNEL_NS), so that the AVX2 instantiations can never be
// merged with the generic ones at link time. No standard library templates are instantiated
// here or in the parts included at the end, for the same reason.
#include <cmath>
#include <cstdint>
#include <cstdlib>

#ifndef CNP_KERNEL_NS
#error "define CNP_KERNEL_NS before including inference_kernels_impl.h"
#endif

namespace cnp::model::kernels::CNP_KERNEL_NS {
namespace {

struct ScalarLanes {
  using T = float;
  static constexpr int width = 1;
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T set1(float x) { return x; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T fmadd(T a, T b, T c) { return a * b + c; }
  static T max(T a, T b) { return a > b ? a : b; }
  static T exp(T x) { return std::exp(x); }
  static float hsum(T v) { return v; }
  static float hmax(T v) { return v; }
};

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}
inline int64_t imax(int64_t a, int64_t b) {
  return a > b ? a : b;
}

// A malloc'd float buffer (no std::vector: see the top of this file).
struct FloatBuffer {
  explicit FloatBuffer(int64_t n)
      : data(static_cast<float*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64))) {}
  ~FloatBuffer() { std::free(data); }
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  float* data;
};

}  // namespace
}  // namespace cnp::model::kernels::CNP_KERNEL_NS

// The kernels, one concern per header.
#include "model/inference_kernels_impl_depthwise.h"
#include "model/inference_kernels_impl_gemm.h"
#include "model/inference_kernels_impl_soft_argmax.h"
