// precision bf16 on a CPU with native bf16 (AVX512_BF16): the bf16 GEMM kernel against fp32
// arithmetic on the same bf16-rounded operands, and the whole model against fp32 for every
// built-in variant, plain and flipped. Not a GoogleTest main: on a CPU without AVX512_BF16 (or
// a build without it) it reports itself skipped to ctest (exit 77, SKIP_RETURN_CODE) with the
// reason, never passing silently.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "model/architecture.h"
#include "model/inference_kernels.h"
#include "model/inference_kernels_bf16.h"
#include "model/pose_model.h"
#include "tests/model/model_test_inputs.h"

namespace cnp::model {
namespace {

// The bf16 rounding of x, back in fp32 (what the kernel multiplies).
torch::Tensor bf16_rounded(const torch::Tensor& x) {
  return x.to(torch::kBFloat16).to(torch::kFloat);
}

// Both kernels: AMX tiles where the CPU has them, and VDPBF16PS (what AMX-less AVX512_BF16
// CPUs run) forced off AMX.
class Bf16Gemm : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    kernels::bf16::allow_amx(GetParam());
    std::printf("[ bf16 ] GEMM on %s\n", kernels::gemm_bf16_isa());
  }
  void TearDown() override { kernels::bf16::allow_amx(true); }
};

TEST_P(Bf16Gemm, EqualsFp32ArithmeticOnBf16RoundedOperands) {
  torch::manual_seed(6);
  for (int64_t m : {1, 13, 25, 200}) {        // 12-row and 32-row blocks, tails
    for (int64_t n : {16, 20, 40, 48, 72}) {  // whole panels, partial ones of <= 16 and > 16
      for (int64_t k : {2, 3, 48, 50, 97}) {  // odd k, k past one 32-deep tile: zero padding
        SCOPED_TRACE(::testing::Message() << "m" << m << " n" << n << " k" << k);
        auto a = torch::randn({m, k}), w = torch::randn({n, k}), bias = torch::randn({n});
        auto packed = torch::empty({kernels::gemm_bf16_packed_size(n, k)}, torch::kBFloat16);
        auto* p = static_cast<uint16_t*>(packed.data_ptr());
        kernels::pack_gemm_weights_bf16(w.data_ptr<float>(), n, k, p);
        // Products of bf16 values are exact in fp32; only the fp32 summation order differs.
        auto exact = torch::addmm(bias.to(torch::kDouble), bf16_rounded(a).to(torch::kDouble),
                                  bf16_rounded(w).to(torch::kDouble).t());
        auto out = torch::empty({m, n});
        kernels::gemm_bias_bf16(a.data_ptr<float>(), k, p, n, bias.data_ptr<float>(),
                                out.data_ptr<float>(), nullptr, true, 0, m);
        EXPECT_LT((out.to(torch::kDouble) - exact.relu()).abs().max().item<double>(), 1e-4);
        // The residual added in place, and read from another buffer (left as it was).
        auto residual = torch::randn({m, n});
        auto sum = residual.clone(), apart = torch::empty({m, n});
        kernels::gemm_bias_bf16(a.data_ptr<float>(), k, p, n, bias.data_ptr<float>(),
                                sum.data_ptr<float>(), sum.data_ptr<float>(), false, 0, m);
        const auto kept = residual.clone();
        kernels::gemm_bias_bf16(a.data_ptr<float>(), k, p, n, bias.data_ptr<float>(),
                                apart.data_ptr<float>(), residual.data_ptr<float>(), false, 0, m);
        for (const auto& result : {sum, apart})
          EXPECT_LT((result.to(torch::kDouble) - (kept.to(torch::kDouble) + exact))
                        .abs()
                        .max()
                        .item<double>(),
                    1e-4);
        EXPECT_TRUE(torch::equal(residual, kept));
        // Row ranges: rows outside [begin, end) are left alone.
        auto part = torch::full({m, n}, 7.0f);
        const int64_t begin = m / 3, end = m - m / 4;
        kernels::gemm_bias_bf16(a.data_ptr<float>(), k, p, n, bias.data_ptr<float>(),
                                part.data_ptr<float>(), nullptr, false, begin, end);
        if (begin > 0) {
          EXPECT_TRUE((part.slice(0, 0, begin) == 7.0f).all().item<bool>());
        }
        EXPECT_LT((part.slice(0, begin, end).to(torch::kDouble) - exact.slice(0, begin, end))
                      .abs()
                      .max()
                      .item<double>(),
                  1e-4);
      }
    }
  }
}

TEST_P(Bf16Gemm, NanInputGivesNanOutputs) {
  const int64_t m = 3, n = 20, k = 8;
  auto a = torch::randn({m, k}), w = torch::randn({n, k}), bias = torch::zeros({n});
  a.index_put_({1, 5}, NAN);
  auto packed = torch::empty({kernels::gemm_bf16_packed_size(n, k)}, torch::kBFloat16);
  kernels::pack_gemm_weights_bf16(w.data_ptr<float>(), n, k,
                                  static_cast<uint16_t*>(packed.data_ptr()));
  auto out = torch::empty({m, n});
  kernels::gemm_bias_bf16(a.data_ptr<float>(), k, static_cast<uint16_t*>(packed.data_ptr()), n,
                          bias.data_ptr<float>(), out.data_ptr<float>(), nullptr, true, 0, m);
  EXPECT_TRUE(torch::isnan(out[1]).all().item<bool>());  // through the ReLU too
  EXPECT_TRUE(torch::isfinite(out[0]).all().item<bool>());
}

INSTANTIATE_TEST_SUITE_P(AmxAllowed, Bf16Gemm, ::testing::Bool());

using namespace test_inputs;

struct Coordinates {
  std::vector<float> plain, flipped;
};

Coordinates run(const Architecture& arch, const std::string& precision, bool optimize,
                const std::vector<float>& input, int n, bool* optimized) {
  ModelOptions o;
  o.device = "cpu";
  o.precision = precision;
  o.optimize = optimize;
  o.flip_pairs = kFlipPairs;
  const auto model = PoseModel::random(arch, 11, o);
  *optimized = model->optimized();
  Coordinates out;
  out.plain.resize(static_cast<size_t>(n) * arch.joints * 3);
  out.flipped.resize(out.plain.size());
  model->predict(input.data(), n, out.plain.data(), out.flipped.data());
  return out;
}

class CpuBf16 : public ::testing::TestWithParam<std::string> {};

// bf16 keeps 8 significant bits, and these random-weight networks amplify rounding: even
// LibTorch's own bf16 network (everything in bf16) lands 0.3-0.9 heatmap units from fp32 on
// average, up to ~9 at worst. Bound: the native path (bf16 GEMMs, the rest fp32) is on
// average at most 1.5x as far from fp32 as LibTorch's bf16 network (plain and flipped
// separately), and never more than 8 heatmap units (an eighth of the 64-voxel map). Measured
// on a Xeon with AVX512_BF16, plain: mean 0.27/0.29/0.53/0.64 vs LibTorch's 0.26/0.41/0.90/0.70
// (XS/S/M/L).
TEST_P(CpuBf16, AsCloseToFp32AsLibTorchsBf16) {
  const Architecture arch = VariantRegistry::with_builtins().get(GetParam()).arch;
  const int n = 4;
  const auto input = images(n, 5);
  bool optimized = false;
  const Coordinates fp32 = run(arch, "fp32", true, input, n, &optimized);
  ASSERT_TRUE(optimized);
  const Coordinates bf16 = run(arch, "bf16", true, input, n, &optimized);
  ASSERT_TRUE(optimized) << "bf16 must run the native path here, not LibTorch's";
  const Coordinates libtorch = run(arch, "bf16", false, input, n, &optimized);
  ASSERT_FALSE(optimized);
  const Diff plain = compare(bf16.plain, fp32.plain), flipped = compare(bf16.flipped, fp32.flipped);
  const Diff lt = compare(libtorch.plain, fp32.plain),
             lt_flipped = compare(libtorch.flipped, fp32.flipped);
  std::printf(
      "[ bf16 ] %-2s (%s) |bf16 - fp32| max %.2f mean %.3f (flipped max %.2f mean %.3f); LibTorch "
      "bf16: max %.2f mean %.3f (flipped mean %.3f) heatmap units\n",
      GetParam().c_str(), kernels::gemm_bf16_isa(), plain.max, plain.mean, flipped.max,
      flipped.mean, lt.max, lt.mean, lt_flipped.mean);
  EXPECT_GT(plain.max, 0.0) << "bf16 gave exactly the fp32 coordinates: bf16 did not run";
  EXPECT_LE(plain.mean, 1.5 * lt.mean);
  EXPECT_LE(flipped.mean, 1.5 * lt_flipped.mean);
  EXPECT_LE(plain.max, 8.0);
  EXPECT_LE(flipped.max, 8.0);
}

INSTANTIATE_TEST_SUITE_P(Variants, CpuBf16, ::testing::Values("XS", "S", "M", "L"));

}  // namespace
}  // namespace cnp::model

int main(int argc, char** argv) {
  if (!cnp::model::kernels::gemm_bf16_available()) {
    std::printf("model_cpu_bf16: skipped: this CPU (or this build) has no AVX512_BF16\n");
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
