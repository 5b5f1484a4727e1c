#pragma once
// The GEMM behind the 1x1 convolutions, written once over the lanes V. Only for
// inference_kernels_impl.h, which includes it in the namespace of one instruction set
// (CNP_KERNEL_NS) after the lanes and helpers that every part uses.
#ifndef CNP_KERNEL_NS
#error "include inference_kernels_impl.h, not inference_kernels_impl_gemm.h"
#endif

namespace cnp::model::kernels::CNP_KERNEL_NS {
namespace {

// GEMM with a fused epilogue for 1x1 convs on channels-last rows: out[m, n] =
// act(a[m, :] . w[n, :] + bias[n] (+ out[m, n])). w is pre-packed in panels of
// kPanel(V) = 2 vectors of output channels: packed[panel][k][kPanel], zero-padded.
template <class V>
constexpr int64_t panel_width() {
  return 2 * V::width;
}

template <class V>
void pack_panels(const float* w, int64_t n, int64_t k, float* packed) {
  constexpr int64_t P = panel_width<V>();
  const int64_t panels = (n + P - 1) / P;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < P; ++j) {
        const int64_t col = p * P + j;
        packed[(p * k + kk) * P + j] = col < n ? w[col * k + kk] : 0.0f;
      }
}

// ROWS (<= 6) rows of a times one panel: 2 * ROWS accumulators held in registers.
template <class V, int ROWS>
inline void gemm_micro(const float* a, int64_t lda, const float* panel, int64_t k,
                       const float* bias, float* out, int64_t ldo, int64_t cols,
                       const float* residual, bool relu) {
  // Every loop over the rows is unrolled, so the accumulators live in registers only. GCC
  // otherwise also kept them in a stack array, zeroed it with two `rep stos` per call and spilled
  // them there for the epilogue: the AVX2 kernel's first 1x1 conv of S's stage 0 (k = 48) ran
  // 1.23-1.32x slower that way, stage 1's 1.12-1.19x, larger k less (A/B pairs, one thread).
  typename V::T acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) acc0[r] = acc1[r] = V::set1(0.0f);
  for (int64_t kk = 0; kk < k; ++kk) {
    // The panel's row 32 steps ahead into L1, as the AVX-512 kernel does (see there): with
    // AVX2 S's stage-3 1x1 convs ran 1.02-1.05x, the others within 1% (A/B pairs).
    __builtin_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(panel) +
                                                     sizeof(float) * (kk + 32) * 2 * V::width),
                       0, 3);
    const typename V::T b0 = V::load(panel + kk * 2 * V::width);
    const typename V::T b1 = V::load(panel + kk * 2 * V::width + V::width);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      const typename V::T x = V::set1(a[r * lda + kk]);
      acc0[r] = V::fmadd(x, b0, acc0[r]);
      acc1[r] = V::fmadd(x, b1, acc1[r]);
    }
  }
  if (cols == 2 * V::width) {
    const typename V::T bias0 = V::load(bias), bias1 = V::load(bias + V::width);
    const typename V::T zero = V::set1(0.0f);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      float* o = out + r * ldo;
      typename V::T v0 = V::add(acc0[r], bias0), v1 = V::add(acc1[r], bias1);
      if (residual) {
        const float* res = residual + r * ldo;
        v0 = V::add(v0, V::load(res));
        v1 = V::add(v1, V::load(res + V::width));
      }
      if (relu) {
        v0 = V::max(zero, v0);  // NaN-preserving ReLU (see the depthwise kernel)
        v1 = V::max(zero, v1);
      }
      V::store(o, v0);
      V::store(o + V::width, v1);
    }
    return;
  }
  float tile[2 * V::width];
#pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    V::store(tile, acc0[r]);
    V::store(tile + V::width, acc1[r]);
    float* o = out + r * ldo;
    const float* res = residual ? residual + r * ldo : nullptr;
    for (int64_t j = 0; j < cols; ++j) {
      float v = tile[j] + bias[j] + (res ? res[j] : 0.0f);
      o[j] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

template <class V>
void gemm_rows(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end) {
  constexpr int64_t P = panel_width<V>();
  constexpr int64_t kRows = 6, kBlock = 48;  // a block of rows stays in cache over all panels
  const int64_t panels = (n + P - 1) / P;
  for (int64_t block = row_begin; block < row_end; block += kBlock) {
    const int64_t block_end = imin(block + kBlock, row_end);
    for (int64_t p = 0; p < panels; ++p) {
      const float* panel = packed + p * k * P;
      const int64_t col = p * P, cols = imin(P, n - col);
      int64_t m = block;
      for (; m + kRows <= block_end; m += kRows)
        gemm_micro<V, kRows>(a + m * k, k, panel, k, bias + col, out + m * n + col, n, cols,
                             residual ? residual + m * n + col : nullptr, relu);
      const float* ar = a + m * k;
      float* o = out + m * n + col;
      // The last 1..kRows-1 rows of the block, with a micro-kernel of exactly that height.
      using Micro = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*,
                             int64_t, int64_t, const float*, bool);
      static constexpr Micro kTail[kRows] = {nullptr,          gemm_micro<V, 1>, gemm_micro<V, 2>,
                                             gemm_micro<V, 3>, gemm_micro<V, 4>, gemm_micro<V, 5>};
      if (block_end > m)
        kTail[block_end - m](ar, k, panel, k, bias + col, o, n, cols,
                             residual ? residual + m * n + col : nullptr, relu);
    }
  }
}

}  // namespace
}  // namespace cnp::model::kernels::CNP_KERNEL_NS
