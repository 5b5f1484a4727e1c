// The optimized path's kernels against plain LibTorch ops: the fused soft-argmax decoder
// (with and without its on-the-fly 2x upsample) on random and on very peaky logits
// (+-80, where a softmax without a stable maximum overflows), and the NHWC depthwise
// convolution against torch::conv2d.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "model/inference_kernels.h"
#include "model/inference_kernels_avx2.h"
#include "model/parallel_tiles.h"
#include "model/soft_argmax.h"

using namespace cnp::model;

namespace {

// Reference: NCHW logits, upsampled with interpolate, decoded with the plain ops.
torch::Tensor reference(const torch::Tensor& nhwc, int64_t joints, int64_t depth, bool upsample) {
  torch::Tensor nchw = nhwc.permute({0, 3, 1, 2}).to(torch::kDouble).contiguous();
  if (upsample)
    nchw = torch::nn::functional::interpolate(
        nchw, torch::nn::functional::InterpolateFuncOptions()
                  .size(std::vector<int64_t>{2 * nchw.size(2), 2 * nchw.size(3)})
                  .mode(torch::kBilinear)
                  .align_corners(true));
  return soft_argmax_reference(nchw, joints, depth);
}

struct Case {
  int64_t n, joints, depth, height, width;
  bool upsample;
};

void expect_decoder_matches(const Case& c, const torch::Tensor& logits, const char* what,
                            bool spread_out) {
  SCOPED_TRACE(::testing::Message()
               << what << " n" << c.n << " j" << c.joints << " d" << c.depth << " " << c.height
               << "x" << c.width << (c.upsample ? " up" : ""));
  const auto fused = fused_soft_argmax(logits, c.joints, c.depth, c.upsample);
  const auto want = reference(logits, c.joints, c.depth, c.upsample);
  ASSERT_EQ(fused.sizes(), want.sizes());
  ASSERT_TRUE(torch::isfinite(fused).all().item<bool>());
  const double error = (fused - want).abs().max().item<double>();
  EXPECT_LT(error, 1e-3);
  std::printf("[ decoder ] %s: max |fused - plain ops| %.2e\n", what, error);
  // Not trivially centred: coordinates spread over the grid.
  if (spread_out) {
    EXPECT_GT(want.std().item<double>(), 0.5);
  }
}

const std::vector<Case> kCases = {
    {2, 18, 32, 32, 32, false},  // XS, S: 32^3 volume per joint
    {2, 18, 64, 32, 32, true},   // M, L: final conv moved before the last upsample
    {3, 4, 5, 7, 9, false},      // depth not a multiple of the vector width
    {1, 3, 12, 5, 6, true},
};

}  // namespace

TEST(Decoder, MatchesPlainOpsOnRandomLogits) {
  torch::manual_seed(1);
  for (const Case& c : kCases) {
    auto logits = 3.0 * torch::randn({c.n, c.height, c.width, c.joints * c.depth});
    expect_decoder_matches(c, logits, "randn*3", true);
  }
}

TEST(Decoder, MatchesPlainOpsOnVeryPeakyLogits) {
  torch::manual_seed(2);
  for (const Case& c : kCases) {
    auto logits = torch::rand({c.n, c.height, c.width, c.joints * c.depth}) * 160.0 - 80.0;
    // Many voxels lie within a unit of the maximum: coordinates average out near the
    // centre, so only the agreement is checked here, the spread by the case below.
    expect_decoder_matches(c, logits, "uniform +-80", false);
    // One dominant voxel per joint whose neighbours are far below it: the decoder's
    // running maximum starts low and must rescale.
    auto spiky = torch::full({c.n, c.height, c.width, c.joints * c.depth}, -80.0);
    spiky.index_put_({torch::indexing::Slice(), c.height - 1, c.width / 2}, 80.0);
    const auto fused = fused_soft_argmax(spiky, c.joints, c.depth, c.upsample);
    const auto want = reference(spiky, c.joints, c.depth, c.upsample);
    ASSERT_TRUE(torch::isfinite(fused).all().item<bool>());
    EXPECT_LT((fused - want).abs().max().item<double>(), 1e-3);
    const double upsampled_row = c.upsample ? 2 * c.height - 1 : c.height - 1;
    EXPECT_NEAR(want[0][0][1].item<double>(), upsampled_row, 0.5) << "peak row";
  }
}

TEST(Decoder, LargeLogitsDoNotOverflow) {
  // A naive exp(logit) overflows float above ~88.7.
  auto logits = torch::rand({1, 8, 8, 2 * 8}) * 40.0 + 1000.0;
  const auto fused = fused_soft_argmax(logits, 2, 8, true);
  ASSERT_TRUE(torch::isfinite(fused).all().item<bool>());
  EXPECT_LT((fused - reference(logits, 2, 8, true)).abs().max().item<double>(), 1e-3);
}

TEST(Decoder, RefusesLogitsOfTheWrongShape) {
  EXPECT_THROW(fused_soft_argmax(torch::zeros({1, 4, 4, 10}), 3, 4, false), std::exception);
}

using DepthwiseFunction = void (*)(const float*, const float*, const float*, float*, int64_t,
                                   int64_t, int64_t, int, bool, int64_t, int64_t);

// `depthwise` against LibTorch's grouped conv: all rows, then a middle range of rows written to
// a buffer of exactly that size (what the fused path hands it).
static void expect_depthwise_matches_conv2d(DepthwiseFunction depthwise) {
  torch::manual_seed(3);
  for (int kernel : {3, 7}) {
    for (int64_t channels : {40, 20, 3}) {  // whole vectors, a masked tail, a tail alone
      // Strips of 8 pixels. 6: one partial strip; 19: a first, an interior and a partial one;
      // 8: one strip that is the whole row; 24: a first, an interior and a last strip (each of
      // these strips has its own branch-free code; the partial ones check every column). With
      // AVX-512 a 7 x 7 conv on rows a multiple of 16 wide runs strips of 16: 16 is one whole
      // row, 32 a first and a last strip, 48 a first, an interior and a last.
      for (int64_t w : {6, 19, 8, 24, 16, 32, 48}) {
        for (bool relu : {false, true}) {
          SCOPED_TRACE(::testing::Message() << kernel << "x" << kernel << " c" << channels << " w"
                                            << w << (relu ? " relu" : ""));
          const int64_t n = 2, h = 9;
          auto x = torch::randn({n, h, w, channels});
          auto weight = torch::randn({channels, 1, kernel, kernel});
          auto bias = torch::randn({channels});
          auto want =
              torch::conv2d(x.permute({0, 3, 1, 2}), weight, bias, 1, kernel / 2, 1, channels)
                  .permute({0, 2, 3, 1});
          if (relu) want = want.relu();
          auto khwc = weight.squeeze(1).permute({1, 2, 0}).contiguous();
          auto out = torch::empty_like(x);
          depthwise(x.data_ptr<float>(), khwc.data_ptr<float>(), bias.data_ptr<float>(),
                    out.data_ptr<float>(), h, w, channels, kernel, relu, 0, n * h);
          EXPECT_LT((out - want).abs().max().item<double>(), 1e-4);
          // Rows 7..11: the last rows of image 0 and the first of image 1.
          auto part = torch::empty({5, w, channels});
          depthwise(x.data_ptr<float>(), khwc.data_ptr<float>(), bias.data_ptr<float>(),
                    part.data_ptr<float>(), h, w, channels, kernel, relu, 7, 12);
          auto want_part = want.reshape({n * h, w, channels}).slice(0, 7, 12);
          EXPECT_LT((part - want_part).abs().max().item<double>(), 1e-4);
        }
      }
    }
  }
}

TEST(DepthwiseKernel, MatchesConv2d) {
  std::printf("[ kernels ] %s\n", kernels::kernel_isa());
  expect_depthwise_matches_conv2d(kernels::depthwise_conv_nhwc);
}

TEST(FusedTiles, NearNinetySixPixelsButEightTilesPerThread) {
  EXPECT_EQ(kernels::fused_tile_rows(8 * 64, 64, 2), 2);  // stage 0, batch 8: 128 pixels
  EXPECT_EQ(kernels::fused_tile_rows(8 * 16, 16, 2), 6);  // stage 2: 96 pixels, 22 tiles
  // Stage 3, batch 8, 2 threads: 12 rows would make 6 tiles, 6 make 11; 3 make 22 >= 16.
  EXPECT_EQ(kernels::fused_tile_rows(8 * 8, 8, 2), 3);
  EXPECT_EQ(kernels::fused_tile_rows(8 * 8, 8, 0), 6);  // as one thread: 11 tiles >= 8
  EXPECT_EQ(kernels::fused_tile_rows(3, 500, 4), 1);    // rows wider than a tile: one row
}

// One thread gets the same tiles as several: the fused path keeps a tile's intermediates in
// cache, so one thread (an MPI rank per core) must not get a whole layer in one call.
TEST(ParallelTiles, SameGrainSizedTilesOnAnyThreadCount) {
  const int saved = at::get_num_threads();
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    std::mutex mutex;
    std::vector<std::pair<int64_t, int64_t>> tiles;
    parallel_tiles(1000, 96, [&](int64_t begin, int64_t end) {
      std::lock_guard<std::mutex> lock(mutex);
      tiles.emplace_back(begin, end);
    });
    std::sort(tiles.begin(), tiles.end());
    ASSERT_EQ(tiles.size(), 11u) << threads << " threads";
    for (size_t t = 0; t < tiles.size(); ++t) {
      EXPECT_EQ(tiles[t].first, static_cast<int64_t>(t) * 96) << threads << " threads";
      EXPECT_EQ(tiles[t].second, std::min<int64_t>(1000, (t + 1) * 96)) << threads << " threads";
    }
  }
  at::set_num_threads(saved);
}

TEST(ParallelParts, EveryItemOnceInPartsWithinOneOfEachOther) {
  const int saved = at::get_num_threads();
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    for (auto [count, parts] :
         {std::pair<int64_t, int64_t>{128, 22}, {64, 22}, {1000, 16}, {5, 8}, {7, 1}}) {
      SCOPED_TRACE(::testing::Message()
                   << count << " in " << parts << ", " << threads << " threads");
      std::mutex mutex;
      std::vector<std::pair<int64_t, int64_t>> got;
      parallel_parts(count, parts, [&](int64_t begin, int64_t end) {
        std::lock_guard<std::mutex> lock(mutex);
        got.emplace_back(begin, end);
      });
      std::sort(got.begin(), got.end());
      ASSERT_EQ(static_cast<int64_t>(got.size()), std::min(count, parts));
      int64_t next = 0, smallest = count, largest = 0;
      for (auto [begin, end] : got) {
        EXPECT_EQ(begin, next);
        next = end;
        smallest = std::min(smallest, end - begin);
        largest = std::max(largest, end - begin);
      }
      EXPECT_EQ(next, count);
      EXPECT_GE(smallest, 1);
      EXPECT_LE(largest - smallest, 1);
    }
  }
  at::set_num_threads(saved);
  // A multiple of the threads, of parts about as large as asked (at most that large).
  EXPECT_EQ(balanced_parts(128, 6, 2), 22);  // 22 parts of 5-6 rows, not 21 of 6 and one of 2
  EXPECT_EQ(balanced_parts(128, 6, 3), 24);
  EXPECT_EQ(balanced_parts(64, 3, 2), 22);
  EXPECT_EQ(balanced_parts(10, 3, 4), 4);
  EXPECT_EQ(balanced_parts(512, 2, 1), 256);
}

TEST(GemmKernel, MatchesAddmmWithBiasReluAndResidual) {
  if (!kernels::gemm_available()) {
    GTEST_SKIP() << "no AVX2 on this CPU: the optimized network uses LibTorch's addmm";
  }
  torch::manual_seed(4);
  for (int64_t m : {1, 13, 25, 200}) {        // row blocks of 6 (AVX2) and 12 (AVX-512) and tails
    for (int64_t n : {16, 20, 40, 48, 72}) {  // whole panels, partial ones of <= 16 and > 16
      for (int64_t k : {3, 48}) {
        SCOPED_TRACE(::testing::Message() << "m" << m << " n" << n << " k" << k);
        auto a = torch::randn({m, k}), w = torch::randn({n, k}), bias = torch::randn({n});
        auto packed = torch::empty({kernels::gemm_packed_size(n, k)});
        kernels::pack_gemm_weights(w.data_ptr<float>(), n, k, packed.data_ptr<float>());
        auto out = torch::empty({m, n});
        kernels::gemm_bias(a.data_ptr<float>(), k, packed.data_ptr<float>(), n,
                           bias.data_ptr<float>(), out.data_ptr<float>(), nullptr, true, 0, m);
        EXPECT_LT((out - torch::addmm(bias, a, w.t()).relu()).abs().max().item<double>(), 1e-4);
        // The residual added in place, and read from another buffer (left as it was: the
        // fused path reads it from the block's input).
        auto residual = torch::randn({m, n});
        auto sum = residual.clone(), apart = torch::empty({m, n});
        kernels::gemm_bias(a.data_ptr<float>(), k, packed.data_ptr<float>(), n,
                           bias.data_ptr<float>(), sum.data_ptr<float>(), sum.data_ptr<float>(),
                           false, 0, m);
        const auto kept = residual.clone();
        kernels::gemm_bias(a.data_ptr<float>(), k, packed.data_ptr<float>(), n,
                           bias.data_ptr<float>(), apart.data_ptr<float>(),
                           residual.data_ptr<float>(), false, 0, m);
        for (const auto& result : {sum, apart})
          EXPECT_LT((result - (kept + torch::addmm(bias, a, w.t()))).abs().max().item<double>(),
                    1e-4);
        EXPECT_TRUE(torch::equal(residual, kept));
      }
    }
  }
}

// A NaN or +infinite logit (NaN weights) gives NaN coordinates for that joint, as the plain ops
// do; the vector max and exp must not turn it into finite numbers the sweep would accept. A
// -infinite logit is a probability of 0 there and here.
TEST(Decoder, NonFiniteLogitsGiveNanCoordinates) {
  for (bool upsample : {false, true}) {
    for (float bad : {NAN, INFINITY}) {
      const int64_t joints = 3, depth = 16, side = 8;
      torch::Tensor logits = torch::randn({1, side, side, joints * depth});
      logits.index_put_({0, 5, 2, 1 * depth + 7}, bad);  // joint 1 only
      const auto fused = fused_soft_argmax(logits, joints, depth, upsample);
      EXPECT_TRUE(torch::isnan(fused[0][1]).all().item<bool>()) << bad << " " << upsample;
      EXPECT_TRUE(torch::isfinite(fused[0][0]).all().item<bool>());
      EXPECT_TRUE(torch::isfinite(fused[0][2]).all().item<bool>());
    }
    torch::Tensor logits = torch::randn({1, 8, 8, 3 * 16});
    logits.index_put_({0, 5, 2, 16 + 7}, -INFINITY);
    const auto fused = fused_soft_argmax(logits, 3, 16, upsample);
    const auto want = reference(logits, 3, 16, upsample);
    EXPECT_LT((fused - want).abs().max().item<double>(), 1e-3);
  }
}

// Upsampled, a -infinite logit in input row or column 1 meets a bilinear weight of 0 at output
// row or column 0 (align_corners), and 0 * -inf is NaN: PyTorch's interpolate gives NaN there,
// so the plain ops' coordinates are NaN, and the decoder's must be too. The x case reaches the
// decoder's exp (the shift comes from the rows before the x interpolation), the y case its NaN
// check.
TEST(Decoder, InfiniteLogitTimesZeroWeightIsNanAsInPyTorch) {
  const int64_t joints = 3, depth = 16, side = 8;
  for (auto [y, x] : {std::pair<int64_t, int64_t>{5, 1}, {1, 3}}) {
    torch::Tensor logits = torch::randn({1, side, side, joints * depth});
    logits.index_put_({0, y, x, 1 * depth + 7}, -INFINITY);  // joint 1 only
    const auto want = reference(logits, joints, depth, true);
    ASSERT_TRUE(torch::isnan(want[0][1]).all().item<bool>()) << "plain ops, y " << y << " x " << x;
    const auto fused = fused_soft_argmax(logits, joints, depth, true);
    EXPECT_TRUE(torch::isnan(fused[0][1]).all().item<bool>()) << "y " << y << " x " << x;
    EXPECT_LT((fused[0][0] - want[0][0]).abs().max().item<double>(), 1e-3);
    EXPECT_LT((fused[0][2] - want[0][2]).abs().max().item<double>(), 1e-3);
  }
}

// The kernel decodes a sample's joints row by row together; any range of items, whole samples
// or cut anywhere, gives each item exactly what it gets decoded alone, a NaN joint included.
TEST(Decoder, ItemRangesGiveEachItemWhatItGetsAlone) {
  torch::manual_seed(5);
  const int64_t samples = 3, joints = 5, depth = 16, side = 6;
  for (bool upsample : {false, true}) {
    SCOPED_TRACE(upsample ? "upsample" : "no upsample");
    auto logits = torch::randn({samples, side, side, joints * depth}) * 8.0;
    logits.index_put_({1, 4, 3, 2 * depth + 5}, NAN);  // sample 1, joint 2
    const int64_t items = samples * joints;
    auto decode = [&](std::vector<std::pair<int64_t, int64_t>> ranges) {
      auto out = torch::full({items, 3}, -7.0f);
      for (auto [begin, end] : ranges)
        kernels::soft_argmax_nhwc(logits.data_ptr<float>(), joints, depth, side, side, upsample,
                                  out.data_ptr<float>(), begin, end);
      return out;
    };
    std::vector<std::pair<int64_t, int64_t>> alone;
    for (int64_t i = 0; i < items; ++i) alone.emplace_back(i, i + 1);
    const auto want = decode(alone);
    EXPECT_TRUE(torch::isnan(want[1 * joints + 2]).all().item<bool>());
    EXPECT_EQ(torch::isnan(want).sum().item<int64_t>(), 3);
    for (const auto& ranges : std::vector<std::vector<std::pair<int64_t, int64_t>>>{
             {{0, items}}, {{0, 3}, {3, 12}, {12, items}}, {{0, 7}, {7, 8}, {8, items}}}) {
      const auto got = decode(ranges);
      EXPECT_TRUE(torch::equal(torch::isnan(got), torch::isnan(want)));
      EXPECT_TRUE(torch::equal(torch::nan_to_num(got), torch::nan_to_num(want)));
    }
  }
}

#if defined(__x86_64__) || defined(__i386__)
// The dispatcher picks one instruction set (AVX-512 where present); the AVX2 build is
// what AVX2-only CPUs run, so it is checked here too wherever the CPU can run it.
TEST(Avx2Kernels, MatchPlainOpsWhereTheCpuHasAvx2) {
  if (!cnp::model::kernels::avx2::compiled() || !__builtin_cpu_supports("avx2") ||
      !__builtin_cpu_supports("fma")) {
    GTEST_SKIP() << "no AVX2 build or no AVX2 on this CPU";
  }
  namespace avx2 = cnp::model::kernels::avx2;
  expect_depthwise_matches_conv2d(avx2::depthwise_conv_nhwc);
  torch::manual_seed(5);
  // GEMM with a partial panel, ReLU.
  const int64_t m = 13, k = 48, cols = 40;
  auto a = torch::randn({m, k}), wt = torch::randn({cols, k}), b = torch::randn({cols});
  const int64_t p = avx2::gemm_panel_width();
  auto packed = torch::empty({(cols + p - 1) / p * p * k});
  avx2::pack_gemm_weights(wt.data_ptr<float>(), cols, k, packed.data_ptr<float>());
  auto y = torch::empty({m, cols});
  avx2::gemm_bias(a.data_ptr<float>(), k, packed.data_ptr<float>(), cols, b.data_ptr<float>(),
                  y.data_ptr<float>(), nullptr, true, 0, m);
  EXPECT_LT((y - torch::addmm(b, a, wt.t()).relu()).abs().max().item<double>(), 1e-4);
  // Decoder with the upsample, peaky logits.
  auto logits = torch::rand({2, 8, 8, 3 * 16}) * 160.0 - 80.0;
  auto coords = torch::empty({2, 3, 3});
  avx2::soft_argmax_nhwc(logits.data_ptr<float>(), 3, 16, 8, 8, true, coords.data_ptr<float>(), 0,
                         6);
  EXPECT_LT((coords - reference(logits, 3, 16, true)).abs().max().item<double>(), 1e-3);
}
#endif
