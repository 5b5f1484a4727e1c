#pragma once
// The AVX2 and AVX-512 entry points behind inference_kernels.h (same contracts); call
// only where compiled() is true and the CPU has the instructions.
#include <cstdint>

namespace cnp::model::kernels::avx2 {
bool compiled();
void depthwise_conv_nhwc(const float* in, const float* weight, const float* bias, float* out,
                         int64_t height, int64_t width, int64_t channels, int kernel, bool relu,
                         int64_t row_begin, int64_t row_end);
void soft_argmax_nhwc(const float* logits, int64_t joints, int64_t depth, int64_t height,
                      int64_t width, bool upsample2x, float* out, int64_t item_begin,
                      int64_t item_end);
int64_t gemm_panel_width();
void pack_gemm_weights(const float* w, int64_t n, int64_t k, float* packed);
void gemm_bias(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end);
}  // namespace cnp::model::kernels::avx2

namespace cnp::model::kernels::avx512 {
bool compiled();
void depthwise_conv_nhwc(const float* in, const float* weight, const float* bias, float* out,
                         int64_t height, int64_t width, int64_t channels, int kernel, bool relu,
                         int64_t row_begin, int64_t row_end);
void soft_argmax_nhwc(const float* logits, int64_t joints, int64_t depth, int64_t height,
                      int64_t width, bool upsample2x, float* out, int64_t item_begin,
                      int64_t item_end);
int64_t gemm_panel_width();
void pack_gemm_weights(const float* w, int64_t n, int64_t k, float* packed);
void gemm_bias(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end);
}  // namespace cnp::model::kernels::avx512
