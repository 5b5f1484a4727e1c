// bf16 GEMM for CPUs with AVX512_BF16 (VDPBF16PS: 2 bf16 products accumulated into each
// fp32 lane). Hand-written because Debian's LibTorch 1.13 has no bf16 GEMM that uses these
// instructions (its CPU bf16 matmul converts element by element and is many times slower
// than fp32). CMake compiles this file alone with -mavx512bf16; inference_kernels.cpp calls
// it only after checking the CPU. Inputs are rounded to bf16 (nearest even), products are
// exact in fp32 and accumulate in fp32; bias, residual and ReLU are applied in fp32.
#include "model/inference_kernels_bf16.h"

#include <cstdlib>
#include <cstring>

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>

namespace cnp::model::kernels::bf16 {
namespace {

constexpr int64_t kPanel = 32;  // output columns per packed panel (2 vectors of 16)

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}

// fp32 -> bf16, round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline __mmask16 lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1);
}

// ROWS x (16 * NV) outputs over `pairs` k-pairs. a: bf16 rows of lda elements (pairs
// adjacent, so one 32-bit broadcast feeds a pair); panel: [pair][32 columns][2].
template <int ROWS, int NV>
void micro(const uint16_t* a, int64_t lda, const uint16_t* panel, int64_t pairs, const float* bias,
           float* out, int64_t ldo, int64_t cols, bool accumulate, bool relu) {
  __m512 acc[ROWS][NV];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh b[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      b[v] = (__m512bh)_mm512_loadu_si512(panel + (p * kPanel + v * 16) * 2);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + 2 * p, sizeof pair);
      const __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x, b[v]);
    }
  }
  __mmask16 mask[NV];
  __m512 bias_v[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    mask[v] = lanes(cols - 16 * v > 0 ? cols - 16 * v : 0);
    bias_v[v] = _mm512_maskz_loadu_ps(mask[v], bias + 16 * v);
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
    float* o = out + r * ldo;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 y = _mm512_add_ps(acc[r][v], bias_v[v]);
      if (accumulate) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask[v], o + 16 * v));
      if (relu) y = _mm512_max_ps(zero, y);  // NaN-preserving ReLU, as in the fp32 kernels
      _mm512_mask_storeu_ps(o + 16 * v, mask[v], y);
    }
  }
}

using Micro = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, const float*, float*,
                       int64_t, int64_t, bool, bool);
template <int NV>
constexpr Micro kMicro[13] = {nullptr,      micro<1, NV>, micro<2, NV>,  micro<3, NV>,
                              micro<4, NV>, micro<5, NV>, micro<6, NV>,  micro<7, NV>,
                              micro<8, NV>, micro<9, NV>, micro<10, NV>, micro<11, NV>,
                              micro<12, NV>};

// The block's rows as bf16, k padded to even with zeros. One buffer per thread, grown as needed.
struct RowBuffer {
  uint16_t* data = nullptr;
  int64_t capacity = 0;
  ~RowBuffer() { std::free(data); }
  uint16_t* get(int64_t elements) {
    if (elements > capacity) {
      std::free(data);
      capacity = elements;
      data = static_cast<uint16_t*>(std::aligned_alloc(64, ((elements * 2 + 63) / 64) * 64));
    }
    return data;
  }
};

void convert_rows(const float* a, int64_t k, int64_t k_even, int64_t rows, uint16_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = a + r * k;
    uint16_t* dst = out + r * k_even;
    int64_t kk = 0;
    for (; kk + 32 <= k; kk += 32) {
      const __m512bh v =
          _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + kk + 16), _mm512_loadu_ps(src + kk));
      _mm512_storeu_si512(dst + kk, (__m512i)v);
    }
    for (; kk < k; ++kk) dst[kk] = to_bf16(src[kk]);
    if (k_even > k) dst[k] = 0;
  }
}

}  // namespace

bool compiled() {
  return true;
}

int64_t packed_size(int64_t n, int64_t k) {
  return (n + kPanel - 1) / kPanel * kPanel * ((k + 1) / 2 * 2);
}

void pack_weights(const float* w, int64_t n, int64_t k, uint16_t* packed) {
  const int64_t pairs = (k + 1) / 2, panels = (n + kPanel - 1) / kPanel;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t q = 0; q < pairs; ++q)
      for (int64_t j = 0; j < kPanel; ++j)
        for (int64_t e = 0; e < 2; ++e) {
          const int64_t col = p * kPanel + j, kk = 2 * q + e;
          packed[((p * pairs + q) * kPanel + j) * 2 + e] =
              col < n && kk < k ? to_bf16(w[col * k + kk]) : uint16_t{0};
        }
}

void gemm_bias(const float* a, int64_t k, const uint16_t* packed, int64_t n, const float* bias,
               float* out, bool accumulate, bool relu, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kRows = 12, kBlock = 96;
  thread_local RowBuffer buffer;
  const int64_t pairs = (k + 1) / 2, k_even = 2 * pairs;
  const int64_t panels = (n + kPanel - 1) / kPanel;
  uint16_t* rows_bf16 = buffer.get(kBlock * k_even);
  for (int64_t block = row_begin; block < row_end; block += kBlock) {
    const int64_t block_rows = imin(kBlock, row_end - block);
    convert_rows(a + block * k, k, k_even, block_rows, rows_bf16);
    for (int64_t p = 0; p < panels; ++p) {
      const uint16_t* panel = packed + p * pairs * kPanel * 2;
      const int64_t col = p * kPanel, cols = imin(kPanel, n - col);
      const Micro* table = cols > 16 ? kMicro<2> : kMicro<1>;
      for (int64_t m = 0; m < block_rows; m += kRows) {
        const int64_t rows = imin(kRows, block_rows - m);
        table[rows](rows_bf16 + m * k_even, k_even, panel, pairs, bias + col,
                    out + (block + m) * n + col, n, cols, accumulate, relu);
      }
    }
  }
}

}  // namespace cnp::model::kernels::bf16

#else  // no AVX512_BF16 compiler support: the dispatcher never calls these

namespace cnp::model::kernels::bf16 {
bool compiled() {
  return false;
}
int64_t packed_size(int64_t, int64_t) {
  return 0;
}
void pack_weights(const float*, int64_t, int64_t, uint16_t*) {}
void gemm_bias(const float*, int64_t, const uint16_t*, int64_t, const float*, float*, bool, bool,
               int64_t, int64_t) {}
}  // namespace cnp::model::kernels::bf16

#endif
