// AVX-512F instantiation of the inference kernels (16 lanes; the same algorithms as
// inference_kernels_avx2.cpp). CMake compiles this file alone with -mavx512f;
// inference_kernels.cpp calls it only after checking the CPU.
#include "model/inference_kernels_avx2.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#define CNP_KERNEL_NS avx512
#include "model/inference_kernels_avx512_store.h"
#include "model/inference_kernels_impl.h"

namespace cnp::model::kernels::avx512 {
namespace {

struct Avx512Lanes {
  using T = __m512;
  static constexpr int width = 16;
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  // As Avx2Lanes::exp (inference_kernels_avx2.cpp, x <= 0), with AVX-512's scalef for the 2^n.
  static T exp(T x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);  // a NaN stays NaN (see Avx2Lanes::exp)
    const T magic = _mm512_set1_ps(12582912.0f);   // 1.5 * 2^23: rounds to an integer
    const T n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504f), magic), magic);
    T r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    T p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);  // p * 2^n in one instruction
  }
  // The halving order of _mm512_reduce_add_ps / _mm512_reduce_max_ps, written out: GCC 12 warns
  // (-Wuninitialized) inside those, and inside _mm512_castps512_ps256, where they are inlined
  // into the decoder, on the _mm256_undefined_pd of the extract they are built on.
  template <class Half, class Quarter>
  static float reduce(T v, Half half, Quarter quarter) {
    const __m256 s8 = half(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15),
                           __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7));
    const __m128 s4 = quarter(_mm256_extractf128_ps(s8, 1), _mm256_castps256_ps128(s8));
    const __m128 s2 = quarter(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(quarter(s2, _mm_movehdup_ps(s2)));
  }
  static float hsum(T v) {
    return reduce(
        v, [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); },
        [](__m128 a, __m128 b) { return _mm_add_ps(a, b); });
  }
  static float hmax(T v) {
    return reduce(
        v, [](__m256 a, __m256 b) { return _mm256_max_ps(a, b); },
        [](__m128 a, __m128 b) { return _mm_max_ps(a, b); });
  }
  using Mask = __mmask16;
  static Mask mask(int64_t count) { return avx512_store::lanes(count); }
  static T load_masked(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_masked(float* p, Mask m, T v) { _mm512_mask_storeu_ps(p, m, v); }
};
// 8 lanes for the depthwise kernel's channel tails (e.g. 40 = 2 x 16 + 8).
struct HalfLanes {
  using T = __m256;
  static constexpr int width = 8;
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
};

// How many k steps ahead gemm_micro_512 prefetches its panel rows into L1 (16 to 64 measured
// alike; 8 gained less on stage 3).
constexpr int64_t kPrefetchSteps = 32;

// ROWS x (16 * NV) block of the GEMM over all of k; the packed panels are 32 columns wide
// (NV = 1 for a last panel of at most 16 columns; NV = 3 for a full panel and the first 16
// columns of the next). 12 x 32 keeps 24 accumulators in registers (the generic 6 x 32 kernel
// ran at 60-90 GFLOP/s of this CPU's ~160: too few FMAs per broadcast and its epilogue went
// through memory). Column tails by masks.
template <int ROWS, int NV>
void gemm_micro_512(const float* a, int64_t lda, const float* panel, int64_t k, const float* bias,
                    float* out, int64_t ldo, int64_t cols, const float* residual, bool relu) {
  __m512 acc[ROWS][NV];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < k; ++kk) {
    // The panel's row kPrefetchSteps ahead into L1 (past the panel's end: the next panel's, or
    // an address nothing reads, which a prefetch never faults on, hence integer arithmetic).
    // A panel over L1's size otherwise arrived late from L2 or, for stage 3's 2.4 MB of
    // weights, from L3. A/B pairs on one thread (bench/kernel_ab.sh): S's stage-3 1x1 convs
    // 1.10x and 1.19x, stage 2's second 1.03x; stages 0-1, whose panels fit L1, lost 0-1.5%,
    // and switching it off for them at run time cost more than that.
    const uintptr_t ahead =
        reinterpret_cast<uintptr_t>(panel) + sizeof(float) * (kk + kPrefetchSteps) * 32;
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      _mm_prefetch(
          reinterpret_cast<const char*>(ahead + sizeof(float) * ((v / 2) * k * 32 + (v % 2) * 16)),
          _MM_HINT_T0);
    __m512 b[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      b[v] = _mm512_loadu_ps(panel + (v / 2) * k * 32 + kk * 32 + (v % 2) * 16);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + kk]);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
    }
  }
  avx512_store::store_tile<ROWS, NV>(acc, bias, out, ldo, cols, residual, relu);
}

using Micro512 = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*,
                          int64_t, int64_t, const float*, bool);
template <int NV>
constexpr Micro512 kMicro512[13] = {nullptr,
                                    gemm_micro_512<1, NV>,
                                    gemm_micro_512<2, NV>,
                                    gemm_micro_512<3, NV>,
                                    gemm_micro_512<4, NV>,
                                    gemm_micro_512<5, NV>,
                                    gemm_micro_512<6, NV>,
                                    gemm_micro_512<7, NV>,
                                    gemm_micro_512<8, NV>,
                                    gemm_micro_512<9, NV>,
                                    gemm_micro_512<10, NV>,
                                    gemm_micro_512<11, NV>,
                                    gemm_micro_512<12, NV>};

// 8 x 48: 24 accumulators, as 12 x 32 has.
constexpr Micro512 kMicro512x48[9] = {nullptr,
                                      gemm_micro_512<1, 3>,
                                      gemm_micro_512<2, 3>,
                                      gemm_micro_512<3, 3>,
                                      gemm_micro_512<4, 3>,
                                      gemm_micro_512<5, 3>,
                                      gemm_micro_512<6, 3>,
                                      gemm_micro_512<7, 3>,
                                      gemm_micro_512<8, 3>};

void gemm_rows_12(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
                  float* out, const float* residual, bool relu, int64_t row_begin,
                  int64_t row_end) {
  // A block of rows stays in L2 over all panels. (Slicing k so that a panel slice stays in
  // L1 measured no faster here, even at k = 512 to 1536.)
  constexpr int64_t P = 32, kRows = 12, kBlock = 96;
  const int64_t panels = (n + P - 1) / P;
  // A last panel of at most 16 columns after a full one (n = 40, 48, 80: the first stages'
  // second 1x1 conv) runs with that full panel as 8 x 48 tiles: its own 12 x 16 tiles do one
  // FMA per load. A 128 x 192 x 48 GEMM ran 17% faster so, 128 x 160 x 40 8% (paired runs).
  const bool tail_of_48 = panels >= 2 && n - (panels - 1) * P <= 16;
  const int64_t panels_of_32 = tail_of_48 ? panels - 2 : panels;
  for (int64_t block = row_begin; block < row_end; block += kBlock) {
    const int64_t block_end = imin(block + kBlock, row_end);
    for (int64_t p = 0; p < panels_of_32; ++p) {
      const float* panel = packed + p * k * P;
      const int64_t col = p * P, cols = imin(P, n - col);
      const Micro512* micro = cols > 16 ? kMicro512<2> : kMicro512<1>;
      for (int64_t m = block; m < block_end; m += kRows) {
        const int64_t rows = imin(kRows, block_end - m);
        micro[rows](a + m * k, k, panel, k, bias + col, out + m * n + col, n, cols,
                    residual ? residual + m * n + col : nullptr, relu);
      }
    }
    if (!tail_of_48) continue;
    const int64_t col = panels_of_32 * P;
    for (int64_t m = block; m < block_end; m += 8)
      kMicro512x48[imin(8, block_end - m)](a + m * k, k, packed + panels_of_32 * k * P, k,
                                           bias + col, out + m * n + col, n, n - col,
                                           residual ? residual + m * n + col : nullptr, relu);
  }
}

}  // namespace

bool compiled() {
  return true;
}

void depthwise_conv_nhwc(const float* in, const float* weight, const float* bias, float* out,
                         int64_t height, int64_t width, int64_t channels, int kernel, bool relu,
                         int64_t row_begin, int64_t row_end) {
  // 7 x 7 in strips of 16 pixels where rows allow: 16 accumulators leave each one's chain of
  // FMAs (4 cycles apiece) half the strip's time instead of all of it. With the strip's
  // grouped addressing (inference_kernels_impl.h), in A/B pairs (bench/kernel_ab.sh):
  // 1.14-1.16x on S's 64, 32 and 16 pixel wide stages, 1.07x on the 8 wide one (strips of 8).
  // 3 x 3 ran up to 14% slower in strips of 16 at 32 and 64 pixels: loads, not chains, bind it.
  if (kernel == 7 && width % 16 == 0)
    return depthwise_strips<Avx512Lanes, 7, 16>(in, weight, bias, out, height, width, channels,
                                                relu, row_begin, row_end);
  if (kernel == 7)
    return depthwise_strips<Avx512Lanes, 7, 8>(in, weight, bias, out, height, width, channels, relu,
                                               row_begin, row_end);
  if (kernel == 3)
    return depthwise_strips<Avx512Lanes, 3, 8>(in, weight, bias, out, height, width, channels, relu,
                                               row_begin, row_end);
  depthwise_conv_rows<Avx512Lanes, HalfLanes>(in, weight, bias, out, height, width, channels,
                                              kernel, relu, row_begin, row_end);
}

void soft_argmax_nhwc(const float* logits, int64_t joints, int64_t depth, int64_t height,
                      int64_t width, bool upsample2x, float* out, int64_t item_begin,
                      int64_t item_end) {
  if (depth % Avx512Lanes::width == 0)
    soft_argmax_items<Avx512Lanes>(logits, joints, depth, height, width, upsample2x, out,
                                   item_begin, item_end);
  else
    soft_argmax_items<ScalarLanes>(logits, joints, depth, height, width, upsample2x, out,
                                   item_begin, item_end);
}

int64_t gemm_panel_width() {
  return panel_width<Avx512Lanes>();
}

void pack_gemm_weights(const float* w, int64_t n, int64_t k, float* packed) {
  pack_panels<Avx512Lanes>(w, n, k, packed);
}

void gemm_bias(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end) {
  gemm_rows_12(a, k, packed, n, bias, out, residual, relu, row_begin, row_end);
}

}  // namespace cnp::model::kernels::avx512

#else  // not an x86 compiler with AVX-512: the dispatcher never calls these
// Defined by qualified name, so that a signature that drifts from the header is a compile error
// (tests/model's model_kernel_fallbacks compiles this branch on x86 too).
namespace cnp::model::kernels {
bool avx512::compiled() {
  return false;
}
void avx512::depthwise_conv_nhwc(const float*, const float*, const float*, float*, int64_t, int64_t,
                                 int64_t, int, bool, int64_t, int64_t) {}
void avx512::soft_argmax_nhwc(const float*, int64_t, int64_t, int64_t, int64_t, bool, float*,
                              int64_t, int64_t) {}
int64_t avx512::gemm_panel_width() {
  return 0;
}
void avx512::pack_gemm_weights(const float*, int64_t, int64_t, float*) {}
void avx512::gemm_bias(const float*, int64_t, const float*, int64_t, const float*, float*,
                       const float*, bool, int64_t, int64_t) {}
}  // namespace cnp::model::kernels

#endif
