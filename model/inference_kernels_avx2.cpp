// AVX2+FMA instantiation of the inference kernels. CMake compiles this file alone with
// -mavx2 -mfma; inference_kernels.cpp calls it only after checking the CPU. The vector
// exp is hand-written because the compiler cannot vectorise std::exp and LibTorch's
// vectorised exp (ATen's Sleef wrappers) is not a public API.
#include "model/inference_kernels_avx2.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define CNP_KERNEL_NS avx2
#include "model/inference_kernels_impl.h"

namespace cnp::model::kernels::avx2 {
namespace {

struct Avx2Lanes {
  using T = __m256;
  static constexpr int width = 8;
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  // e^x for x <= 0 (the decoder's logits less their maximum) = 2^n * e^r with n = round(x /
  // ln 2), |r| <= ln2 / 2 (ln 2 split in two for an exact r), e^r by its degree-6 Taylor
  // polynomial (relative error < 2e-7). x is clamped to -87 so that 2^n stays a normal float
  // (a -infinite logit is then a weight of ~1e-38, not a NaN); a NaN x gives NaN. n is rounded by
  // adding and subtracting 1.5 * 2^23 (+ 127, the exponent's bias, which lands 2^n's exponent field
  // in the low bits): 3 instructions for n and 2^n where multiply, round, convert, add and shift
  // took 5.
  static T exp(T x) {
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);  // a NaN stays NaN (the second operand)
    const T magic = _mm256_set1_ps(12582912.0f + 127.0f);
    const T shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), magic);
    const T n = _mm256_sub_ps(shifted, magic);  // the bias cancels: n itself
    T r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    T p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    // n + 127 in the low bits of `shifted`; shifted into the exponent field, the rest drops out.
    const __m256i bits = _mm256_slli_epi32(_mm256_castps_si256(shifted), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
  static float hsum(T v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(T v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Lane i is on where its mask word is negative (AVX2's masked loads and stores).
  using Mask = __m256i;
  static Mask mask(int64_t count) {
    const int c = count < 0 ? 0 : count > 8 ? 8 : static_cast<int>(count);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static T load_masked(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }
  static void store_masked(float* p, Mask m, T v) { _mm256_maskstore_ps(p, m, v); }
};

}  // namespace

bool compiled() {
  return true;
}

void depthwise_conv_nhwc(const float* in, const float* weight, const float* bias, float* out,
                         int64_t height, int64_t width, int64_t channels, int kernel, bool relu,
                         int64_t row_begin, int64_t row_end) {
  // Strips of 8 pixels: 8 accumulators, 7 weights and the input in AVX2's 16 registers, and
  // every feature-map width (64, 32, 16, 8) a whole number of strips.
  if (kernel == 7)
    return depthwise_strips<Avx2Lanes, 7, 8>(in, weight, bias, out, height, width, channels, relu,
                                             row_begin, row_end);
  if (kernel == 3)
    return depthwise_strips<Avx2Lanes, 3, 8>(in, weight, bias, out, height, width, channels, relu,
                                             row_begin, row_end);
  depthwise_conv_rows<Avx2Lanes>(in, weight, bias, out, height, width, channels, kernel, relu,
                                 row_begin, row_end);
}

void soft_argmax_nhwc(const float* logits, int64_t joints, int64_t depth, int64_t height,
                      int64_t width, bool upsample2x, float* out, int64_t item_begin,
                      int64_t item_end) {
  if (depth % Avx2Lanes::width == 0)
    soft_argmax_items<Avx2Lanes>(logits, joints, depth, height, width, upsample2x, out, item_begin,
                                 item_end);
  else
    soft_argmax_items<ScalarLanes>(logits, joints, depth, height, width, upsample2x, out,
                                   item_begin, item_end);
}

int64_t gemm_panel_width() {
  return panel_width<Avx2Lanes>();
}

void pack_gemm_weights(const float* w, int64_t n, int64_t k, float* packed) {
  pack_panels<Avx2Lanes>(w, n, k, packed);
}

void gemm_bias(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end) {
  gemm_rows<Avx2Lanes>(a, k, packed, n, bias, out, residual, relu, row_begin, row_end);
}

}  // namespace cnp::model::kernels::avx2

#else  // not an x86 compiler with AVX2: the dispatcher never calls these
// Defined by qualified name, so that a signature that drifts from the header is a compile error
// (tests/model's model_kernel_fallbacks compiles this branch on x86 too).
namespace cnp::model::kernels {
bool avx2::compiled() {
  return false;
}
void avx2::depthwise_conv_nhwc(const float*, const float*, const float*, float*, int64_t, int64_t,
                               int64_t, int, bool, int64_t, int64_t) {}
void avx2::soft_argmax_nhwc(const float*, int64_t, int64_t, int64_t, int64_t, bool, float*, int64_t,
                            int64_t) {}
int64_t avx2::gemm_panel_width() {
  return 0;
}
void avx2::pack_gemm_weights(const float*, int64_t, int64_t, float*) {}
void avx2::gemm_bias(const float*, int64_t, const float*, int64_t, const float*, float*,
                     const float*, bool, int64_t, int64_t) {}
}  // namespace cnp::model::kernels

#endif
