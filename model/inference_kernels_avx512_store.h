#pragma once
// The output step shared by the AVX-512 GEMM kernels (fp32 in inference_kernels_avx512.cpp,
// bf16 and AMX in inference_kernels_bf16.cpp): masked column tails, the residual added, the
// NaN-preserving ReLU. Include only from files compiled with -mavx512f.
#include <immintrin.h>

#include <cstdint>

namespace cnp::model::kernels::avx512_store {

// Mask of the first `count` lanes (none for count <= 0, all 16 for count >= 16).
inline __mmask16 lanes(int64_t count) {
  if (count <= 0) return 0;
  return count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1);
}

// Stores one 16-column slice of an output row: y (bias included), plus the residual's slice at
// `res` unless it is null (it may be `o` itself), through the ReLU when asked, to the lanes of
// `mask`.
__attribute__((always_inline)) inline void store_output(float* o, __m512 y, __mmask16 mask,
                                                        const float* res, bool relu) {
  if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, res));
  if (relu) y = _mm512_max_ps(_mm512_setzero_ps(), y);  // max(0, NaN) is NaN: NaN survives
  _mm512_mask_storeu_ps(o, mask, y);
}

// The output step of a ROWS x (16 * NV) micro-kernel tile: acc + bias to `cols` columns of
// ROWS output rows `ldo` floats apart (the residual's rows too, unless it is null), through
// store_output.
template <int ROWS, int NV>
__attribute__((always_inline)) inline void store_tile(const __m512 (&acc)[ROWS][NV],
                                                      const float* bias, float* out, int64_t ldo,
                                                      int64_t cols, const float* residual,
                                                      bool relu) {
  __mmask16 mask[NV];
  __m512 bias_v[NV];
#pragma GCC unroll 3
  for (int v = 0; v < NV; ++v) {
    mask[v] = lanes(cols - 16 * v);
    bias_v[v] = _mm512_maskz_loadu_ps(mask[v], bias + 16 * v);
  }
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      store_output(out + r * ldo + 16 * v, _mm512_add_ps(acc[r][v], bias_v[v]), mask[v],
                   residual ? residual + r * ldo + 16 * v : nullptr, relu);
}

}  // namespace cnp::model::kernels::avx512_store
