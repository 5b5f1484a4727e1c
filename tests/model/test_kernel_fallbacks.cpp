// The non-x86 branches of the ISA kernel files (what an ARM or POWER build compiles): this
// target compiles those three files without their -mavx* flags, so their fallback definitions
// are built here too, and calls every function their headers declare. A fallback whose
// signature no longer matches its header fails to compile (they are defined by qualified name)
// or, at the latest, to link this test. They must report themselves absent and touch nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "model/inference_kernels_avx2.h"
#include "model/inference_kernels_bf16.h"

namespace {

namespace kernels = cnp::model::kernels;

TEST(KernelFallbacks, ReportThemselvesAbsent) {
#if defined(__AVX2__) || defined(__AVX512F__)
  FAIL() << "this test must be compiled without ISA flags (see tests/model/CMakeLists.txt)";
#endif
  EXPECT_FALSE(kernels::avx2::compiled());
  EXPECT_FALSE(kernels::avx512::compiled());
  EXPECT_FALSE(kernels::bf16::compiled());
  EXPECT_FALSE(kernels::bf16::uses_amx());
  EXPECT_EQ(kernels::avx2::gemm_panel_width(), 0);
  EXPECT_EQ(kernels::avx512::gemm_panel_width(), 0);
  EXPECT_EQ(kernels::bf16::packed_size(64, 32), 0);
}

TEST(KernelFallbacks, EveryDeclaredFunctionExistsAndWritesNothing) {
  const std::vector<float> in(4 * 4 * 16, 1.0f), weight(49 * 16, 1.0f), bias(16, 1.0f);
  std::vector<float> out(4 * 4 * 16, -7.0f);
  std::vector<uint16_t> packed16(64, 3);
  kernels::bf16::allow_amx(true);
  kernels::avx2::depthwise_conv_nhwc(in.data(), weight.data(), bias.data(), out.data(), 4, 4, 16, 7,
                                     false, 0, 4);
  kernels::avx512::depthwise_conv_nhwc(in.data(), weight.data(), bias.data(), out.data(), 4, 4, 16,
                                       7, false, 0, 4);
  kernels::avx2::soft_argmax_nhwc(in.data(), 1, 16, 2, 2, false, out.data(), 0, 1);
  kernels::avx512::soft_argmax_nhwc(in.data(), 1, 16, 2, 2, false, out.data(), 0, 1);
  kernels::avx2::pack_gemm_weights(weight.data(), 16, 16, out.data());
  kernels::avx512::pack_gemm_weights(weight.data(), 16, 16, out.data());
  kernels::bf16::pack_weights(weight.data(), 4, 4, packed16.data());
  kernels::avx2::gemm_bias(in.data(), 16, weight.data(), 16, bias.data(), out.data(), in.data(),
                           true, 0, 4);
  kernels::avx512::gemm_bias(in.data(), 16, weight.data(), 16, bias.data(), out.data(), in.data(),
                             true, 0, 4);
  kernels::bf16::gemm_bias(in.data(), 16, packed16.data(), 16, bias.data(), out.data(), nullptr,
                           false, 0, 4);
  for (float v : out) ASSERT_EQ(v, -7.0f);
  for (uint16_t v : packed16) ASSERT_EQ(v, 3);
}

}  // namespace
