// Generic (any CPU) instantiation of the inference kernels and the runtime dispatch to the AVX2
// and AVX-512 ones. Hand-written because LibTorch's CPU convolutions (oneDNN in Debian's build)
// run one layer at a time and reorder between their blocked layout and LibTorch's at every call
// (ONEDNN_VERBOSE on an XS forward: about three reorders per convolution), so a ConvNeXt block
// cannot stay in cache; and its softmax would materialise the whole heatmap volume.
#include "model/inference_kernels.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>

#include "common/error.h"
#include "model/inference_kernels_avx2.h"
#include "model/inference_kernels_bf16.h"

#define CNP_KERNEL_NS generic
#include "model/inference_kernels_impl.h"

namespace cnp::model::kernels {

namespace {
enum class Isa { kGeneric, kAvx2, kAvx512 };

// CNP_CPU_ISA's value; nullopt for one that names no instruction set of these kernels.
std::optional<Isa> parse_isa(const char* value) {
  const std::string text = value ? value : "";
  if (text == "generic") return Isa::kGeneric;
  if (text == "avx2") return Isa::kAvx2;
  if (text.empty() || text == "avx512") return Isa::kAvx512;
  return std::nullopt;
}

// An invalid value caps nothing here: check_isa_setting() reports it when a model is built.
Isa isa_cap() {
  static const Isa cap = parse_isa(std::getenv("CNP_CPU_ISA")).value_or(Isa::kAvx512);
  return cap;
}

bool use_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool yes =
      isa_cap() >= Isa::kAvx512 && avx512::compiled() && __builtin_cpu_supports("avx512f");
  return yes;
#else
  return false;
#endif
}

bool use_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool yes = isa_cap() >= Isa::kAvx2 && avx2::compiled() &&
                          __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}
}  // namespace

void check_isa_setting() {
  const char* value = std::getenv("CNP_CPU_ISA");
  if (!parse_isa(value))
    throw Error(std::string("CNP_CPU_ISA: '") + value +
                "' is not an instruction set the kernels have (avx512, avx2 or generic)");
}

const char* kernel_isa() {
  return use_avx512() ? "avx512" : use_avx2() ? "avx2" : "generic";
}

void depthwise_conv_nhwc(const float* in, const float* weight, const float* bias, float* out,
                         int64_t height, int64_t width, int64_t channels, int kernel, bool relu,
                         int64_t row_begin, int64_t row_end) {
  if (use_avx512())
    return avx512::depthwise_conv_nhwc(in, weight, bias, out, height, width, channels, kernel, relu,
                                       row_begin, row_end);
  if (use_avx2())
    return avx2::depthwise_conv_nhwc(in, weight, bias, out, height, width, channels, kernel, relu,
                                     row_begin, row_end);
  generic::depthwise_conv_rows<generic::ScalarLanes>(in, weight, bias, out, height, width, channels,
                                                     kernel, relu, row_begin, row_end);
}

int64_t fused_tile_rows(int64_t rows, int64_t width, int threads) {
  int64_t tile_rows = std::max<int64_t>(1, (96 + width - 1) / width);
  const int64_t min_tiles = 8 * static_cast<int64_t>(std::max(1, threads));
  while (tile_rows > 1 && (rows + tile_rows - 1) / tile_rows < min_tiles)
    tile_rows = (tile_rows + 1) / 2;
  return tile_rows;
}

bool gemm_available() {
  return use_avx2();
}

int64_t gemm_packed_size(int64_t n, int64_t k) {
  const int64_t p = use_avx512() ? avx512::gemm_panel_width()
                    : use_avx2() ? avx2::gemm_panel_width()
                                 : 1;
  return (n + p - 1) / p * p * k;
}

void pack_gemm_weights(const float* w, int64_t n, int64_t k, float* packed) {
  if (use_avx512())
    avx512::pack_gemm_weights(w, n, k, packed);
  else if (use_avx2())
    avx2::pack_gemm_weights(w, n, k, packed);
}

void gemm_bias(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end) {
  if (use_avx512())
    avx512::gemm_bias(a, k, packed, n, bias, out, residual, relu, row_begin, row_end);
  else if (use_avx2())
    avx2::gemm_bias(a, k, packed, n, bias, out, residual, relu, row_begin, row_end);
}

bool gemm_bf16_available() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool yes = bf16::compiled() && use_avx512() && __builtin_cpu_supports("avx512bf16");
  return yes;
#else
  return false;
#endif
}

int64_t gemm_bf16_packed_size(int64_t n, int64_t k) {
  return bf16::packed_size(n, k);
}

void pack_gemm_weights_bf16(const float* w, int64_t n, int64_t k, uint16_t* packed) {
  if (gemm_bf16_available()) bf16::pack_weights(w, n, k, packed);
}

void gemm_bias_bf16(const float* a, int64_t k, const uint16_t* packed, int64_t n, const float* bias,
                    float* out, const float* residual, bool relu, int64_t row_begin,
                    int64_t row_end) {
  if (gemm_bf16_available())
    bf16::gemm_bias(a, k, packed, n, bias, out, residual, relu, row_begin, row_end);
}

const char* gemm_bf16_isa() {
  return bf16::uses_amx() ? "amx" : "avx512_bf16";
}

void soft_argmax_nhwc(const float* logits, int64_t joints, int64_t depth, int64_t height,
                      int64_t width, bool upsample2x, float* out, int64_t item_begin,
                      int64_t item_end) {
  if (use_avx512())
    return avx512::soft_argmax_nhwc(logits, joints, depth, height, width, upsample2x, out,
                                    item_begin, item_end);
  if (use_avx2())
    return avx2::soft_argmax_nhwc(logits, joints, depth, height, width, upsample2x, out, item_begin,
                                  item_end);
  generic::soft_argmax_items<generic::ScalarLanes>(logits, joints, depth, height, width, upsample2x,
                                                   out, item_begin, item_end);
}

}  // namespace cnp::model::kernels
